"""NoisySeek (thesis §8.5.1, App. G.6.4.2): noisy 2-D motion through clustered integer goals.

s in R^2, start (0, 0); the action a in R^2 is scaled to ||a||_2 <= 1; s' ~ N(s + a, I); 40 steps.
Goals: n_c ~ Geometric(0.15) clusters (support 1, 2, ...), n' ~ U{1..n_max}, centres ~ N(0, 10^2 I), cluster
weights ~ Dirichlet(1, ..., 1); each of the n' goals picks a cluster by those weights, adds N(0, 2^2 I) to its
centre and is rounded to integers; duplicates are removed. Reward 1 when the rounded position is a goal.
Observation (4): position and rounded position. ``greedy_action`` is the published reference policy.

The rules below are the only copy: the gymnasium env and its torch twin (rlcert.envs.torch_vector) call them on
numpy arrays and torch tensors respectively (rlcert.envs._xp).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rlcert.envs import _validate, _xp
from rlcert.envs.goal_set import GoalSetEnv
from rlcert.envs.render import Canvas, draw_goal_set_frame


def draw_cluster_layout(rng: _xp.Rng, n_max: int = 200, p_cluster: float = 0.15,
                        centre_std: float = 10.0) -> tuple[int, int, _xp.Array, _xp.Array]:
    """First stage of the goal sampler: n_c ~ Geometric(p_cluster), n' ~ U{1..n_max}, centres (n_c, 2) ~
    N(0, centre_std^2 I), weights ~ Dirichlet(1, ..., 1). Returns (n_c, n', centres, weights)."""
    n_c = _xp.geometric(rng, p_cluster)
    n_draw = _xp.integers(rng, 1, n_max + 1)
    centres = _xp.normal(rng, centre_std, (n_c, 2))
    weights = _xp.dirichlet_ones(rng, n_c)
    return n_c, n_draw, centres, weights


def sample_clustered_goals(rng: _xp.Rng, n_max: int = 200, p_cluster: float = 0.15,
                           centre_std: float = 10.0, spread_std: float = 2.0) -> _xp.Array:
    """Integer goals (n, 2), 1 <= n <= n_max, distinct, in order of first appearance (numpy or torch generator)."""
    n_c, n_draw, centres, weights = draw_cluster_layout(rng, n_max, p_cluster, centre_std)
    assign = _xp.categorical(rng, weights, n_draw)
    pts = _xp.i64(_xp.rint(centres[assign] + _xp.normal(rng, spread_std, (n_draw, 2))))
    return _xp.unique_rows_in_order(pts)


def clip_to_unit_ball(a: _xp.Array) -> _xp.Array:
    """Scale a (..., k) onto the l2 unit ball where it lies outside (a / max(||a||_2, 1))."""
    return a / _xp.maximum(_xp.sqrt(_xp.sum_(a * a, axis=-1)), 1.0)[..., None]


def noisy_seek_move(pos: _xp.Array, action: _xp.Array, noise: _xp.Array) -> _xp.Array:
    """s' = s + clip_to_unit_ball(a) + noise (noise ~ N(0, noise_std^2 I) drawn by the caller); (..., 2)."""
    return pos + clip_to_unit_ball(action) + noise


def noisy_seek_noise(rng: _xp.Rng, noise_std: float) -> _xp.Array:
    """One copy's motion noise (2,) float64 ~ N(0, noise_std^2 I)."""
    return _xp.normal(rng, noise_std, (2,))


def noisy_seek_observation(pos: _xp.Array) -> _xp.Array:
    """(position, rounded position): (..., 4)."""
    return _xp.concat([pos, _xp.rint(pos)])


class NoisySeekEnv(GoalSetEnv):
    obs_dim = 4

    def __init__(self, n_max: int = 200, max_steps: int = 40, noise_std: float = 1.0,
                 render_mode: str | None = None) -> None:
        super().__init__(n_max=n_max, max_steps=max_steps, render_mode=render_mode)
        if not np.isfinite(noise_std) or noise_std < 0:
            raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
        self.noise_std = float(noise_std)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pos = np.zeros(2)

    def _sample_goals(self) -> np.ndarray:
        return sample_clustered_goals(self.np_random, self.n_max)

    def _start(self) -> None:
        self._pos = np.zeros(2)

    def _move(self, action) -> None:
        self._pos = noisy_seek_move(self._pos, _validate.action_array(action, (2,)), self._noise())

    def _noise(self) -> np.ndarray:
        return noisy_seek_noise(self.np_random, self.noise_std)

    def _position(self) -> np.ndarray:
        return self._pos

    def _observation(self) -> np.ndarray:
        return noisy_seek_observation(self._pos)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        pts = np.concatenate([self._goals.reshape(-1, 2), np.array(self._path)], 0)
        lo, hi = np.floor(pts.min(0)) - 2, np.ceil(pts.max(0)) + 2
        half = max(hi[0] - lo[0], hi[1] - lo[1]) / 2
        mid = (lo + hi) / 2
        canvas = Canvas(mid[0] - half, mid[0] + half, mid[1] - half, mid[1] + half,
                        px_per_unit=int(np.clip(500 / (2 * half), 4, 40)))
        return draw_goal_set_frame(canvas, self._goals, self._reached, self._visited, np.array(self._path))


def greedy_action(obs: dict[str, np.ndarray]) -> np.ndarray:
    """Reference policy ("go to the nearest goal"): unit step towards the nearest real goal, shorter if closer."""
    pos = obs["observation"][:2].astype(np.float64)
    dg = obs["desired_goal"]
    pts = dg[dg[:, 0] > 0, 1:].astype(np.float64)
    delta = pts - pos
    target = delta[np.argmin(np.linalg.norm(delta, axis=1))]
    return clip_to_unit_ball(target).astype(np.float32)
