"""Torch-vectorised goal environments: n copies stepped as one batch, each with its own random generator.

Same dynamics and rewards as the gymnasium environments in :mod:`rlcert.envs` on the same actions and goals
(tests/fleet/test_vector_envs.py checks this step by step); goals are drawn from per-copy torch generators
instead of numpy, so the goal *sequence* differs from a gymnasium env seeded with the same number.

Observations are dicts of (n, dim) float32 tensors with keys ``observation``, ``achieved_goal``,
``desired_goal``. Episodes end by truncation only, after exactly ``max_steps`` steps, all copies together; the
caller resets explicitly (:meth:`reset`), so the last observation of an episode is returned by :meth:`step`.
"""

from __future__ import annotations

import abc

import torch as th


class TorchGoalEnv(abc.ABC):
    """Common state: ``n`` copies, their ``state`` and ``goal`` (n, dim), step counter, latched success ("the goal
    was ever reached")."""

    obs_dim: int
    goal_dim: int
    action_dim: int
    max_steps: int

    def __init__(self, generators: list[th.Generator]) -> None:
        self.generators = list(generators)
        self.n = len(self.generators)
        self.t = 0
        self.success = th.zeros(self.n, dtype=th.bool)

    @abc.abstractmethod
    def compute_reward(self, achieved_goal: th.Tensor, desired_goal: th.Tensor) -> th.Tensor:
        """Reward for goals of shape (..., goal_dim) -> (...) float32."""

    @abc.abstractmethod
    def observation(self) -> dict[str, th.Tensor]:
        """The current observation dict of (n, dim) float32 tensors."""

    def _finish_step(self) -> tuple[dict[str, th.Tensor], th.Tensor, bool, th.Tensor]:
        """After ``state`` moved: count the step, reward, latch success; the return value of ``step``."""
        self.t += 1
        reward = self.compute_reward(self.state, self.goal)
        self.success = self.success | (reward == 0)
        return self.observation(), reward, self.t >= self.max_steps, self.success.clone()

    def state_dict(self) -> dict:
        return {"t": self.t, "success": self.success.clone(), "state": self.state.clone(), "goal": self.goal.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.t, self.success = int(state["t"]), state["success"].clone()
        self.state, self.goal = state["state"].clone(), state["goal"].clone()


class TorchContinuousSeek(TorchGoalEnv):
    """ContinuousSeek (thesis §8.3) for n copies: s' = clip(s + clip(a, -1, 1), -D, D), s_0 = 0,
    g ~ U[-D, D]^d (float32), R = -1 + 1[||s' - g||_inf <= eps] (evaluated in float64, as the gymnasium env)."""

    def __init__(self, generators: list[th.Generator], d: int = 5, D: float = 5.0, eps: float = 0.1,
                 max_steps: int = 10) -> None:
        super().__init__(generators)
        if int(d) <= 0 or float(D) <= 0 or float(eps) <= 0 or int(max_steps) <= 0:
            raise ValueError(f"d, D, eps, max_steps must be positive, got {d}, {D}, {eps}, {max_steps}")
        self.d, self.D, self.eps, self.max_steps = int(d), float(D), float(eps), int(max_steps)
        self.obs_dim = self.goal_dim = self.action_dim = self.d
        self.state = th.zeros(self.n, self.d)
        self.goal = th.zeros(self.n, self.d)

    def compute_reward(self, achieved_goal: th.Tensor, desired_goal: th.Tensor) -> th.Tensor:
        dist = (achieved_goal.double() - desired_goal.double()).abs().amax(dim=-1)
        return (dist <= self.eps).float() - 1.0

    def observation(self) -> dict[str, th.Tensor]:
        return {"observation": self.state.clone(), "achieved_goal": self.state.clone(),
                "desired_goal": self.goal.clone()}

    def reset(self) -> dict[str, th.Tensor]:
        """New episode for every copy: s = 0 and a fresh goal from each copy's generator."""
        u = th.stack([th.rand(self.d, generator=g, dtype=th.float64) for g in self.generators])
        self.goal = (self.D * (2 * u - 1)).float()
        self.state = th.zeros(self.n, self.d)
        self.t, self.success = 0, th.zeros(self.n, dtype=th.bool)
        return self.observation()

    def step(self, action: th.Tensor) -> tuple[dict[str, th.Tensor], th.Tensor, bool, th.Tensor]:
        """action (n, d) -> (obs, reward (n,), truncated (same for all copies), success so far (n,) bool)."""
        a = action.to(th.float32).clamp(-1.0, 1.0)
        self.state = (self.state + a).clamp(-self.D, self.D)
        return self._finish_step()


class TorchBitFlipping(TorchGoalEnv):
    """Bit-Flipping for n copies: state, goal ~ U{0,1}^n_bits; action = index of the bit to flip;
    R = -1 + 1[state == goal]; episodes of ``max_steps`` (default n_bits) steps."""

    def __init__(self, generators: list[th.Generator], n_bits: int = 10, max_steps: int | None = None) -> None:
        super().__init__(generators)
        if int(n_bits) <= 0:
            raise ValueError(f"n_bits must be a positive integer, got {n_bits}")
        self.n_bits = int(n_bits)
        self.max_steps = int(self.n_bits if max_steps is None else max_steps)
        self.obs_dim = self.goal_dim = self.n_bits
        self.action_dim = 1
        self.state = th.zeros(self.n, self.n_bits)
        self.goal = th.zeros(self.n, self.n_bits)

    def compute_reward(self, achieved_goal: th.Tensor, desired_goal: th.Tensor) -> th.Tensor:
        equal = (achieved_goal.round() == desired_goal.round()).all(dim=-1)
        return equal.float() - 1.0

    def observation(self) -> dict[str, th.Tensor]:
        return {"observation": self.state.clone(), "achieved_goal": self.state.clone(),
                "desired_goal": self.goal.clone()}

    def reset(self) -> dict[str, th.Tensor]:
        bits = th.stack([th.randint(0, 2, (2, self.n_bits), generator=g) for g in self.generators]).float()
        self.state, self.goal = bits[:, 0].clone(), bits[:, 1].clone()
        self.t = 0
        self.success = (self.state == self.goal).all(dim=-1)
        return self.observation()

    def step(self, action: th.Tensor) -> tuple[dict[str, th.Tensor], th.Tensor, bool, th.Tensor]:
        """action (n,) integer bit indices -> (obs, reward (n,), truncated, success so far (n,) bool)."""
        idx = action.reshape(self.n).long()
        if ((idx < 0) | (idx >= self.n_bits)).any():
            raise ValueError(f"action must be bit indices in [0, {self.n_bits - 1}]")
        rows = th.arange(self.n)
        self.state = self.state.clone()
        self.state[rows, idx] = 1.0 - self.state[rows, idx]
        return self._finish_step()
