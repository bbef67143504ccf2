"""DDPG / TD3 (+ the ReenGAGE goal-gradient term) for S independent members on stacked networks.

One :meth:`FleetTD3.update` is, for every member k, the update of ``rlcert.agents.ReenGAGEDDPG`` /
``ReenGAGETD3`` (and of stock SB3 DDPG / TD3 at alpha = 0) on member k's batch:

* target   y = r + (1 - done) gamma_k min_j Q'_j(s', clip(pi'(s', g) + noise, -1, 1), g)
* critic   sum_j mse(Q_j(s, a, g), y) + alpha_k sum_j mean_b[ mask_b * red_i (dQ_j/dg_i - dy/dg_i)^2 ],
  red = mean over goal coordinates ("mean", the published convention) or sum ("sum"); dy/dg is the total
  derivative (through the target actor), detached; mask_b = 1[r_b = c_low] (sparse mode)
* actor    -mean_b Q_1(s, pi(s, g), g), every ``policy_delay`` updates, after the critic step, then polyak
  updates of both target networks with tau_k.

Networks follow SB3's ``MultiInputPolicy`` for Dict observations: input = concat(achieved_goal, desired_goal,
observation) (gymnasium sorts Dict keys), actor = MLP + tanh, critic = MLP on concat(features, action).
Per-member settings (tensors of shape (S,)): learning rate, alpha, gamma, tau, target policy noise and clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch as th

from rlcert.fleet.adam import StackedAdam
from rlcert.fleet.replay import Batch
from rlcert.fleet.stacked import StackedMLP

OBS_KEYS = ("achieved_goal", "desired_goal", "observation")  # gymnasium's sorted Dict key order


@dataclass
class FleetSettings:
    """Shape-defining settings shared by all members, and per-member settings (lists of length S)."""

    obs_dim: int
    goal_dim: int
    action_dim: int
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    n_critics: int = 1
    policy_delay: int = 1
    goal_reduction: str = "mean"
    c_low: float = -1.0
    learning_rate: list[float] = field(default_factory=lambda: [1e-3])
    alpha: list[float] = field(default_factory=lambda: [0.0])
    gamma: list[float] = field(default_factory=lambda: [0.99])
    tau: list[float] = field(default_factory=lambda: [0.005])
    target_policy_noise: list[float] = field(default_factory=lambda: [0.0])
    target_noise_clip: list[float] = field(default_factory=lambda: [0.0])

    def __post_init__(self) -> None:
        if self.goal_reduction not in ("sum", "mean"):
            raise ValueError(f"goal_reduction must be 'sum' or 'mean', got {self.goal_reduction!r}")
        if self.n_critics < 1 or self.policy_delay < 1:
            raise ValueError(f"n_critics and policy_delay must be >= 1, got {self.n_critics}, {self.policy_delay}")
        n = len(self.learning_rate)
        for name in ("alpha", "gamma", "tau", "target_policy_noise", "target_noise_clip"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have one value per member ({n}), got {len(getattr(self, name))}")
        if any(a < 0 for a in self.alpha):
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")

    @property
    def n_members(self) -> int:
        return len(self.learning_rate)


def _col(values: list[float]) -> th.Tensor:
    return th.tensor(values, dtype=th.float32).reshape(-1, 1, 1)


class FleetTD3:
    """Stacked actor, critics (S * n_critics, member-major) and their targets, with one Adam each."""

    def __init__(self, settings: FleetSettings, generators: list[th.Generator] | None = None) -> None:
        self.cfg = s = settings
        S, C = s.n_members, s.n_critics
        feat = s.obs_dim + 2 * s.goal_dim
        self.actor = StackedMLP(S, feat, s.net_arch, s.action_dim, squash=True)
        self.critic = StackedMLP(S * C, feat + s.action_dim, s.net_arch, 1)
        if generators is not None:  # SB3 order: actor (then its target copy), then the critics
            for k, g in enumerate(generators):
                self.actor.init_member(k, g)
                for j in range(C):
                    self.critic.init_member(k * C + j, g)
        self.actor_target = StackedMLP(S, feat, s.net_arch, s.action_dim, squash=True)
        self.critic_target = StackedMLP(S * C, feat + s.action_dim, s.net_arch, 1)
        self.sync_targets()
        lr = th.tensor(s.learning_rate, dtype=th.float64)
        self.actor_opt = StackedAdam(list(self.actor.parameters()), lr)
        self.critic_opt = StackedAdam(list(self.critic.parameters()), lr.repeat_interleave(C))
        self.alpha, self.gamma, self.tau = _col(s.alpha), _col(s.gamma), th.tensor(s.tau, dtype=th.float32)
        self.noise_sigma, self.noise_clip = _col(s.target_policy_noise), _col(s.target_noise_clip)
        self.n_updates = 0

    def sync_targets(self) -> None:
        """Targets := online networks (at construction and after loading member parameters)."""
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())

    # ----- forward passes --------------------------------------------------------------------------------------
    @staticmethod
    def features(obs: dict[str, th.Tensor], goal: th.Tensor | None = None) -> th.Tensor:
        parts = [obs[k] if (k != "desired_goal" or goal is None) else goal for k in OBS_KEYS]
        return th.cat(parts, dim=-1)

    def act(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        """Deterministic actions (S, B, a) in [-1, 1] for observations of (S, B, dim)."""
        with th.no_grad():
            return self.actor(self.features(obs))

    def _critics(self, net: StackedMLP, feats: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """feats (S, C, B, f) or (S, B, f) with actions (S, B, a) -> Q (S, C, B, 1)."""
        S, C = self.cfg.n_members, self.cfg.n_critics
        if feats.dim() == 3:
            feats = feats.unsqueeze(1).expand(S, C, *feats.shape[1:])
        x = th.cat([feats, actions.unsqueeze(1).expand(S, C, *actions.shape[1:])], dim=-1)
        return net(x.reshape(S * C, *x.shape[2:])).reshape(S, C, x.shape[2], 1)

    # ----- one gradient step -----------------------------------------------------------------------------------
    def target_policy_noise(self, actions: th.Tensor, generators: list[th.Generator] | None) -> th.Tensor | None:
        """TD3 target smoothing noise (S, B, a), clipped; None when every member's clip is 0 (DDPG)."""
        if float(self.noise_clip.abs().max()) == 0.0:
            return None
        if generators is None:
            raise ValueError("TD3 target noise needs the members' generators")
        z = th.stack([th.randn(actions.shape[1:], generator=g) for g in generators])
        return th.maximum(th.minimum(z * self.noise_sigma, self.noise_clip), -self.noise_clip)

    def update(self, batch: Batch, generators: list[th.Generator] | None = None,
               target_noise: th.Tensor | None = None) -> dict[str, th.Tensor]:
        """One gradient step for every member on its slice of ``batch``; returns per-member losses (S,)."""
        S, C, cfg = self.cfg.n_members, self.cfg.n_critics, self.cfg
        self.n_updates += 1
        use_grad = bool((self.alpha > 0).any())
        if target_noise is None:
            target_noise = self.target_policy_noise(batch.actions, generators)
        next_obs = batch.next_observations
        g_next = next_obs["desired_goal"].detach().clone().requires_grad_(use_grad)
        with th.set_grad_enabled(use_grad):
            feats_next = self.features(next_obs, g_next)
            next_a = self.actor_target(feats_next)
            if target_noise is not None:
                next_a = next_a + target_noise
            next_a = next_a.clamp(-1, 1)
            next_q = self._critics(self.critic_target, feats_next, next_a).min(dim=1).values  # (S, B, 1)
            grad_next = th.autograd.grad(next_q.sum(), g_next)[0] if use_grad else None
        scale = (1.0 - batch.dones) * self.gamma
        target = (batch.rewards + scale * next_q).detach()

        obs = batch.observations
        g = obs["desired_goal"].detach().unsqueeze(1).expand(S, C, *obs["desired_goal"].shape[1:])
        g = g.clone().requires_grad_(use_grad)
        feats = th.cat([obs["achieved_goal"].unsqueeze(1).expand(S, C, *obs["achieved_goal"].shape[1:]), g,
                        obs["observation"].unsqueeze(1).expand(S, C, *obs["observation"].shape[1:])], dim=-1)
        q = self._critics(self.critic, feats, batch.actions)  # (S, C, B, 1)
        td = ((q - target.unsqueeze(1)) ** 2).mean(dim=(2, 3)).sum(dim=1)  # (S,)
        critic_loss = td
        reengage = th.zeros(S)
        if use_grad:
            grad_q = th.autograd.grad(q.sum(), g, create_graph=True)[0]  # (S, C, B, d)
            target_grad = (scale * grad_next).detach().unsqueeze(1)
            sq = (grad_q - target_grad) ** 2
            per_sample = sq.mean(dim=-1) if cfg.goal_reduction == "mean" else sq.sum(dim=-1)  # (S, C, B)
            mask = (batch.rewards[..., 0] == cfg.c_low).to(per_sample.dtype).unsqueeze(1)
            reengage = (per_sample * mask).mean(dim=2).sum(dim=1)  # (S,)
            critic_loss = td + self.alpha.reshape(-1) * reengage
        critic_params = list(self.critic.parameters())
        self.critic_opt.step(list(th.autograd.grad(critic_loss.sum(), critic_params)))

        out = {"critic_loss": td.detach(), "reengage_loss": reengage.detach()}
        if self.n_updates % cfg.policy_delay == 0:
            feats_pi = self.features(obs)
            pi = self.actor(feats_pi)
            q1 = self._critics(self.critic, feats_pi, pi)[:, 0]  # (S, B, 1) first critic of each member
            actor_loss = -q1.mean(dim=(1, 2))
            actor_params = list(self.actor.parameters())
            self.actor_opt.step(list(th.autograd.grad(actor_loss.sum(), actor_params)))
            self.polyak()
            out["actor_loss"] = actor_loss.detach()
        return out

    @th.no_grad()
    def polyak(self) -> None:
        """target <- (1 - tau_k) target + tau_k online, member by member (SB3's polyak_update arithmetic)."""
        C = self.cfg.n_critics
        for net, tgt, tau in ((self.critic, self.critic_target, self.tau.repeat_interleave(C)),
                              (self.actor, self.actor_target, self.tau)):
            for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                t = tau.reshape(-1, *([1] * (p.dim() - 1)))
                tp.mul_(1 - t).add_(p * t)

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "actor_target": self.actor_target.state_dict(), "critic_target": self.critic_target.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "n_updates": self.n_updates}

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.n_updates = int(state["n_updates"])
