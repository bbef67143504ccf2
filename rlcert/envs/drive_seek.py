"""DriveSeek (thesis §8.5.1, App. G.6.4.1): steer a constant-speed car on a torus through a set of integer goals.

Position p in the torus [-10.5, 10.5)^2 (width 21, so the rounded position stays in {-10..10}^2), heading
theta; start p = (0, 0), theta = 0. Action a in [-0.5, 0.5] (radians, clipped) is added to the heading, then
p <- wrap(p + (cos theta, sin theta)). 40 steps. Goals: n ~ U{1..n_max}, then n distinct points of the 441
integer points, uniformly without replacement. Reward 1 when the rounded position is a goal (goals are not
consumed). Observation (6): position, rounded position, sin(theta), cos(theta).
"""

from __future__ import annotations

import numpy as np
import torch as th
from gymnasium import spaces

from rlcert.envs import _validate, _xp
from rlcert.envs.goal_set import GoalSetEnv
from rlcert.envs.render import Canvas, draw_goal_set_frame

HALF = 10.5  # the torus is [-HALF, HALF)^2
GRID = np.stack(np.meshgrid(np.arange(-10, 11), np.arange(-10, 11), indexing="ij"), -1).reshape(-1, 2)

# The rules below are the only copy: the gymnasium env and its torch twin (rlcert.envs.torch_vector) call them on
# numpy arrays and torch tensors respectively (rlcert.envs._xp).


def wrap(p: _xp.Array) -> _xp.Array:
    """Map positions onto the torus [-10.5, 10.5) (floor modulo, numpy or torch)."""
    p = p if _xp.is_torch(p) else np.asarray(p)
    return (p + HALF) % (2 * HALF) - HALF


def drive_seek_move(pos: _xp.Array, heading: _xp.Array, turn: _xp.Array, max_turn: float
                    ) -> tuple[_xp.Array, _xp.Array]:
    """theta' = theta + clip(turn, -max_turn, max_turn), p' = wrap(p + (cos theta', sin theta')); float64.
    pos (..., 2), heading and turn (...) -> (pos', heading')."""
    heading = heading + _xp.clip(turn, -max_turn, max_turn)
    return wrap(pos + _xp.stack([_xp.cos(heading), _xp.sin(heading)], axis=-1)), heading


def drive_seek_rounded(pos: _xp.Array) -> _xp.Array:
    """The achieved goal: the rounded position, kept in {-10..10}^2."""
    return _xp.clip(_xp.rint(pos), -10, 10)


def drive_seek_observation(pos: _xp.Array, heading: _xp.Array) -> _xp.Array:
    """(position, rounded position, sin theta, cos theta): (..., 6), float64."""
    return _xp.concat([pos, drive_seek_rounded(pos), _xp.stack([_xp.sin(heading), _xp.cos(heading)], axis=-1)])


def sample_drive_goals(rng: _xp.Rng, n_max: int) -> _xp.Array:
    """n ~ U{1..n_max}, then n distinct points of the 441 integer points of [-10, 10]^2: int64 (n, 2)."""
    n = _xp.integers(rng, 1, n_max + 1)
    idx = _xp.sample_without_replacement(rng, len(GRID), n)
    return (th.as_tensor(GRID, device=rng.device) if _xp.is_torch(rng) else GRID)[idx]


class DriveSeekEnv(GoalSetEnv):
    obs_dim = 6
    coord_bound = 10.0

    def __init__(self, n_max: int = 200, max_steps: int = 40, max_turn: float = 0.5,
                 render_mode: str | None = None) -> None:
        _validate.positive_int("n_max", n_max, upper=len(GRID))
        self.max_turn = _validate.positive_float("max_turn", max_turn)
        super().__init__(n_max=n_max, max_steps=max_steps, render_mode=render_mode)
        self.action_space = spaces.Box(-self.max_turn, self.max_turn, shape=(1,), dtype=np.float32)
        self._pos = np.zeros(2)
        self._heading = 0.0

    def _sample_goals(self) -> np.ndarray:
        return sample_drive_goals(self.np_random, self.n_max)

    def _start(self) -> None:
        self._pos = np.zeros(2)
        self._heading = 0.0

    def _move(self, action) -> None:
        a = _validate.action_array(action, (1,))
        self._pos, heading = drive_seek_move(self._pos, np.float64(self._heading), a[0], self.max_turn)
        self._heading = float(heading)

    def _position(self) -> np.ndarray:
        return self._pos

    def _rounded(self) -> np.ndarray:
        return drive_seek_rounded(self._pos)

    def _observation(self) -> np.ndarray:
        return drive_seek_observation(self._pos, np.float64(self._heading))

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        canvas = Canvas(-HALF, HALF, -HALF, HALF, px_per_unit=24)
        return draw_goal_set_frame(canvas, self._goals, self._reached, self._visited, np.array(self._path),
                                   period=2 * HALF)


def greedy_drive_action(obs: dict[str, np.ndarray], max_turn: float = 0.5) -> np.ndarray:
    """Reference policy: steer towards the nearest real goal on the torus (heading error clipped to max_turn)."""
    pos = obs["observation"][:2].astype(np.float64)
    heading = np.arctan2(obs["observation"][4], obs["observation"][5])
    dg = obs["desired_goal"]
    pts = dg[dg[:, 0] > 0, 1:].astype(np.float64)
    delta = wrap(pts - pos)
    dist = np.linalg.norm(delta, axis=1)
    far = dist > 0.5  # skip the goal we are sitting on
    target = delta[far][np.argmin(dist[far])] if np.any(far) else delta[np.argmin(dist)]
    err = np.angle(np.exp(1j * (np.arctan2(target[1], target[0]) - heading)))
    return np.array([np.clip(err, -max_turn, max_turn)], dtype=np.float32)
