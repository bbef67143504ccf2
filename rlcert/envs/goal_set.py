"""Goal-set environments (thesis §8.5): a padded set of up to ``n_max`` integer goals with 0/1 gates.

``desired_goal`` has shape (n_max, 3); row i is (b_i, x_i, y_i) with gate b_i = 1 for a real goal and 0 for
padding (padding rows are all zeros). ``achieved_goal`` is the rounded position (2,). Rewards:

    R_item(s', g_i) = 1[b_i > 0] * 1[round(s') == g_i]        (item_rewards, shape (..., n_max))
    R(s', g)        = sum_i b_i^2 * R_item(s', g_i)           (compute_reward, shape (...))

so that dR/db_i = 2 * R_item(s', g_i) at the environment's gates (b_i in {0, 1}); goals are distinct, so R is 0/1.
"""

from __future__ import annotations

import abc
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces

from rlcert.envs import _validate, _xp


def pack_goal_set(points: _xp.Array, n_max: int) -> _xp.Array:
    """Pack k <= n_max integer goal points (k, 2) into the padded (n_max, 3) float32 array [b, x, y]."""
    if _xp.is_torch(points):
        points = points.reshape(-1, 2)
        out = th.zeros(n_max, 3, dtype=th.float32, device=points.device)
    else:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        out = np.zeros((n_max, 3), dtype=np.float32)
    if len(points) > n_max:
        raise ValueError(f"number of goals must be <= n_max={n_max}, got {len(points)}")
    out[: len(points), 0] = 1.0
    out[: len(points), 1:] = _xp.f32(points)
    return out


def split_goal_set(desired_goal: _xp.Array) -> tuple[_xp.Array, _xp.Array]:
    """(..., n_max, 3) -> gates (..., n_max) and goal points (..., n_max, 2)."""
    dg = desired_goal if _xp.is_torch(desired_goal) else np.asarray(desired_goal)
    if dg.ndim < 2 or dg.shape[-1] != 3:
        raise ValueError(f"desired_goal must have shape (..., n_max, 3), got {tuple(dg.shape)}")
    return dg[..., 0], dg[..., 1:]


def item_rewards(achieved_goal: _xp.Array, desired_goal: _xp.Array) -> _xp.Array:
    """Per-goal rewards R_item: achieved_goal (..., 2), desired_goal (..., n_max, 3) -> (..., n_max) float32.

    numpy arrays or torch tensors (the gymnasium envs and their torch twins share this rule)."""
    ag = _xp.f64(achieved_goal)
    if tuple(ag.shape[-1:]) != (2,):
        raise ValueError(f"achieved_goal must have shape (..., 2), got {tuple(ag.shape)}")
    gates, pts = split_goal_set(desired_goal)
    hit = _xp.all_(abs(pts - ag[..., None, :]) < 0.5, axis=-1)
    return _xp.f32(hit & (gates > 0))


def goal_set_reward(achieved_goal: _xp.Array, desired_goal: _xp.Array) -> _xp.Array:
    """R = sum_i b_i^2 R_item: (..., 2), (..., n_max, 3) -> (...) float64 (numpy or torch)."""
    gates, _ = split_goal_set(desired_goal)
    return _xp.sum_(_xp.f64(gates) ** 2 * item_rewards(achieved_goal, desired_goal), axis=-1)


class GoalSetEnv(gym.Env, abc.ABC):
    """Shared bookkeeping of DriveSeek and NoisySeek; subclasses define goals, start and dynamics.

    ``info["goals_reached"]`` counts distinct goals reached so far this episode, ``info["is_success"]`` is 1.0
    once any goal has been reached (latched), and ``info["item_rewards"]`` holds R_item of this step.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}
    obs_dim: int = 0
    coord_bound: float = np.inf

    def __init__(self, n_max: int, max_steps: int, render_mode: str | None) -> None:
        self.n_max = _validate.positive_int("n_max", n_max)
        self.max_steps = _validate.positive_int("max_steps", max_steps)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        b = self.coord_bound
        low = np.tile(np.array([0.0, -b, -b], dtype=np.float32), (self.n_max, 1))
        high = np.tile(np.array([1.0, b, b], dtype=np.float32), (self.n_max, 1))
        self.observation_space = spaces.Dict({
            "observation": spaces.Box(-np.inf, np.inf, shape=(self.obs_dim,), dtype=np.float32),
            "achieved_goal": spaces.Box(-b, b, shape=(2,), dtype=np.float32),
            "desired_goal": spaces.Box(low, high, dtype=np.float32),
        })
        self._goal_array = np.zeros((self.n_max, 3), np.float32)
        self._goals = np.zeros((0, 2), np.int64)
        self._t = 0
        self._reached: set[tuple[int, int]] = set()
        self._visited: set[tuple[int, int]] = set()
        self._path: list[np.ndarray] = []

    # --- to be defined by subclasses ------------------------------------------------------------------------
    @abc.abstractmethod
    def _sample_goals(self) -> np.ndarray: ...

    @abc.abstractmethod
    def _start(self) -> None: ...

    @abc.abstractmethod
    def _move(self, action: Any) -> None: ...

    @abc.abstractmethod
    def _position(self) -> np.ndarray: ...

    def _rounded(self) -> np.ndarray:
        return np.rint(self._position())

    @abc.abstractmethod
    def _observation(self) -> np.ndarray: ...

    # --- shared ---------------------------------------------------------------------------------------------
    @property
    def goals(self) -> np.ndarray:
        """The real goals of this episode, integer array (n, 2)."""
        return self._goals.copy()

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorised reward: (2,), (n_max, 3) -> scalar array; (B, 2), (B, n_max, 3) -> (B,)."""
        return goal_set_reward(achieved_goal, desired_goal)

    def item_rewards(self, achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
        """Vectorised per-goal rewards: (B, 2), (B, n_max, 3) -> (B, n_max)."""
        return item_rewards(achieved_goal, desired_goal)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"observation": self._observation().astype(np.float32),
                "achieved_goal": self._rounded().astype(np.float32),
                "desired_goal": self._goal_array.copy()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._goals = np.asarray(self._sample_goals(), dtype=np.int64).reshape(-1, 2)
        self._goal_array = pack_goal_set(self._goals, self.n_max)
        self._start()
        self._t = 0
        self._reached = set()
        self._visited = {tuple(int(v) for v in self._rounded())}
        self._path = [self._position().copy()]
        return self._obs(), {"is_success": 0.0, "goals_reached": 0}

    def step(self, action):
        self._move(action)
        self._t += 1
        obs = self._obs()
        cell = tuple(int(v) for v in obs["achieved_goal"])
        self._visited.add(cell)
        self._path.append(self._position().copy())
        items = item_rewards(obs["achieved_goal"], self._goal_array)
        reward = float(items.sum())  # = sum_i b_i^2 R_item since the env's gates are 0/1 (see goal_set_reward)
        if reward > 0:
            self._reached.add(cell)
        info = {"is_success": float(len(self._reached) > 0), "goals_reached": len(self._reached),
                "item_rewards": items}
        return obs, reward, False, self._t >= self.max_steps, info
