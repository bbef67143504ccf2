"""Per-member episode replay buffers in one preallocated tensor set, with HER "future" relabelling.

Episodes have a fixed length T (truncation only), and all members start and end episodes together, so the buffer
is a ring of E episode slots per member: observations (S, E, T+1, obs_dim), achieved goals (S, E, T+1, goal_dim),
desired goals (S, E, goal_dim), actions (S, E, T, action_dim), rewards (S, E, T). Only finished episodes are
sampled (as in SB3's ``HerReplayBuffer``); when the ring wraps, a whole episode slot is replaced at once.

Sampling mirrors ``HerReplayBuffer.sample`` (SB3 2.x, online "future" strategy): ``batch_size`` transitions
uniform over the stored transitions of finished episodes (with replacement); the first
``int(her_ratio * batch_size)`` get a new goal, the next achieved goal of a transition chosen uniformly at or
after the sampled one in the same episode (inclusive), and the reward recomputed for it; her_ratio =
1 - 1/(n_sampled_goal + 1). ``done`` is always 0 (time-limit truncations bootstrap, as SB3 with
handle_timeout_termination). Every member draws from its own generator, so member k's samples do not depend on
the other members.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch as th


@dataclass
class Batch:
    """A batch for S members: dict observations of (S, B, dim) tensors, actions (S, B, a), rewards (S, B, 1),
    dones (S, B, 1)."""

    observations: dict[str, th.Tensor]
    actions: th.Tensor
    next_observations: dict[str, th.Tensor]
    rewards: th.Tensor
    dones: th.Tensor


class EpisodeReplay:
    """Replay of fixed-length episodes for ``n_members`` members (see the module docstring)."""

    def __init__(self, n_members: int, capacity_steps: int, episode_length: int, obs_dim: int, goal_dim: int,
                 action_dim: int, n_sampled_goal: int = 4, her: bool = True, device: str | th.device = "cpu",
                 achieved_dim: int | None = None) -> None:
        if capacity_steps < episode_length:
            raise ValueError(f"buffer_size must be >= the episode length {episode_length}, got {capacity_steps}")
        if n_sampled_goal < 0:
            raise ValueError(f"n_sampled_goal must be >= 0, got {n_sampled_goal}")
        self.S, self.T = int(n_members), int(episode_length)
        self.E = int(capacity_steps) // self.T
        self.her_ratio = 1.0 - 1.0 / (n_sampled_goal + 1) if her else 0.0
        S, E, T = self.S, self.E, self.T
        self.device = th.device(device)
        self.obs = th.zeros(S, E, T + 1, obs_dim, device=device)
        ag_dim = goal_dim if achieved_dim is None else achieved_dim  # goal sets: the rounded position (2)
        self.ag = th.zeros(S, E, T + 1, ag_dim, device=device)
        self.goal = th.zeros(S, E, goal_dim, device=device)
        self.actions = th.zeros(S, E, T, action_dim, device=device)
        self.rewards = th.zeros(S, E, T, device=device)
        self.n_finished = 0  # episodes ever finished (slot of episode i: i % E)
        self.t = 0  # steps written into the current episode

    @property
    def n_valid(self) -> int:
        return min(self.n_finished, self.E)

    @property
    def slot(self) -> int:
        return self.n_finished % self.E

    def start_episode(self, obs: dict[str, th.Tensor]) -> None:
        """Record the first observation (dict of (S, dim)) of a new episode in the current slot."""
        self.obs[:, self.slot, 0] = obs["observation"]
        self.ag[:, self.slot, 0] = obs["achieved_goal"]
        self.goal[:, self.slot] = obs["desired_goal"].reshape(self.S, -1)  # goal sets (S, n_max, 3) stored flat
        self.t = 0

    def add(self, action: th.Tensor, reward: th.Tensor, next_obs: dict[str, th.Tensor], truncated: bool) -> None:
        """One transition for every member: action (S, a) as stored (scaled to [-1, 1]), reward (S,)."""
        s, t = self.slot, self.t
        self.actions[:, s, t] = action
        self.rewards[:, s, t] = reward
        self.obs[:, s, t + 1] = next_obs["observation"]
        self.ag[:, s, t + 1] = next_obs["achieved_goal"]
        self.t += 1
        if truncated != (self.t == self.T):
            raise ValueError(f"episodes must last exactly {self.T} steps (truncation only)")
        if truncated:
            self.n_finished += 1

    def sample_indices(self, batch_size: int, generators: list[th.Generator]) -> tuple[th.Tensor, ...]:
        """(episode slot, step, goal step) index tensors, each (S, B); goal step = -1 where not relabelled."""
        n_valid = self.n_valid
        if n_valid == 0:
            raise RuntimeError("no finished episode to sample from (learning_starts must exceed the episode length)")
        u = th.stack([th.rand(batch_size, 3, generator=g, dtype=th.float64) for g in generators])  # (S, B, 3)
        ep = (u[..., 0] * n_valid).long().clamp_(max=n_valid - 1)
        t = (u[..., 1] * self.T).long().clamp_(max=self.T - 1)
        future = t + (u[..., 2] * (self.T - t)).long()
        future = th.minimum(future, th.full_like(future, self.T - 1))
        n_virtual = int(self.her_ratio * batch_size)
        future[:, n_virtual:] = -1
        return ep.to(self.device), t.to(self.device), future.to(self.device)

    def sample(self, batch_size: int, generators: list[th.Generator],
               reward_fn: Callable[[th.Tensor, th.Tensor], th.Tensor]) -> Batch:
        """A HER batch (S, B, ...) drawn with each member's generator; ``reward_fn(ag, g)`` recomputes rewards."""
        ep, t, future = self.sample_indices(batch_size, generators)
        m = th.arange(self.S, device=self.device).unsqueeze(1).expand_as(ep)
        goal = self.goal[m, ep]
        reward = self.rewards[m, ep, t]
        virtual = future >= 0
        if virtual.any():
            new_goal = self.ag[m, ep, future.clamp(min=0) + 1]
            goal = th.where(virtual.unsqueeze(-1), new_goal, goal)
            next_ag = self.ag[m, ep, t + 1]
            reward = th.where(virtual, reward_fn(next_ag, goal), reward)
        obs = {"observation": self.obs[m, ep, t], "achieved_goal": self.ag[m, ep, t], "desired_goal": goal}
        next_obs = {"observation": self.obs[m, ep, t + 1], "achieved_goal": self.ag[m, ep, t + 1],
                    "desired_goal": goal}
        zeros = th.zeros(self.S, batch_size, 1, device=self.device)
        return Batch(obs, self.actions[m, ep, t], next_obs, reward.unsqueeze(-1), zeros)

    def state_dict(self) -> dict:
        n = self.n_valid + (1 if 0 < self.t < self.T else 0)  # filled slots (a wrapped ring is saved whole); a
        n = min(n, self.E)  # finished episode (t == T) is counted in n_finished, the next slot holds nothing yet
        return {"n_finished": self.n_finished, "t": self.t, "obs": self.obs[:, :n].clone(),
                "ag": self.ag[:, :n].clone(), "goal": self.goal[:, :n].clone(),
                "actions": self.actions[:, :n].clone(), "rewards": self.rewards[:, :n].clone()}

    def load_state_dict(self, state: dict) -> None:
        self.n_finished, self.t = int(state["n_finished"]), int(state["t"])
        n = state["obs"].shape[1]
        if self.t == self.T and n == self.n_finished + 1:  # older checkpoints saved the empty slot after a finished
            n -= 1  # episode too (the ring had not wrapped): it holds nothing
        if n > self.E:
            raise ValueError(f"checkpoint holds {n} episodes, more than the buffer's {self.E}")
        for name in ("obs", "ag", "goal", "actions", "rewards"):
            getattr(self, name)[:, :n] = state[name][:, :n]
