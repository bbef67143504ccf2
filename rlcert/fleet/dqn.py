"""DQN and ReenGAGE-DQN (+ HER) for S independent members on stacked Q-networks (torch-vectorised Bit-Flipping).

One :meth:`FleetDQN.update` is, for every member k, the update of ``rlcert.agents.ReenGAGEDQN`` (``DQNLoop.train``
with the ``GoalInput`` critic-loss hook; stock SB3 DQN at alpha = 0) on member k's batch, with the agents' own
functions applied with a leading member axis (never re-typed):

* target and its goal gradient: :func:`rlcert.agents.goal_gradient.target_and_goal_gradient` on the member x batch
  rows, with the bootstrap value :func:`rlcert.agents.loops.hard_and_soft_values` (hard max for the TD target, the
  softmax_tau soft value for the gradient term, thesis App. G.2);
* d/dg Q_a written out with the agents' :func:`~rlcert.agents.goal_gradient.relu_mlp_forward` and
  :func:`~rlcert.agents.goal_gradient.relu_mlp_vjp` (the one-hot action as output weights: a first-order graph, no
  double backward; the agent's autograd ``critic_goal_gradient`` gives the same values); sparse mask
  :func:`~rlcert.agents.goal_gradient.sparse_mask`; penalty :func:`~rlcert.agents.goal_gradient.reengage_penalty`
  (``batch_dims=2``: a mean per member) and SB3's Huber loss ``F.smooth_l1_loss`` vmapped over the member axis;
* loss_k = Huber_k + alpha_k * penalty_k; gradients clipped per member to ``max_grad_norm`` (SB3's
  ``clip_grad_norm_`` arithmetic on member k's parameters); Adam with torch's defaults, as SB3's DQN policy.

Settings are read from a probe of the config's agent (:meth:`FleetDQN.settings_from_agent`: SB3's and rlcert's
defaults). Exploration follows SB3's DQN: uniform random actions before ``learning_starts``, then epsilon-greedy with
SB3's linear schedule; :meth:`FleetDQN.on_step` (after every env step, as SB3's ``_on_step``) polyak-updates the
target network every ``target_update_interval`` env steps and updates the exploration rate. The loop is
:class:`rlcert.fleet.trainer.Fleet`'s (SB3's off-policy schedule: train_freq, gradient_steps).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch as th
from torch.nn import functional as F

from rlcert.agents import goal_gradient as gg
from rlcert.agents.dqn import ReenGAGEDQN
from rlcert.agents.loops import hard_and_soft_values
from rlcert.fleet.adam import StackedAdam
from rlcert.fleet.family import FleetAlgorithm, MemberSettings, clone_net, col, features, goal_columns, polyak
from rlcert.fleet.replay import Batch
from rlcert.fleet.stacked import StackedMLP, linears_of

SOFTMAX_TAU = inspect.signature(ReenGAGEDQN.__init__).parameters["softmax_tau"].default  # stock DQN: unused


@dataclass
class DQNSettings(MemberSettings):
    """DQN(+ReenGAGE) settings: shared shapes and options, per-member lists of length S. ``action_dim`` is 1 (the
    stored action is the index), ``n_actions`` the number of discrete actions."""

    n_actions: int = 2
    goal_reduction: str = "mean"
    c_low: float = -1.0
    softmax_tau: float = SOFTMAX_TAU
    max_grad_norm: float = 10.0
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    exploration_fraction: float = 0.1
    target_update_interval: int = 10_000
    alpha: list[float] = field(default_factory=lambda: [0.0])

    PER_MEMBER = ("gamma", "tau", "alpha")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.goal_reduction not in gg.REDUCTIONS:
            raise ValueError(f"goal_reduction must be one of {gg.REDUCTIONS}, got {self.goal_reduction!r}")
        if not self.softmax_tau >= 0:
            raise ValueError(f"softmax_tau must be >= 0, got {self.softmax_tau!r}")
        if any(a < 0 for a in self.alpha):
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.n_actions < 1 or self.target_update_interval < 1 or not 0 < self.exploration_fraction:
            raise ValueError("n_actions, target_update_interval and exploration_fraction must be positive")

    def exploration_rate(self, progress_remaining: float) -> float:
        """SB3's ``LinearSchedule(initial_eps, final_eps, fraction)(progress_remaining)``."""
        start, end, fraction = self.exploration_initial_eps, self.exploration_final_eps, self.exploration_fraction
        if (1 - progress_remaining) > fraction:
            return end
        return start + (1 - progress_remaining) * (end - start) / fraction


def member_grad_norm_clip(grads: list[th.Tensor], max_norm: float) -> list[th.Tensor]:
    """``torch.nn.utils.clip_grad_norm_`` for each member separately: grads (S, ...) -> clipped grads."""
    norms = th.stack([th.linalg.vector_norm(g.flatten(1), dim=1) for g in grads], dim=1)  # (S, n_params)
    total = th.linalg.vector_norm(norms, dim=1)  # (S,)
    coef = th.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * coef.reshape(-1, *([1] * (g.dim() - 1))) for g in grads]


class FleetDQN(FleetAlgorithm):
    """Stacked Q-networks (S, features -> n_actions), their targets and one Adam; epsilon-greedy exploration."""

    env_ids = ("rlcert/BitFlipping-v0",)
    standard_config = False
    ALGO_KWARGS = {"learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
                   "gradient_steps", "replay_buffer_class", "replay_buffer_kwargs", "target_update_interval",
                   "exploration_fraction", "exploration_initial_eps", "exploration_final_eps", "max_grad_norm",
                   "policy_kwargs", "alpha", "softmax_tau", "reengage_mode", "c_low", "goal_reduction", "goal_key",
                   "goal_weighting", "verbose"}

    @classmethod
    def config_reason(cls, config: dict) -> str | None:
        kw = config.get("algo_kwargs") or {}
        if config.get("policy", "MultiInputPolicy") != "MultiInputPolicy":
            return "policy other than MultiInputPolicy"
        extra = set(kw) - cls.ALGO_KWARGS
        if extra:
            return f"algo_kwargs {sorted(extra)}"
        pk = kw.get("policy_kwargs") or {}
        if set(pk) - {"net_arch"} or not isinstance(pk.get("net_arch", []), list) or pk.get("net_arch") == []:
            return "policy_kwargs other than a non-empty list net_arch"
        if kw.get("replay_buffer_class") not in (None, "HerReplayBuffer"):
            return f"replay_buffer_class {kw.get('replay_buffer_class')!r}"
        rk = kw.get("replay_buffer_kwargs") or {}
        if set(rk) - {"n_sampled_goal", "goal_selection_strategy"} or rk.get("goal_selection_strategy",
                                                                               "future") != "future":
            return "HER other than the 'future' strategy"
        if kw.get("reengage_mode", "sparse") != "sparse" or kw.get("goal_weighting") is not None:
            return "ReenGAGE dense mode / goal weighting"
        if kw.get("goal_key", "desired_goal") != "desired_goal":
            return "goal_key other than desired_goal"
        return None

    def __init__(self, settings: DQNSettings, generators: list[th.Generator] | None = None) -> None:
        self.cfg = s = settings
        S, dev = s.n_members, s.device
        self.q_net = StackedMLP(S, s.obs_dim + 2 * s.goal_dim, s.net_arch, s.n_actions, device=dev)
        if generators is not None:
            for k, g in enumerate(generators):
                self.q_net.init_member(k, g)
        self.q_net_target = clone_net(self.q_net)
        self.opt = StackedAdam(list(self.q_net.parameters()), th.tensor(s.learning_rate, dtype=th.float64))
        self.alpha, self.gamma = col(s.alpha, dev), col(s.gamma, dev)
        self.tau = th.tensor(s.tau, dtype=th.float32, device=dev)
        self.use_grad = any(a > 0 for a in s.alpha)  # decided once (no device sync per update)
        self.exploration_rate = 0.0  # SB3: set after the first env step
        self.n_updates = 0

    # ----- plugging in -----------------------------------------------------------------------------------------
    @classmethod
    def settings_from_agent(cls, agent: Any, env: Any, n_members: int, precision: str) -> DQNSettings:
        def member(value: float) -> list[float]:
            return [float(value)] * n_members

        return DQNSettings(
            obs_dim=env.obs_dim, goal_dim=env.goal_dim, action_dim=1, n_actions=int(agent.action_space.n),
            net_arch=list(agent.q_net.net_arch), goal_reduction=getattr(agent, "goal_reduction", "mean"),
            c_low=float(getattr(agent, "c_low", -1.0)), softmax_tau=float(getattr(agent, "softmax_tau", SOFTMAX_TAU)),
            max_grad_norm=float(agent.max_grad_norm), exploration_initial_eps=float(agent.exploration_initial_eps),
            exploration_final_eps=float(agent.exploration_final_eps),
            exploration_fraction=float(agent.exploration_fraction),
            target_update_interval=int(agent.target_update_interval), learning_rate=member(agent.learning_rate),
            alpha=member(getattr(agent, "alpha", 0.0)), gamma=member(agent.gamma), tau=member(agent.tau),
            precision=precision)

    @classmethod
    def member_overridable(cls) -> tuple[str, ...]:
        return ("learning_rate", "alpha", "gamma", "tau")

    def modules(self) -> dict[str, StackedMLP]:
        return {"q_net": self.q_net, "q_net_target": self.q_net_target}

    def optimizers(self) -> dict[str, StackedAdam]:
        return {"q_net": self.opt}

    def member_pairs(self, k: int, model: Any) -> list[tuple[StackedMLP, int, list]]:
        return [(self.q_net, k, linears_of(model.q_net)), (self.q_net_target, k, linears_of(model.q_net_target))]

    def extra_state(self) -> dict:
        return {"exploration_rate": self.exploration_rate}

    def load_extra_state(self, state: dict) -> None:
        self.exploration_rate = float(state["exploration_rate"])

    def sync_targets(self) -> None:
        self.q_net_target.load_state_dict(self.q_net.state_dict())

    # ----- acting ------------------------------------------------------------------------------------------------
    def act(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        """Greedy actions (S, B, 1) (int64) for observations of (S, B, dim)."""
        with th.no_grad():
            return self.q_net(features(obs)).argmax(dim=-1, keepdim=True)

    def explore(self, obs: dict[str, th.Tensor], generators: list[th.Generator], warm_up: bool) -> th.Tensor:
        """(S, 1) int64 actions: uniform during warm-up, then epsilon-greedy (SB3's ``DQN.predict``); every member
        draws (u, random action) from its generator at every step, whatever the phase."""
        n = self.cfg.n_actions
        u = th.stack([th.rand(1, generator=g, dtype=th.float64) for g in generators]).to(self.cfg.device)  # (S, 1)
        random_a = th.stack([th.randint(n, (1,), generator=g) for g in generators]).to(self.cfg.device)
        if warm_up:
            return random_a
        greedy = self.act({k: v.unsqueeze(1) for k, v in obs.items()})[:, 0]
        return th.where(u < self.exploration_rate, random_a, greedy)

    def on_step(self, num_timesteps: int, total_timesteps: int | None) -> None:
        """SB3 DQN's ``_on_step`` (one env): target update every ``target_update_interval`` steps, exploration rate
        from the progress (kept as is outside ``learn``, where there is no run length)."""
        if num_timesteps % self.cfg.target_update_interval == 0:
            polyak([self.q_net], [self.q_net_target], self.tau)
        if total_timesteps:
            self.exploration_rate = self.cfg.exploration_rate(1.0 - num_timesteps / total_timesteps)

    # ----- one gradient step -----------------------------------------------------------------------------------
    def update(self, batch: Batch, generators: list[th.Generator] | None = None, gradient_step: int = 0
               ) -> dict[str, th.Tensor]:
        """One gradient step for every member on its slice of ``batch``; returns per-member losses (S,)."""
        cfg, obs, next_obs = self.cfg, batch.observations, batch.next_observations
        S, B, d = obs["desired_goal"].shape
        actions = batch.actions.long()
        self.n_updates += 1
        extra = th.zeros(S, device=cfg.device)
        with self.autocast():
            if not self.use_grad:  # SB3's DQN expressions
                with th.no_grad():
                    next_q = self.q_net_target(features(next_obs)).float()
                    value, _ = hard_and_soft_values(next_q.reshape(S * B, -1), None)
                    target = batch.rewards + (1 - batch.dones) * self.gamma * value.reshape(S, B, 1)
                q = th.gather(self.q_net(features(obs)).float(), dim=2, index=actions)
            else:
                def next_value(x: th.Tensor) -> tuple[th.Tensor, th.Tensor]:  # x (S * B, d): member x batch rows
                    next_q = self.q_net_target(features(next_obs, x.reshape(S, B, d))).float()
                    return hard_and_soft_values(next_q.reshape(S * B, -1), cfg.softmax_tau)

                rows = (S * B, 1)
                target, grad_target = gg.target_and_goal_gradient(
                    next_value, next_obs["desired_goal"].reshape(S * B, d), batch.rewards.reshape(rows),
                    batch.dones.reshape(rows), self.gamma.expand(S, B, 1).reshape(rows))
                target, grad_target = target.reshape(S, B, 1), grad_target.reshape(S, B, d)
                # d/dg Q_a written out (the agents' relu_mlp_forward / relu_mlp_vjp with the one-hot action as the
                # output weights): a first-order graph instead of autograd's double backward, same values
                layers = self.q_net.layers()
                out, relu_masks = gg.relu_mlp_forward(layers, features(obs))
                q = th.gather(out.float(), dim=2, index=actions)
                one_hot = F.one_hot(actions[..., 0], cfg.n_actions).to(out.dtype)  # (S, B, A)
                grad_q = gg.relu_mlp_vjp(layers, relu_masks, one_hot)[..., goal_columns(d)]
                mask = gg.sparse_mask(batch.rewards, cfg.c_low)  # (S, B)
                extra = gg.reengage_penalty(grad_q.float(), grad_target, mask, None, cfg.goal_reduction, batch_dims=2)
            huber = th.func.vmap(F.smooth_l1_loss)(q, target.detach())  # SB3's loss per member
            loss = huber + self.alpha.reshape(-1) * extra
            grads = th.autograd.grad(loss.sum(), self.opt.params)
        self.opt.step(member_grad_norm_clip(list(grads), cfg.max_grad_norm))
        return {"loss": huber.detach(), "reengage_loss": extra.detach()}
