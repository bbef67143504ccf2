"""DDPG / TD3 (+ the ReenGAGE goal-gradient term) for S independent members on stacked networks.

One :meth:`FleetTD3.update` is, for every member k, the update of ``rlcert.agents.ReenGAGEDDPG`` /
``ReenGAGETD3`` (and of stock SB3 DDPG / TD3 at alpha = 0) on member k's batch:

* target   y = r + (1 - done) gamma_k min_j Q'_j(s', clip(pi'(s', g) + noise, -1, 1), g) and, with ReenGAGE, its
  total goal derivative: :func:`rlcert.agents.goal_gradient.td3_target_and_goal_gradient` (the agents' closed form)
* critic   sum_j mse(Q_j(s, a, g), y) + alpha_k sum_j E_j with E_j the agents' penalty
  (:func:`~rlcert.agents.goal_gradient.reengage_penalty`, sparse mask :func:`~rlcert.agents.goal_gradient.sparse_mask`)
  on d/dg Q_j written out (:func:`~rlcert.agents.goal_gradient.relu_mlp_input_gradient`: a first-order backward, no
  double backward), for all members at once (their functions with a leading member axis)
* actor    -mean_b Q_1(s, pi(s, g), g), every ``policy_delay`` updates, after the critic step, then polyak
  updates of both target networks with tau_k.

Networks follow SB3's ``MultiInputPolicy`` for Dict observations: input = concat(achieved_goal, desired_goal,
observation) (gymnasium sorts Dict keys), actor = MLP + tanh, critic = MLP on concat(features, action).
Per-member settings: learning rate, alpha, gamma, tau, target policy noise and clip, action noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th

from rlcert.agents import goal_gradient as gg
from rlcert.fleet.adam import StackedAdam
from rlcert.fleet.family import (
    OBS_KEYS,
    FleetAlgorithm,
    MemberSettings,
    clone_net,
    col,
    features,
    gaussian,
    goal_columns,
    polyak,
    uniform_actions,
)
from rlcert.fleet.replay import Batch
from rlcert.fleet.stacked import StackedMLP, linears_of

__all__ = ["OBS_KEYS", "FleetSettings", "FleetTD3"]


@dataclass
class FleetSettings(MemberSettings):
    """DDPG/TD3(+ReenGAGE) settings: shared shapes and options, per-member lists of length S."""

    n_critics: int = 1
    policy_delay: int = 1
    goal_reduction: str = "mean"
    c_low: float = -1.0
    through_target_actor: bool = True
    alpha: list[float] = field(default_factory=lambda: [0.0])
    target_policy_noise: list[float] = field(default_factory=lambda: [0.0])
    target_noise_clip: list[float] = field(default_factory=lambda: [0.0])
    action_noise_sigma: list[float] | None = None

    PER_MEMBER = ("gamma", "tau", "alpha", "target_policy_noise", "target_noise_clip")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.goal_reduction not in gg.REDUCTIONS:
            raise ValueError(f"goal_reduction must be one of {gg.REDUCTIONS}, got {self.goal_reduction!r}")
        if self.n_critics < 1 or self.policy_delay < 1:
            raise ValueError(f"n_critics and policy_delay must be >= 1, got {self.n_critics}, {self.policy_delay}")
        if any(a < 0 for a in self.alpha):
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.action_noise_sigma is None:
            self.action_noise_sigma = [0.0] * self.n_members


def action_noise_sigma(agent: Any) -> float:
    """The scalar sigma of an agent's Gaussian action noise (0 without noise)."""
    noise = getattr(agent, "action_noise", None)
    if noise is None:
        return 0.0
    sigma = np.asarray(noise._sigma, dtype=np.float64)
    if np.any(np.asarray(noise._mu) != 0) or np.ptp(sigma) != 0:
        raise ValueError("the fleet needs zero-mean action noise with one sigma for every action coordinate")
    return float(sigma.reshape(-1)[0])


class FleetTD3(FleetAlgorithm):
    """Stacked actor, critics (one :class:`StackedMLP` per critic index) and their targets, with one Adam each."""

    def __init__(self, settings: FleetSettings, generators: list[th.Generator] | None = None) -> None:
        self.cfg = s = settings
        S, C = s.n_members, s.n_critics
        feat, dev = s.obs_dim + 2 * s.goal_dim, s.device
        self.actor = StackedMLP(S, feat, s.net_arch, s.action_dim, squash=True, device=dev)
        self.critics = [StackedMLP(S, feat + s.action_dim, s.net_arch, 1, device=dev) for _ in range(C)]
        if generators is not None:  # SB3 order: actor (then its target copy), then the critics
            for k, g in enumerate(generators):
                self.actor.init_member(k, g)
                for c in self.critics:
                    c.init_member(k, g)
        self.actor_target = clone_net(self.actor)
        self.critic_targets = [clone_net(c) for c in self.critics]
        lr = th.tensor(s.learning_rate, dtype=th.float64)
        self.actor_opt = StackedAdam(list(self.actor.parameters()), lr)
        self.critic_opt = StackedAdam([p for c in self.critics for p in c.parameters()], lr)
        self.alpha, self.gamma = col(s.alpha, dev), col(s.gamma, dev)
        self.tau = th.tensor(s.tau, dtype=th.float32, device=dev)
        self.noise_sigma, self.noise_clip = col(s.target_policy_noise, dev), col(s.target_noise_clip, dev)
        self.action_sigma = th.tensor(s.action_noise_sigma, dtype=th.float32, device=dev).reshape(-1, 1)
        self.cols = goal_columns(s.goal_dim)
        # decided once from the settings (no device synchronisation per update)
        self.use_grad, self.smoothing = any(a > 0 for a in s.alpha), any(c != 0 for c in s.target_noise_clip)
        self.n_updates = 0

    # ----- plugging in -----------------------------------------------------------------------------------------
    @classmethod
    def settings_from_agent(cls, agent: Any, env: Any, n_members: int, precision: str) -> FleetSettings:
        def member(value: float) -> list[float]:
            return [float(value)] * n_members

        # stock DDPG/TD3 have no alpha (no goal-gradient term): goal_reduction and c_low are then unused
        return FleetSettings(
            obs_dim=env.obs_dim, goal_dim=env.goal_dim, action_dim=env.action_dim, net_arch=list(agent.actor.net_arch),
            n_critics=len(agent.critic.q_networks), policy_delay=int(agent.policy_delay),
            goal_reduction=getattr(agent, "goal_reduction", "mean"), c_low=float(getattr(agent, "c_low", -1.0)),
            through_target_actor=bool(getattr(agent, "through_target_actor", True)),
            learning_rate=member(agent.learning_rate), alpha=member(getattr(agent, "alpha", 0.0)),
            gamma=member(agent.gamma), tau=member(agent.tau), target_policy_noise=member(agent.target_policy_noise),
            target_noise_clip=member(agent.target_noise_clip), action_noise_sigma=member(action_noise_sigma(agent)),
            precision=precision)

    @classmethod
    def member_overridable(cls) -> tuple[str, ...]:
        return ("learning_rate", "alpha", "gamma", "tau", "target_policy_noise", "target_noise_clip",
                "action_noise_sigma")

    def modules(self) -> dict[str, StackedMLP]:
        out = {"actor": self.actor, "actor_target": self.actor_target}
        for j, (c, t) in enumerate(zip(self.critics, self.critic_targets, strict=True)):
            out[f"critic{j}"], out[f"critic_target{j}"] = c, t
        return out

    def optimizers(self) -> dict[str, StackedAdam]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def member_pairs(self, k: int, model: Any) -> list[tuple[StackedMLP, int, list]]:
        if len(model.critic.q_networks) != self.cfg.n_critics:
            raise ValueError(f"agent has {len(model.critic.q_networks)} critics, the fleet {self.cfg.n_critics}")
        pairs = [(self.actor, k, linears_of(model.actor.mu)), (self.actor_target, k, linears_of(model.actor_target.mu))]
        for j in range(self.cfg.n_critics):
            pairs.append((self.critics[j], k, linears_of(model.critic.q_networks[j])))
            pairs.append((self.critic_targets[j], k, linears_of(model.critic_target.q_networks[j])))
        return pairs

    def sync_targets(self) -> None:
        """Targets := online networks (at construction and after loading member parameters)."""
        self.actor_target.load_state_dict(self.actor.state_dict())
        for c, t in zip(self.critics, self.critic_targets, strict=True):
            t.load_state_dict(c.state_dict())

    # ----- acting ------------------------------------------------------------------------------------------------
    def act(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        with th.no_grad():
            return self.actor(features(obs))

    def explore(self, obs: dict[str, th.Tensor], generators: list[th.Generator], warm_up: bool) -> th.Tensor:
        """SB3's ``_sample_action``: uniform (warm-up) or the actor's action, plus Gaussian action noise, clipped."""
        S, a_dim = self.cfg.n_members, self.cfg.action_dim
        if warm_up:
            a = uniform_actions(generators, a_dim, self.cfg.device)
        else:
            a = self.act({k: v.unsqueeze(1) for k, v in obs.items()})[:, 0]
        z = gaussian(generators, (a_dim,), self.cfg.device)
        return (a + z * self.action_sigma).clamp(-1.0, 1.0).reshape(S, a_dim)

    # ----- one gradient step -----------------------------------------------------------------------------------
    def target_policy_noise(self, actions: th.Tensor, generators: list[th.Generator] | None) -> th.Tensor | None:
        """TD3 target smoothing noise (S, B, a), clipped; None when every member's clip is 0 (DDPG)."""
        if not self.smoothing:
            return None
        if generators is None:
            raise ValueError("TD3 target noise needs the members' generators")
        z = gaussian(generators, tuple(actions.shape[1:]), self.cfg.device)
        return th.maximum(th.minimum(z * self.noise_sigma, self.noise_clip), -self.noise_clip)

    def _critic_in(self, feats: th.Tensor, actions: th.Tensor) -> th.Tensor:
        return th.cat([feats, actions.to(feats.dtype)], dim=-1)

    def update(self, batch: Batch, generators: list[th.Generator] | None = None, gradient_step: int = 0,
               target_noise: th.Tensor | None = None) -> dict[str, th.Tensor]:
        """One gradient step for every member on its slice of ``batch``; returns per-member losses (S,)."""
        cfg = self.cfg
        self.n_updates += 1
        use_grad = self.use_grad
        if target_noise is None:
            target_noise = self.target_policy_noise(batch.actions, generators)
        obs, next_obs = batch.observations, batch.next_observations
        scale = (1.0 - batch.dones) * self.gamma  # (S, B, 1)
        with self.autocast():
            feats_next = features(next_obs)
            if use_grad:
                value, grad_next = gg.td3_target_and_goal_gradient(
                    self.actor_target.layers(), [t.layers() for t in self.critic_targets], feats_next, feats_next,
                    target_noise, self.cols, self.cols, None, cfg.through_target_actor)
            else:
                with th.no_grad():
                    next_a = self.actor_target(feats_next)
                    next_a = (next_a if target_noise is None else next_a + target_noise).clamp(-1, 1)
                    x_next = self._critic_in(feats_next, next_a)
                    value = th.cat([t(x_next) for t in self.critic_targets], dim=-1).min(dim=-1, keepdim=True).values
            target = (batch.rewards + scale * value.float()).detach()
            x = self._critic_in(features(obs), batch.actions)
            if use_grad:
                pairs = [gg.relu_mlp_input_gradient(c.layers(), x, self.cols) for c in self.critics]
                qs = [q.float() for q, _ in pairs]
                mask = gg.sparse_mask(batch.rewards, cfg.c_low)  # (S, B)
                grad_target = scale * grad_next.float()
                reengage = sum(gg.reengage_penalty(g.float(), grad_target, mask, None, cfg.goal_reduction,
                                                   batch_dims=2) for _, g in pairs)
            else:
                qs = [c(x).float() for c in self.critics]
                reengage = th.zeros(cfg.n_members, device=cfg.device)
            td = sum(((q - target) ** 2).mean(dim=(1, 2)) for q in qs)  # (S,): sum over critics of each mse
            critic_loss = td + self.alpha.reshape(-1) * reengage if use_grad else td
            critic_params = self.critic_opt.params
            grads = th.autograd.grad(critic_loss.sum(), critic_params)
        self.critic_opt.step(list(grads))

        out = {"critic_loss": td.detach(), "reengage_loss": reengage.detach()}
        if self.n_updates % cfg.policy_delay == 0:
            with self.autocast():
                feats_pi = features(obs)
                pi = self.actor(feats_pi)
                actor_loss = -self.critics[0](self._critic_in(feats_pi, pi)).float().mean(dim=(1, 2))
                grads = th.autograd.grad(actor_loss.sum(), self.actor_opt.params)
            self.actor_opt.step(list(grads))
            polyak(self.critics, self.critic_targets, self.tau)
            polyak([self.actor], [self.actor_target], self.tau)
            out["actor_loss"] = actor_loss.detach()
        return out
