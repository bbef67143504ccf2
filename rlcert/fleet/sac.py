"""SAC (+ the ReenGAGE goal-gradient term, ``rlcert.agents.ReenGAGESAC``) for S independent members on stacked networks.

One :meth:`FleetSAC.update` is, for every member k, SB3's SAC ``train()`` step as :class:`rlcert.agents.loops.SACLoop`
runs it (stock SAC at alpha = 0):

* a ~ pi(.|s) reparameterised (SB3's ``SquashedDiagGaussianDistribution``: tanh of a Gaussian, its log-prob with
  the tanh correction; the Gaussian's noise is drawn from member k's generator);
* entropy coefficient: fixed, or tuned as SB3 does (``ent_coef="auto"``): loss -log c (log pi + target_entropy),
  one Adam step on log c with the member's learning rate, before the critic step (the critic uses c before it);
* target y = r + gamma (1 - done) (min_j Q'_j(s', a') - c log pi(a'|s')), a' ~ pi(.|s') and, with ReenGAGE, its
  total goal derivative by one first-order backward (:func:`rlcert.agents.goal_gradient.target_and_goal_gradient`
  with a member axis), through a', the entropy term and Q';
* critic 0.5 (sum_j mse(Q_j, y) + alpha sum_j E_j), E_j the agents' masked penalty on the written-out d/dg Q_j;
* actor (c log pi(a|s) - min_j Q_j(s, a)).mean() with the updated critics, then polyak of the critics every
  ``target_update_interval`` gradient steps (counted within one ``train()`` call, as SB3 does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch as th
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN

from rlcert.agents import goal_gradient as gg
from rlcert.fleet.adam import StackedAdam
from rlcert.fleet.family import (
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
from rlcert.fleet.td3 import action_noise_sigma


@dataclass
class SACSettings(MemberSettings):
    """SAC(+ReenGAGE) settings: shared shapes and options, per-member lists of length S."""

    n_critics: int = 2
    goal_reduction: str = "mean"
    c_low: float = -1.0
    through_target_actor: bool = True
    target_update_interval: int = 1
    ent_coef_auto: bool = True
    target_entropy: float = -1.0
    alpha: list[float] = field(default_factory=lambda: [0.0])
    ent_coef: list[float] = field(default_factory=lambda: [1.0])  # initial (auto) or fixed value
    action_noise_sigma: list[float] | None = None

    PER_MEMBER = ("gamma", "tau", "alpha", "ent_coef")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.goal_reduction not in gg.REDUCTIONS:
            raise ValueError(f"goal_reduction must be one of {gg.REDUCTIONS}, got {self.goal_reduction!r}")
        if any(a < 0 for a in self.alpha) or any(c <= 0 for c in self.ent_coef):
            raise ValueError(f"alpha must be >= 0 and ent_coef > 0, got {self.alpha}, {self.ent_coef}")
        if self.action_noise_sigma is None:
            self.action_noise_sigma = [0.0] * self.n_members


class FleetSAC(FleetAlgorithm):
    """Stacked SAC actor (trunk + mean and log-std heads), critics, critic targets and entropy coefficients."""

    def __init__(self, settings: SACSettings, generators: list[th.Generator] | None = None) -> None:
        self.cfg = s = settings
        S, C, H = s.n_members, s.n_critics, s.net_arch[-1]
        feat, dev = s.obs_dim + 2 * s.goal_dim, s.device
        # SB3's SAC actor: latent_pi = ReLU MLP with a ReLU after its last layer; mu and log_std linear heads
        self.trunk = StackedMLP(S, feat, s.net_arch[:-1], H, device=dev)
        self.mu = StackedMLP(S, H, [], s.action_dim, device=dev)
        self.log_std = StackedMLP(S, H, [], s.action_dim, device=dev)
        self.critics = [StackedMLP(S, feat + s.action_dim, s.net_arch, 1, device=dev) for _ in range(C)]
        if generators is not None:  # SB3 order: actor (trunk, mu, log_std), then the critics
            for k, g in enumerate(generators):
                for net in (self.trunk, self.mu, self.log_std, *self.critics):
                    net.init_member(k, g)
        self.critic_targets = [clone_net(c) for c in self.critics]
        lr = th.tensor(s.learning_rate, dtype=th.float64)
        self.actor_opt = StackedAdam([p for n in (self.trunk, self.mu, self.log_std) for p in n.parameters()], lr)
        self.critic_opt = StackedAdam([p for c in self.critics for p in c.parameters()], lr)
        self.log_ent_coef = th.log(th.tensor(s.ent_coef, dtype=th.float32, device=dev)).reshape(-1, 1, 1)
        self.log_ent_coef.requires_grad_(s.ent_coef_auto)
        self.ent_opt = StackedAdam([self.log_ent_coef], lr) if s.ent_coef_auto else None
        self.fixed_ent_coef = col(s.ent_coef, dev)  # SB3's ent_coef_tensor when not tuned
        self.alpha, self.gamma = col(s.alpha, dev), col(s.gamma, dev)
        self.tau = th.tensor(s.tau, dtype=th.float32, device=dev)
        self.action_sigma = th.tensor(s.action_noise_sigma, dtype=th.float32, device=dev).reshape(-1, 1)
        self.cols = goal_columns(s.goal_dim)
        # decided once from the settings (no device synchronisation per update)
        self.use_grad, self.noisy = any(a > 0 for a in s.alpha), any(x > 0 for x in s.action_noise_sigma)
        self.n_updates = 0

    # ----- plugging in -----------------------------------------------------------------------------------------
    @classmethod
    def settings_from_agent(cls, agent: Any, env: Any, n_members: int, precision: str) -> SACSettings:
        def member(value: float) -> list[float]:
            return [float(value)] * n_members

        auto = agent.ent_coef_optimizer is not None
        ent = float(th.exp(agent.log_ent_coef.detach()).item()) if auto else float(agent.ent_coef_tensor.item())
        return SACSettings(
            obs_dim=env.obs_dim, goal_dim=env.goal_dim, action_dim=env.action_dim, net_arch=list(agent.actor.net_arch),
            n_critics=len(agent.critic.q_networks), goal_reduction=getattr(agent, "goal_reduction", "mean"),
            c_low=float(getattr(agent, "c_low", -1.0)),
            through_target_actor=bool(getattr(agent, "through_target_actor", True)),
            target_update_interval=int(agent.target_update_interval), ent_coef_auto=auto,
            target_entropy=float(agent.target_entropy) if auto else 0.0,
            learning_rate=member(agent.learning_rate), gamma=member(agent.gamma), tau=member(agent.tau),
            alpha=member(getattr(agent, "alpha", 0.0)), ent_coef=member(ent),
            action_noise_sigma=member(action_noise_sigma(agent)), precision=precision)

    @classmethod
    def member_overridable(cls) -> tuple[str, ...]:
        return ("learning_rate", "alpha", "gamma", "tau", "ent_coef", "action_noise_sigma")

    def modules(self) -> dict[str, StackedMLP]:
        out = {"trunk": self.trunk, "mu": self.mu, "log_std": self.log_std}
        for j, (c, t) in enumerate(zip(self.critics, self.critic_targets, strict=True)):
            out[f"critic{j}"], out[f"critic_target{j}"] = c, t
        return out

    def optimizers(self) -> dict[str, StackedAdam]:
        return {"actor": self.actor_opt, "critic": self.critic_opt, **({"ent": self.ent_opt} if self.ent_opt else {})}

    def extra_state(self) -> dict:
        return {"log_ent_coef": self.log_ent_coef.detach().clone()}

    def load_extra_state(self, state: dict) -> None:
        with th.no_grad():
            self.log_ent_coef.copy_(state["log_ent_coef"])

    def member_pairs(self, k: int, model: Any) -> list[tuple[StackedMLP, int, list]]:
        if len(model.critic.q_networks) != self.cfg.n_critics:
            raise ValueError(f"agent has {len(model.critic.q_networks)} critics, the fleet {self.cfg.n_critics}")
        pairs = [(self.trunk, k, linears_of(model.actor.latent_pi)), (self.mu, k, [model.actor.mu]),
                 (self.log_std, k, [model.actor.log_std])]
        for j in range(self.cfg.n_critics):
            pairs.append((self.critics[j], k, linears_of(model.critic.q_networks[j])))
            pairs.append((self.critic_targets[j], k, linears_of(model.critic_target.q_networks[j])))
        return pairs

    def load_ent_coef(self, k: int, model: Any) -> None:
        """Member k's entropy coefficient := the agent's (tests)."""
        with th.no_grad():
            if model.ent_coef_optimizer is not None:
                self.log_ent_coef[k].fill_(float(model.log_ent_coef.detach().reshape(-1)[0]))
            else:
                self.fixed_ent_coef[k].fill_(float(model.ent_coef_tensor))

    # ----- the policy --------------------------------------------------------------------------------------------
    def _mean_log_std(self, feats: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        h = th.relu(self.trunk(feats))
        return self.mu(h).float(), self.log_std(h).float().clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, feats: th.Tensor, eps: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """(tanh-squashed reparameterised actions (S, B, a), their log-probs (S, B, 1)) for standard normal noise
        ``eps`` (S, B, a): SB3's ``SquashedDiagGaussianDistribution`` on the members' rows."""
        mean, log_std = self._mean_log_std(feats)
        a = mean.shape[-1]
        dist = SquashedDiagGaussianDistribution(a).proba_distribution(mean.reshape(-1, a), log_std.reshape(-1, a))
        gauss = dist.distribution.loc + eps.reshape(-1, a) * dist.distribution.scale  # Normal.rsample's expression
        actions = th.tanh(gauss)
        log_prob = dist.log_prob(actions, gauss)
        return actions.reshape(mean.shape), log_prob.reshape(*mean.shape[:-1], 1)

    def act(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        with th.no_grad():
            return th.tanh(self._mean_log_std(features(obs))[0])

    def explore(self, obs: dict[str, th.Tensor], generators: list[th.Generator], warm_up: bool) -> th.Tensor:
        """SB3's ``_sample_action``: uniform (warm-up) or a sample of the policy, plus action noise if any."""
        S, a_dim = self.cfg.n_members, self.cfg.action_dim
        if warm_up:
            a = uniform_actions(generators, a_dim, self.cfg.device)
        else:
            with th.no_grad():
                eps = gaussian(generators, (1, a_dim), self.cfg.device)
                a = self.sample(features({k: v.unsqueeze(1) for k, v in obs.items()}), eps)[0][:, 0]
        if self.noisy:
            a = (a + gaussian(generators, (a_dim,), self.cfg.device) * self.action_sigma).clamp(-1.0, 1.0)
        return a.reshape(S, a_dim)

    def _critic_in(self, feats: th.Tensor, actions: th.Tensor) -> th.Tensor:
        return th.cat([feats, actions.to(feats.dtype)], dim=-1)

    # ----- one gradient step -----------------------------------------------------------------------------------
    def update(self, batch: Batch, generators: list[th.Generator] | None = None, gradient_step: int = 0,
               noise: tuple[th.Tensor, th.Tensor] | None = None) -> dict[str, th.Tensor]:
        """One gradient step for every member; ``noise`` = (eps for a ~ pi(s), eps for a' ~ pi(s')), each (S, B, a),
        else drawn from the members' generators in that order."""
        cfg = self.cfg
        self.n_updates += 1
        obs, next_obs = batch.observations, batch.next_observations
        if noise is None:
            if generators is None:
                raise ValueError("SAC needs the members' generators (or explicit noise)")
            shape = tuple(batch.actions.shape[1:])
            noise = (gaussian(generators, shape, cfg.device), gaussian(generators, shape, cfg.device))
        use_grad = self.use_grad
        with self.autocast():
            feats = features(obs)
            actions_pi, log_prob = self.sample(feats, noise[0])
            out: dict[str, th.Tensor] = {}
            if self.ent_opt is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_loss = -(self.log_ent_coef * (log_prob + cfg.target_entropy).detach()).mean(dim=(1, 2))
                self.ent_opt.step(list(th.autograd.grad(ent_loss.sum(), [self.log_ent_coef])))
                out["ent_coef_loss"] = ent_loss.detach()
            else:
                ent_coef = self.fixed_ent_coef
            out["ent_coef"] = ent_coef.reshape(-1)

            def next_value(x: th.Tensor | None) -> th.Tensor:
                f_critic = features(next_obs, x)
                f_actor = f_critic if cfg.through_target_actor else features(next_obs)
                a2, logp2 = self.sample(f_actor, noise[1])
                x2 = self._critic_in(f_critic, a2)
                q = th.cat([t(x2).float() for t in self.critic_targets], dim=-1).min(dim=-1, keepdim=True).values
                return q - ent_coef * logp2

            if use_grad:
                target, grad_target = gg.target_and_goal_gradient(next_value, next_obs["desired_goal"],
                                                                  batch.rewards, batch.dones, self.gamma)
                x = self._critic_in(feats, batch.actions)
                pairs = [gg.relu_mlp_input_gradient(c.layers(), x, self.cols) for c in self.critics]
                qs = [q.float() for q, _ in pairs]
                mask = gg.sparse_mask(batch.rewards, cfg.c_low)
                reengage = sum(gg.reengage_penalty(g.float(), grad_target.float(), mask, None, cfg.goal_reduction,
                                                   batch_dims=2) for _, g in pairs)
            else:
                with th.no_grad():
                    target = batch.rewards + (1 - batch.dones) * self.gamma * next_value(None)
                qs = [c(self._critic_in(feats.detach(), batch.actions)).float() for c in self.critics]
                reengage = th.zeros(cfg.n_members, device=cfg.device)
            target = target.detach()
            td = sum(((q - target) ** 2).mean(dim=(1, 2)) for q in qs)
            critic_loss = 0.5 * (td + self.alpha.reshape(-1) * reengage) if use_grad else 0.5 * td
            grads = th.autograd.grad(critic_loss.sum(), self.critic_opt.params)
        self.critic_opt.step(list(grads))
        out.update(critic_loss=(0.5 * td).detach(), reengage_loss=reengage.detach())

        with self.autocast():
            x_pi = self._critic_in(feats, actions_pi)
            min_q = th.cat([c(x_pi).float() for c in self.critics], dim=-1).min(dim=-1, keepdim=True).values
            actor_loss = (ent_coef * log_prob - min_q).mean(dim=(1, 2))
            grads = th.autograd.grad(actor_loss.sum(), self.actor_opt.params)
        self.actor_opt.step(list(grads))
        out["actor_loss"] = actor_loss.detach()
        if gradient_step % cfg.target_update_interval == 0:
            polyak(self.critics, self.critic_targets, self.tau)
        return out


