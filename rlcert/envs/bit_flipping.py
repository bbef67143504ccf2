"""Bit-Flipping (Andrychowicz et al. 2017; thesis App. G.2): flip one of n bits per step to match a goal.

State and goal are uniform in {0, 1}^n (float32 vectors); action = index of the bit to flip; reward
-1 + 1[state == goal]; episodes last n steps (truncation). ``info["is_success"]`` is latched ("ever reached").
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlcert.envs import _validate, _xp

# The rules below are the only copy: the gymnasium env and its torch twin (rlcert.envs.torch_vector) call them on
# numpy arrays and torch tensors respectively (rlcert.envs._xp).


def bit_flipping_reward(achieved_goal: _xp.Array, desired_goal: _xp.Array) -> _xp.Array:
    """-1 + 1[ag == g] over the last axis: (..., n) -> (...) float64."""
    return _xp.f64(_xp.all_(_xp.rint(achieved_goal) == _xp.rint(desired_goal), axis=-1)) - 1.0


def bit_flip(state: _xp.Array, index: _xp.Array) -> _xp.Array:
    """Flip bit ``index`` of ``state``: (..., n) float 0/1 and integer (...) -> (..., n) (a new array)."""
    return state + (1.0 - 2.0 * state) * _xp.one_hot(index, state.shape[-1], state)


def bit_flipping_start(rng: _xp.Rng, n_bits: int) -> tuple[_xp.Array, _xp.Array]:
    """(state, goal), each uniform in {0, 1}^n_bits (float32), state drawn first."""
    return _xp.bits(rng, n_bits), _xp.bits(rng, n_bits)


class BitFlippingEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, n_bits: int = 10, max_steps: int | None = None, render_mode: str | None = None) -> None:
        self.n_bits = _validate.positive_int("n_bits", n_bits)
        self.max_steps = _validate.positive_int("max_steps", self.n_bits if max_steps is None else max_steps)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        box = spaces.Box(0.0, 1.0, shape=(self.n_bits,), dtype=np.float32)
        self.observation_space = spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = spaces.Discrete(self.n_bits)
        self._state = np.zeros(self.n_bits, np.float32)
        self._goal = np.zeros(self.n_bits, np.float32)
        self._t = 0
        self._success = False
        self._history: list[np.ndarray] = []

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorised reward: (n,) -> scalar array, (B, n) -> (B,)."""
        return bit_flipping_reward(achieved_goal, desired_goal)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"observation": self._state.copy(), "achieved_goal": self._state.copy(),
                "desired_goal": self._goal.copy()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state, self._goal = bit_flipping_start(self.np_random, self.n_bits)
        self._t = 0
        self._success = bool(np.all(self._state == self._goal))
        self._history = [self._state.copy()]
        return self._obs(), {"is_success": float(self._success)}

    def step(self, action):
        a = np.asarray(action)
        if a.size != 1 or not np.issubdtype(a.dtype, np.integer) and not float(a.reshape(-1)[0]).is_integer():
            raise ValueError(f"action must be one integer bit index in [0, {self.n_bits - 1}], got {action!r}")
        i = int(a.reshape(-1)[0])
        if not 0 <= i < self.n_bits:
            raise ValueError(f"action must be a bit index in [0, {self.n_bits - 1}], got {i}")
        self._state = bit_flip(self._state, i)
        self._t += 1
        self._history.append(self._state.copy())
        reward = float(bit_flipping_reward(self._state, self._goal))
        self._success = self._success or reward == 0.0
        return self._obs(), reward, False, self._t >= self.max_steps, {"is_success": float(self._success)}

    def render(self) -> np.ndarray | None:
        """Rows = time steps (state bits black/white), last row = goal (blue)."""
        if self.render_mode != "rgb_array":
            return None
        rows = np.array(self._history + [self._goal])
        img = np.repeat((1.0 - rows)[..., None] * 255, 3, axis=-1).astype(np.uint8)
        img[-1][rows[-1] > 0.5] = (20, 40, 220)
        return np.kron(img, np.ones((12, 12, 1), np.uint8))
