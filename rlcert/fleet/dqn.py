"""DQN and ReenGAGE-DQN (+ HER) for S independent members on stacked Q-networks (torch-vectorised Bit-Flipping).

One :meth:`FleetDQN.update` is, for every member k, the update of ``rlcert.agents.ReenGAGEDQN`` (``DQNLoop.train``
with the ``GoalInput`` critic-loss hook; stock SB3 DQN at alpha = 0) on member k's batch, with the agents' own
functions applied with a leading member axis (never re-typed):

* target and its goal gradient: :func:`rlcert.agents.goal_gradient.target_and_goal_gradient` on the member x batch
  rows, with the bootstrap value :func:`rlcert.agents.loops.hard_and_soft_values` (hard max for the TD target, the
  softmax_tau soft value for the gradient term, thesis App. G.2);
* d/dg Q_a: :func:`~rlcert.agents.goal_gradient.critic_goal_gradient`; sparse mask
  :func:`~rlcert.agents.goal_gradient.sparse_mask`; penalty :func:`~rlcert.agents.goal_gradient.reengage_penalty`
  and SB3's Huber loss ``F.smooth_l1_loss``, both vmapped over the member axis (a mean per member);
* loss_k = Huber_k + alpha_k * penalty_k; gradients clipped per member to ``max_grad_norm`` (SB3's
  ``clip_grad_norm_`` arithmetic on member k's parameters); Adam with torch's defaults, as SB3's DQN policy.

Defaults (learning rate, buffer, exploration, alpha, softmax_tau, ...) are read from the agent classes' signatures
(:func:`agent_defaults`). The training loop (:class:`DQNFleet`) follows SB3's DQN: uniform random actions before
``learning_starts``, then epsilon-greedy with SB3's linear exploration schedule; the target network is polyak-updated
every ``target_update_interval`` env steps; training as SB3's off-policy loop (train_freq, gradient_steps).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch as th
from stable_baselines3 import DQN
from torch.nn import functional as F

from rlcert.agents import goal_gradient as gg
from rlcert.agents.dqn import ReenGAGEDQN
from rlcert.agents.loops import hard_and_soft_values
from rlcert.envs.torch_vector import TorchGoalEnv
from rlcert.fleet.adam import StackedAdam
from rlcert.fleet.config import Schedule
from rlcert.fleet.replay import Batch, EpisodeReplay
from rlcert.fleet.stacked import StackedMLP
from rlcert.fleet.td3 import OBS_KEYS
from rlcert.fleet.trainer import Fleet


def agent_defaults(cls: type) -> dict[str, Any]:
    """Keyword defaults of ``cls.__init__`` along its MRO (a subclass's default wins): the agents' own constants."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, p in inspect.signature(init).parameters.items():
            if p.default is not inspect.Parameter.empty:
                out[name] = p.default
    return out


DQN_DEFAULTS = agent_defaults(DQN)
REENGAGE_DQN_DEFAULTS = agent_defaults(ReenGAGEDQN)


@dataclass
class DQNSettings:
    """Shape-defining settings shared by all members, and per-member settings (lists of length S)."""

    obs_dim: int
    goal_dim: int
    n_actions: int
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    goal_reduction: str = REENGAGE_DQN_DEFAULTS["goal_reduction"]
    c_low: float = REENGAGE_DQN_DEFAULTS["c_low"]
    softmax_tau: float = REENGAGE_DQN_DEFAULTS["softmax_tau"]
    max_grad_norm: float = DQN_DEFAULTS["max_grad_norm"]
    learning_rate: list[float] = field(default_factory=lambda: [DQN_DEFAULTS["learning_rate"]])
    alpha: list[float] = field(default_factory=lambda: [0.0])
    gamma: list[float] = field(default_factory=lambda: [DQN_DEFAULTS["gamma"]])
    tau: list[float] = field(default_factory=lambda: [DQN_DEFAULTS["tau"]])

    def __post_init__(self) -> None:
        if self.goal_reduction not in gg.REDUCTIONS:
            raise ValueError(f"goal_reduction must be one of {gg.REDUCTIONS}, got {self.goal_reduction!r}")
        if not self.softmax_tau >= 0:
            raise ValueError(f"softmax_tau must be >= 0, got {self.softmax_tau!r}")
        n = len(self.learning_rate)
        for name in ("alpha", "gamma", "tau"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have one value per member ({n}), got {len(getattr(self, name))}")
        if any(a < 0 for a in self.alpha):
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")

    @property
    def n_members(self) -> int:
        return len(self.learning_rate)


def _col(values: list[float]) -> th.Tensor:
    return th.tensor(values, dtype=th.float32).reshape(-1, 1, 1)


def member_grad_norm_clip(grads: list[th.Tensor], max_norm: float) -> list[th.Tensor]:
    """``torch.nn.utils.clip_grad_norm_`` for each member separately: grads (S, ...) -> clipped grads."""
    norms = th.stack([th.linalg.vector_norm(g.flatten(1), dim=1) for g in grads], dim=1)  # (S, n_params)
    total = th.linalg.vector_norm(norms, dim=1)  # (S,)
    coef = th.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * coef.reshape(-1, *([1] * (g.dim() - 1))) for g in grads]


class FleetDQN:
    """Stacked Q-networks (S, features -> n_actions), their targets and one Adam."""

    def __init__(self, settings: DQNSettings, generators: list[th.Generator] | None = None) -> None:
        self.cfg = s = settings
        S = s.n_members
        feat = s.obs_dim + 2 * s.goal_dim
        self.q_net = StackedMLP(S, feat, s.net_arch, s.n_actions)
        if generators is not None:
            for k, g in enumerate(generators):
                self.q_net.init_member(k, g)
        self.q_net_target = StackedMLP(S, feat, s.net_arch, s.n_actions)
        self.sync_targets()
        self.opt = StackedAdam(list(self.q_net.parameters()), th.tensor(s.learning_rate, dtype=th.float64))
        self.alpha, self.gamma = _col(s.alpha), _col(s.gamma)
        self.tau = th.tensor(s.tau, dtype=th.float32)
        self.n_updates = 0

    def sync_targets(self) -> None:
        self.q_net_target.load_state_dict(self.q_net.state_dict())

    @staticmethod
    def features(obs: dict[str, th.Tensor], goal: th.Tensor | None = None) -> th.Tensor:
        return th.cat([obs[k] if (k != "desired_goal" or goal is None) else goal for k in OBS_KEYS], dim=-1)

    def act(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        """Greedy actions (S, B, 1) (int64) for observations of (S, B, dim)."""
        with th.no_grad():
            return self.q_net(self.features(obs)).argmax(dim=-1, keepdim=True)

    def update(self, batch: Batch, generators: list[th.Generator] | None = None) -> dict[str, th.Tensor]:
        """One gradient step for every member on its slice of ``batch``; returns per-member losses (S,)."""
        cfg, obs, next_obs = self.cfg, batch.observations, batch.next_observations
        S, B, d = obs["desired_goal"].shape
        actions = batch.actions.long()
        self.n_updates += 1
        extra = th.zeros(S)
        if not bool((self.alpha > 0).any()):  # SB3's DQN expressions
            with th.no_grad():
                next_q = self.q_net_target(self.features(next_obs))
                value, _ = hard_and_soft_values(next_q.reshape(S * B, -1), None)
                target = batch.rewards + (1 - batch.dones) * self.gamma * value.reshape(S, B, 1)
            q = th.gather(self.q_net(self.features(obs)), dim=2, index=actions)
        else:
            def next_value(x: th.Tensor) -> tuple[th.Tensor, th.Tensor]:  # x (S * B, d): member x batch rows
                next_q = self.q_net_target(self.features(next_obs, x.reshape(S, B, d)))
                return hard_and_soft_values(next_q.reshape(S * B, -1), cfg.softmax_tau)

            rows = (S * B, 1)
            target, grad_target = gg.target_and_goal_gradient(
                next_value, next_obs["desired_goal"].reshape(S * B, d), batch.rewards.reshape(rows),
                batch.dones.reshape(rows), self.gamma.expand(S, B, 1).reshape(rows))
            target, grad_target = target.reshape(S, B, 1), grad_target.reshape(S, B, d)
            x = gg.make_goal_leaf(obs["desired_goal"])
            q = th.gather(self.q_net(self.features(obs, x)), dim=2, index=actions)
            (grad_q,) = gg.critic_goal_gradient([q], x)
            mask = gg.sparse_mask(batch.rewards.reshape(rows), cfg.c_low).reshape(S, B)
            penalty = functools.partial(gg.reengage_penalty, goal_weight=None, reduction=cfg.goal_reduction)
            extra = th.func.vmap(penalty)(grad_q, grad_target, mask)
        huber = th.func.vmap(F.smooth_l1_loss)(q, target.detach())
        loss = huber + self.alpha.reshape(-1) * extra
        params = list(self.q_net.parameters())
        grads = member_grad_norm_clip(list(th.autograd.grad(loss.sum(), params)), cfg.max_grad_norm)
        self.opt.step(grads)
        return {"loss": huber.detach(), "reengage_loss": extra.detach()}

    @th.no_grad()
    def polyak(self) -> None:
        """target <- (1 - tau_k) target + tau_k online (SB3's polyak_update arithmetic), member by member."""
        for p, tp in zip(self.q_net.parameters(), self.q_net_target.parameters(), strict=True):
            t = self.tau.reshape(-1, *([1] * (p.dim() - 1)))
            tp.mul_(1 - t).add_(p * t)

    def state_dict(self) -> dict:
        return {"q_net": self.q_net.state_dict(), "q_net_target": self.q_net_target.state_dict(),
                "opt": self.opt.state_dict(), "n_updates": self.n_updates}

    def load_state_dict(self, state: dict) -> None:
        self.q_net.load_state_dict(state["q_net"])
        self.q_net_target.load_state_dict(state["q_net_target"])
        self.opt.load_state_dict(state["opt"])
        self.n_updates = int(state["n_updates"])


@dataclass
class Exploration:
    """SB3 DQN's epsilon-greedy exploration (linear from initial to final over ``fraction`` of the run) and target
    update interval (env steps)."""

    initial_eps: float = DQN_DEFAULTS["exploration_initial_eps"]
    final_eps: float = DQN_DEFAULTS["exploration_final_eps"]
    fraction: float = DQN_DEFAULTS["exploration_fraction"]
    target_update_interval: int = DQN_DEFAULTS["target_update_interval"]

    def rate(self, progress_remaining: float) -> float:
        """SB3's ``LinearSchedule(initial, final, fraction)(progress_remaining)``."""
        if (1 - progress_remaining) > self.fraction:
            return self.final_eps
        return self.initial_eps + (1 - progress_remaining) * (self.final_eps - self.initial_eps) / self.fraction


class DQNFleet(Fleet):
    """S independent DQN / ReenGAGE-DQN (+HER) learners on copies of a torch env with discrete actions
    (Bit-Flipping). The loop, evaluation, replay and checkpoints are :class:`rlcert.fleet.trainer.Fleet`'s; this
    class changes the agent, the exploration (epsilon-greedy) and adds SB3 DQN's target-network schedule."""

    def __init__(self, settings: DQNSettings, schedule: Schedule, seeds: list[int], env_cls: type,
                 env_kwargs: dict | None = None, exploration: Exploration | None = None,
                 total_timesteps: int = 1) -> None:
        if len(seeds) != settings.n_members:
            raise ValueError(f"need one seed per member ({settings.n_members}), got {len(seeds)}")
        self.seeds, self.schedule, self.env_kwargs = [int(s) for s in seeds], schedule, dict(env_kwargs or {})
        self.generators = [th.Generator().manual_seed(s) for s in self.seeds]
        self.eval_generators = [th.Generator().manual_seed(10_000 + s) for s in self.seeds]
        self.agent = FleetDQN(settings, self.generators)
        self.env_cls = env_cls
        self.env: TorchGoalEnv = env_cls(self.generators, **self.env_kwargs)
        if not hasattr(self.env, "n_actions"):
            raise ValueError(f"{env_cls.__name__} has no discrete actions (n_actions)")
        self.exploration = exploration or Exploration()
        self.total_timesteps = int(total_timesteps)
        self.exploration_rate = 0.0  # SB3: set after the first env step
        self.replay = EpisodeReplay(len(seeds), schedule.buffer_size, self.env.max_steps, self.env.obs_dim,
                                    self.env.goal_dim, 1, schedule.n_sampled_goal, schedule.her)
        self.num_timesteps = 0
        self.trained_through = 0
        self.obs: dict[str, th.Tensor] | None = None

    def _explore(self) -> th.Tensor:
        """(S, 1) int64 actions: uniform during warm-up, then epsilon-greedy; every member draws (u, random action)
        from its generator at every step, so its draws do not depend on the other members."""
        n = self.env.n_actions
        u = th.stack([th.rand(1, generator=g, dtype=th.float64) for g in self.generators])  # (S, 1)
        random_a = th.stack([th.randint(n, (1,), generator=g) for g in self.generators])  # (S, 1)
        if self.num_timesteps < self.schedule.learning_starts:
            return random_a
        greedy = self.agent.act({k: v.unsqueeze(1) for k, v in self.obs.items()})[:, 0]
        return th.where(u < self.exploration_rate, random_a, greedy)

    def step(self) -> None:
        """Collect one env step for every member, then SB3 DQN's ``_on_step``: target update, exploration rate."""
        super().step()
        if self.num_timesteps % max(self.exploration.target_update_interval, 1) == 0:
            self.agent.polyak()
        self.exploration_rate = self.exploration.rate(1.0 - self.num_timesteps / self.total_timesteps)

    def learn(self, total_timesteps: int, callback=None) -> None:
        self.total_timesteps = int(total_timesteps)
        super().learn(total_timesteps, callback)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "exploration_rate": self.exploration_rate}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.exploration_rate = float(state["exploration_rate"])
