"""ContinuousSeek (thesis §8.3): reach a d-dimensional goal by adding l-inf bounded steps.

    s_0 = 0,  s' = clip(s + clip(a, -1, 1), -D, D),  g ~ U[-D, D]^d,  R(s', g) = -1 + 1[ ||s' - g||_inf <= eps ]

Episodes last ``max_steps`` steps (truncation, never termination). ``info["is_success"]`` is latched: 1.0 once
the goal has been reached in this episode (the thesis' "ever reached" success rate).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlcert.envs import _validate, _xp
from rlcert.envs.render import Canvas

# The rules below are the only copy: the gymnasium env and its torch twin (rlcert.envs.torch_vector) call them on
# numpy arrays and torch tensors respectively (rlcert.envs._xp).


def continuous_seek_reward(achieved_goal: _xp.Array, desired_goal: _xp.Array, eps: float) -> _xp.Array:
    """Sparse reward -1 + 1[||ag - g||_inf <= eps], evaluated in float64; shapes (..., d) -> (...) float64."""
    dist = _xp.amax(abs(_xp.f64(achieved_goal) - _xp.f64(desired_goal)), axis=-1)
    return _xp.f64(dist <= eps) - 1.0


def continuous_seek_move(state: _xp.Array, action: _xp.Array, D: float) -> _xp.Array:
    """s' = clip(s + clip(a, -1, 1), -D, D) in the dtype of the inputs; (..., d) -> (..., d)."""
    return _xp.clip(state + _xp.clip(action, -1.0, 1.0), -D, D)


def continuous_seek_goal(rng: _xp.Rng, d: int, D: float) -> _xp.Array:
    """A goal ~ U[-D, D]^d, drawn in float64 and stored in float32 (so observations and rewards use one number)."""
    return _xp.f32(_xp.uniform(rng, -D, D, d))


class ContinuousSeekEnv(gym.Env):
    """Goal-conditioned ContinuousSeek. Observation = achieved_goal = state s (float32, shape (d,))."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, d: int = 5, D: float = 5.0, eps: float = 0.1, max_steps: int = 10,
                 render_mode: str | None = None) -> None:
        self.d = _validate.positive_int("d", d)
        self.D = _validate.positive_float("D", D)
        self.eps = _validate.positive_float("eps", eps)
        self.max_steps = _validate.positive_int("max_steps", max_steps)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        box = spaces.Box(-self.D, self.D, shape=(self.d,), dtype=np.float32)
        self.observation_space = spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.d,), dtype=np.float32)
        self._state = np.zeros(self.d)
        self._goal = np.zeros(self.d)
        self._t = 0
        self._success = False
        self._path: list[np.ndarray] = []

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorised reward: (d,) -> scalar array, (B, d) -> (B,). Equal to the step reward."""
        return continuous_seek_reward(achieved_goal, desired_goal, self.eps)

    def _obs(self) -> dict[str, np.ndarray]:
        s = self._state.astype(np.float32)
        return {"observation": s.copy(), "achieved_goal": s.copy(), "desired_goal": self._goal.astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state = np.zeros(self.d)
        # Sample in float32 so the goal stored in observations is exactly the goal rewards are computed with.
        self._goal = continuous_seek_goal(self.np_random, self.d, self.D).astype(np.float64)
        self._t = 0
        self._success = False
        self._path = [self._state.copy()]
        return self._obs(), {"is_success": 0.0}

    def step(self, action):
        a = _validate.action_array(action, (self.d,))
        self._state = continuous_seek_move(self._state, a, self.D).astype(np.float32).astype(np.float64)
        self._t += 1
        self._path.append(self._state.copy())
        reward = float(continuous_seek_reward(self._state, self._goal, self.eps))
        self._success = self._success or reward == 0.0
        truncated = self._t >= self.max_steps
        return self._obs(), reward, False, truncated, {"is_success": float(self._success)}

    def render(self) -> np.ndarray | None:
        """2-D projection onto coordinates (0, 1): the goal's eps-box with a ring around it (cyan: not reached yet,
        blue: reached), the trajectory in magenta with a dot per state, green = start, black = current state."""
        if self.render_mode != "rgb_array":
            return None
        c = Canvas(-self.D, self.D, -self.D, self.D, px_per_unit=max(8, int(400 / (2 * self.D))))
        c.grid(1.0)
        gx, gy = self._goal[0], (self._goal[1] if self.d > 1 else 0.0)
        colour = Canvas.BLUE if self._success else Canvas.CYAN
        c.disc(gx, gy, 0.35, colour)
        c.disc(gx, gy, 0.25, Canvas.WHITE)
        c.rect(gx - self.eps, gy - self.eps, gx + self.eps, gy + self.eps, colour)
        pts = np.array([[p[0], p[1] if self.d > 1 else 0.0] for p in self._path])
        c.polyline(pts, Canvas.MAGENTA)
        for x, y in pts[1:-1]:
            c.disc(x, y, 0.07, Canvas.MAGENTA)
        c.disc(pts[0, 0], pts[0, 1], 0.12, Canvas.GREEN)
        c.disc(pts[-1, 0], pts[-1, 1], 0.09, Canvas.BLACK)
        return c.image
