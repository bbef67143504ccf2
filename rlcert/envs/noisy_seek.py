"""NoisySeek (thesis §8.5.1, App. G.6.4.2): noisy 2-D motion through clustered integer goals.

s in R^2, start (0, 0); the action a in R^2 is scaled to ||a||_2 <= 1; s' ~ N(s + a, I); 40 steps.
Goals: n_c ~ Geometric(0.15) clusters (support 1, 2, ...), n' ~ U{1..n_max}, centres ~ N(0, 10^2 I), cluster
weights ~ Dirichlet(1, ..., 1); each of the n' goals picks a cluster by those weights, adds N(0, 2^2 I) to its
centre and is rounded to integers; duplicates are removed. Reward 1 when the rounded position is a goal.
Observation (4): position and rounded position. ``greedy_action`` is the published reference policy.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rlcert.envs import _validate
from rlcert.envs.goal_set import GoalSetEnv
from rlcert.envs.render import Canvas, draw_goal_set_frame


def draw_cluster_layout(rng: np.random.Generator, n_max: int = 200, p_cluster: float = 0.15,
                        centre_std: float = 10.0) -> tuple[int, int, np.ndarray, np.ndarray]:
    """First stage of the goal sampler: n_c ~ Geometric(p_cluster), n' ~ U{1..n_max}, centres (n_c, 2) ~
    N(0, centre_std^2 I), weights ~ Dirichlet(1, ..., 1). Returns (n_c, n', centres, weights)."""
    n_c = int(rng.geometric(p_cluster))
    n_draw = int(rng.integers(1, n_max + 1))
    centres = rng.normal(0.0, centre_std, size=(n_c, 2))
    weights = rng.dirichlet(np.ones(n_c))
    return n_c, n_draw, centres, weights


def sample_clustered_goals(rng: np.random.Generator, n_max: int = 200, p_cluster: float = 0.15,
                           centre_std: float = 10.0, spread_std: float = 2.0) -> np.ndarray:
    """Integer goals (n, 2), 1 <= n <= n_max, distinct, in order of first appearance."""
    n_c, n_draw, centres, weights = draw_cluster_layout(rng, n_max, p_cluster, centre_std)
    assign = rng.choice(n_c, size=n_draw, p=weights)
    pts = np.rint(centres[assign] + rng.normal(0.0, spread_std, size=(n_draw, 2))).astype(np.int64)
    _, first = np.unique(pts, axis=0, return_index=True)
    return pts[np.sort(first)]


def clip_to_unit_ball(a: np.ndarray) -> np.ndarray:
    """Scale a onto the l2 unit ball if it lies outside."""
    n = np.linalg.norm(a)
    return a / n if n > 1.0 else a


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
        a = clip_to_unit_ball(_validate.action_array(action, (2,)))
        self._pos = self._pos + a + self.np_random.normal(0.0, self.noise_std, size=2)

    def _position(self) -> np.ndarray:
        return self._pos

    def _observation(self) -> np.ndarray:
        return np.concatenate([self._pos, self._rounded()])

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
