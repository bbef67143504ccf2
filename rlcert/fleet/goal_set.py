"""Multi-ReenGAGE DDPG / TD3 (DeepSets, goal sets) for S independent members: torch DriveSeek and NoisySeek.

One :meth:`FleetMultiReenGAGE.update` is, for every member k, the update of
``rlcert.agents.multi_reengage.MultiReenGAGEDDPG`` / ``MultiReenGAGETD3`` (``TD3FamilyLoop.train`` with the
``GateInput`` hook; stock DDPG / TD3 with the same DeepSets networks at alpha = 0), with the agents' own code:

* the goal-set encoder is the agents' :class:`rlcert.agents.deepsets.GoalSetEncoder` itself, run with member k's
  parameters (``torch.func.functional_call``): z = sum_i b_i^2 Enc(s, g_i) / n_max over the real goals only
  (padding skipped exactly), one member after another (the encoder's rows differ per member; the loop makes each
  member's arithmetic independent of the fleet);
* the heads (critic Q(s, a, z), actor tanh(pi(s, z))) are stacked MLPs (one batched matmul per layer);
* target and its total gate derivative: :func:`rlcert.agents.goal_gradient.target_and_goal_gradient` on the
  member x batch rows; reward gradient :func:`rlcert.agents.multi_reengage.reward_gate_gradient` of the item
  rewards :func:`rlcert.envs.item_rewards` (the env rule, on tensors); d/db Q_j:
  :func:`~rlcert.agents.goal_gradient.critic_goal_gradient` per critic; penalty
  :func:`~rlcert.agents.goal_gradient.reengage_penalty` (mean over the batch and all n_max gates) and ``F.mse_loss``,
  vmapped over the member axis;
* shared encoder (``share_encoder=True``, the thesis' default): a critic parameter, trained by the critic loss only;
  the actor reads the critic's embedding without gradient; the target actor the target critic's. Unshared (the
  ablation of Fig. G.10): the actor has its own encoder, trained by the actor loss (and its own target).

The training loop is :class:`rlcert.fleet.trainer.Fleet`'s (SB3's off-policy schedule; exploration is
:meth:`rlcert.fleet.td3.FleetTD3.explore`: uniform warm-up, the actor plus Gaussian action noise in the scaled action
space) with a plain replay (no HER for goal sets, as the agents; the goal set stored flat; one difference from SB3's
``DictReplayBuffer``: transitions of the episode still running are not sampled, as in SB3's HER buffer); the envs are
the torch twins with SB3's action unscaling to the env's Box (:func:`scaled_action_env`; DriveSeek: radians).
Settings are read from a probe of the config's agent (``DeepSetsTD3Policy``). Not supported: the DriveSeek CNN
variant (:meth:`FleetMultiReenGAGE.config_reason`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch as th
from torch.func import functional_call

from rlcert.agents import goal_gradient as gg
from rlcert.agents.deepsets import GoalSetEncoder
from rlcert.agents.multi_reengage import reward_gate_gradient
from rlcert.envs import item_rewards
from rlcert.envs.torch_vector import TorchDriveSeek, TorchGoalSetEnv, TorchNoisySeek
from rlcert.fleet.adam import StackedAdam
from rlcert.fleet.family import FleetAlgorithm, MemberSettings, clone_net, col, polyak
from rlcert.fleet.replay import Batch
from rlcert.fleet.stacked import StackedMLP, linears_of
from rlcert.fleet.td3 import FleetTD3, action_noise_sigma

Obs = dict[str, th.Tensor]


@dataclass
class GoalSetSettings(MemberSettings):
    """Multi-ReenGAGE settings: shared shapes and options, per-member lists of length S (``net_arch``: the heads)."""

    n_max: int = 200
    embed_dim: int = 20
    encoder_arch: list[int] = field(default_factory=lambda: [400, 400])
    pooling: str = "n_max"
    n_critics: int = 1
    policy_delay: int = 1
    goal_reduction: str = "mean"
    through_target_actor: bool = True
    share_encoder: bool = True
    alpha: list[float] = field(default_factory=lambda: [0.0])
    target_policy_noise: list[float] = field(default_factory=lambda: [0.0])
    target_noise_clip: list[float] = field(default_factory=lambda: [0.0])
    action_noise_sigma: list[float] | None = None

    PER_MEMBER = ("gamma", "tau", "alpha", "target_policy_noise", "target_noise_clip")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.goal_reduction not in gg.REDUCTIONS:
            raise ValueError(f"goal_reduction must be one of {gg.REDUCTIONS}, got {self.goal_reduction!r}")
        if self.pooling not in ("n_max", "sum"):
            raise ValueError(f"pooling must be 'n_max' or 'sum', got {self.pooling!r}")
        if self.n_critics < 1 or self.policy_delay < 1:
            raise ValueError(f"n_critics and policy_delay must be >= 1, got {self.n_critics}, {self.policy_delay}")
        if any(a < 0 for a in self.alpha):
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.action_noise_sigma is None:
            self.action_noise_sigma = [0.0] * self.n_members


def goal_set_obs(obs: Obs, n_max: int) -> Obs:
    """The observation dict with ``desired_goal`` as (..., n_max, 3) (the replay and evaluation flatten it)."""
    dg = obs["desired_goal"]
    return {**obs, "desired_goal": dg.reshape(*dg.shape[:-1], n_max, 3) if dg.shape[-1] != 3 else dg}


def gate_penalty(grad_q: th.Tensor, grad_target: th.Tensor, reduction: str) -> th.Tensor:
    """The agents' :func:`~rlcert.agents.goal_gradient.reengage_penalty` per member: (S, B, n) -> (S,)."""
    return gg.reengage_penalty(grad_q, grad_target, None, None, reduction, batch_dims=2)


class FleetMultiReenGAGE(FleetAlgorithm):
    """Stacked DeepSets actor and critics (shared goal-set encoder owned by the critic) and their targets."""

    env_ids = ("rlcert/DriveSeek-v0", "rlcert/NoisySeek-v0")
    standard_config = False
    POLICY_KWARGS = {"embed_dim", "encoder_arch", "head_arch", "share_encoder", "n_critics", "pooling"}
    ALGO_KWARGS = {"learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
                   "gradient_steps", "replay_buffer_class", "replay_buffer_kwargs", "action_noise", "policy_kwargs",
                   "policy_delay", "target_policy_noise", "target_noise_clip", "alpha", "goal_reduction",
                   "through_target_actor", "verbose"}

    def __init__(self, settings: GoalSetSettings, generators: list[th.Generator] | None = None) -> None:
        self.cfg = s = settings
        S, C, E, dev = s.n_members, s.n_critics, s.embed_dim, s.device
        self.template = GoalSetEncoder(s.obs_dim, E, s.encoder_arch, divisor=s.n_max if s.pooling == "n_max" else 1.0)
        self.template.to(dev)  # (its own parameters are never used: each call gets a member's)
        self.encoder = StackedMLP(S, self.template.net[0].in_features, s.encoder_arch, E, device=dev)
        self.critic = StackedMLP(S * C, s.obs_dim + E + s.action_dim, s.net_arch, 1, device=dev)  # row k*C+j: Q_j of k
        self.actor = StackedMLP(S, s.obs_dim + E, s.net_arch, s.action_dim, squash=True, device=dev)
        # the actor's own encoder (unshared ablation), else the critic's
        self.actor_encoder = (self.encoder if s.share_encoder
                              else StackedMLP(S, self.template.net[0].in_features, s.encoder_arch, E, device=dev))
        if generators is not None:  # the agents' order: encoder, critic heads, then the actor (its encoder first)
            for k, g in enumerate(generators):
                self.encoder.init_member(k, g)
                for j in range(C):
                    self.critic.init_member(k * C + j, g)
                if not s.share_encoder:
                    self.actor_encoder.init_member(k, g)
                self.actor.init_member(k, g)
        self.encoder_target, self.critic_target = clone_net(self.encoder), clone_net(self.critic)
        self.actor_target = clone_net(self.actor)
        self.actor_encoder_target = self.encoder_target if s.share_encoder else clone_net(self.actor_encoder)
        lr = th.tensor(s.learning_rate, dtype=th.float64)
        self.encoder_opt = StackedAdam(list(self.encoder.parameters()), lr)
        self.critic_opt = StackedAdam(list(self.critic.parameters()), lr.repeat_interleave(C))
        own = [] if s.share_encoder else list(self.actor_encoder.parameters())
        self.actor_opt = StackedAdam(own + list(self.actor.parameters()), lr)
        self.alpha, self.gamma = col(s.alpha, dev), col(s.gamma, dev)
        self.tau = th.tensor(s.tau, dtype=th.float32, device=dev)
        self.noise_sigma, self.noise_clip = col(s.target_policy_noise, dev), col(s.target_noise_clip, dev)
        self.action_sigma = th.tensor(s.action_noise_sigma, dtype=th.float32, device=dev).reshape(-1, 1)
        self.use_grad, self.smoothing = any(a > 0 for a in s.alpha), any(c != 0 for c in s.target_noise_clip)
        self.n_updates = 0

    # ----- plugging in -----------------------------------------------------------------------------------------
    @classmethod
    def config_reason(cls, config: dict) -> str | None:
        kw = config.get("algo_kwargs") or {}
        policy = str(config.get("policy", ""))
        if policy.endswith("DriveSeekCnnTD3Policy"):
            return ("the DriveSeek CNN variant (its NatureCNN image encoder is not a stacked MLP, and a 168 x 168 "
                    "image per goal set would dominate the update: train it one seed at a time)")
        if not policy.endswith("DeepSetsTD3Policy"):
            return f"policy {policy!r} for goal sets (fleet: rlcert.agents.deepsets:DeepSetsTD3Policy)"
        extra = set(kw) - cls.ALGO_KWARGS
        if extra:
            return f"algo_kwargs {sorted(extra)}"
        pk = kw.get("policy_kwargs") or {}
        if set(pk) - cls.POLICY_KWARGS:
            return f"policy_kwargs {sorted(set(pk) - cls.POLICY_KWARGS)}"
        if kw.get("replay_buffer_class") not in (None, "DictReplayBuffer"):
            return f"replay_buffer_class {kw.get('replay_buffer_class')!r} (goal sets: a plain buffer)"
        noise = kw.get("action_noise")
        if noise is not None and (not isinstance(noise, dict) or noise.get("type", "normal") != "normal"):
            return "action noise other than normal"
        return None

    @classmethod
    def settings_from_agent(cls, agent: Any, env: Any, n_members: int, precision: str) -> GoalSetSettings:
        def member(value: float) -> list[float]:
            return [float(value)] * n_members

        pol = agent.policy
        return GoalSetSettings(
            obs_dim=env.obs_dim, goal_dim=env.goal_dim, action_dim=env.action_dim, net_arch=list(pol.head_arch),
            n_max=env.n_max, embed_dim=int(pol.embed_dim), encoder_arch=list(pol.encoder_arch), pooling=pol.pooling,
            n_critics=int(pol.n_critics), policy_delay=int(agent.policy_delay), goal_reduction=agent.goal_reduction,
            through_target_actor=bool(agent.through_target_actor), share_encoder=bool(pol.share_encoder),
            learning_rate=member(agent.learning_rate),
            alpha=member(agent.alpha), gamma=member(agent.gamma), tau=member(agent.tau),
            target_policy_noise=member(agent.target_policy_noise), target_noise_clip=member(agent.target_noise_clip),
            action_noise_sigma=member(action_noise_sigma(agent)), precision=precision)

    @classmethod
    def member_overridable(cls) -> tuple[str, ...]:
        return FleetTD3.member_overridable()

    def modules(self) -> dict[str, StackedMLP]:
        out = {"encoder": self.encoder, "critic": self.critic, "actor": self.actor,
               "encoder_target": self.encoder_target, "critic_target": self.critic_target,
               "actor_target": self.actor_target}
        if not self.cfg.share_encoder:
            out.update(actor_encoder=self.actor_encoder, actor_encoder_target=self.actor_encoder_target)
        return out

    def optimizers(self) -> dict[str, StackedAdam]:
        return {"encoder": self.encoder_opt, "critic": self.critic_opt, "actor": self.actor_opt}

    def member_pairs(self, k: int, model: Any) -> list[tuple[StackedMLP, int, list]]:
        """Member k <-> a DeepSets agent (encoders: the critic's, and the actor's own when unshared; and targets)."""
        C, pol = self.cfg.n_critics, model.policy
        if len(pol.critic.q_networks) != C or pol.share_encoder != self.cfg.share_encoder:
            raise ValueError(f"the agent must have {C} critics and share_encoder={self.cfg.share_encoder}")
        pairs = [(self.encoder, k, linears_of(pol.critic.encoder)),
                 (self.encoder_target, k, linears_of(pol.critic_target.encoder)),
                 (self.actor, k, linears_of(pol.actor.mu)), (self.actor_target, k, linears_of(pol.actor_target.mu))]
        if not self.cfg.share_encoder:
            pairs += [(self.actor_encoder, k, linears_of(pol.actor.features.goal_encoder)),
                      (self.actor_encoder_target, k, linears_of(pol.actor_target.features.goal_encoder))]
        for j in range(C):
            pairs += [(self.critic, k * C + j, linears_of(pol.critic.q_networks[j])),
                      (self.critic_target, k * C + j, linears_of(pol.critic_target.q_networks[j]))]
        return pairs

    def sync_targets(self) -> None:
        for name in ("encoder", "critic", "actor") + (() if self.cfg.share_encoder else ("actor_encoder",)):
            getattr(self, f"{name}_target").load_state_dict(getattr(self, name).state_dict())

    # ----- forward passes --------------------------------------------------------------------------------------
    def embed(self, encoder: StackedMLP, obs: Obs, gates: th.Tensor | None = None) -> th.Tensor:
        """z (S, B, E): the agents' GoalSetEncoder with member k's parameters, member by member. obs (S, B, ...)
        with desired_goal (S, B, n_max, 3); gates (S, B, n_max) (default: the observation's; may require grad)."""
        gates = obs["desired_goal"][..., 0] if gates is None else gates
        out = []
        for k in range(self.cfg.n_members):
            params = {}
            for i, (w, b) in enumerate(encoder.layers()):
                params[f"net.{2 * i}.weight"], params[f"net.{2 * i}.bias"] = w[k].T, b[k, 0]
            member_obs = {"observation": obs["observation"][k], "desired_goal": obs["desired_goal"][k]}
            out.append(functional_call(self.template, params, (member_obs, gates[k])).float())
        return th.stack(out)

    def heads(self, net: StackedMLP, obs: Obs, z: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Q (S, C, B, 1) of every critic head on (s, z, a)."""
        S, C = self.cfg.n_members, self.cfg.n_critics
        x = th.cat([obs["observation"], z, actions.to(z.dtype)], dim=-1)  # (S, B, f)
        x = x.unsqueeze(1).expand(S, C, *x.shape[1:]).reshape(S * C, *x.shape[1:])
        return net(x).float().reshape(S, C, -1, 1)

    def pi(self, net: StackedMLP, obs: Obs, z: th.Tensor) -> th.Tensor:
        return net(th.cat([obs["observation"], z], dim=-1)).float()

    def act(self, obs: Obs) -> th.Tensor:
        """Deterministic actions (S, B, a) in [-1, 1] (SB3's scaled action space) for observations of (S, B, ...)."""
        obs = goal_set_obs(obs, self.cfg.n_max)
        with th.no_grad():
            return self.pi(self.actor, obs, self.embed(self.actor_encoder, obs))

    explore = FleetTD3.explore  # SB3's _sample_action: uniform warm-up or the actor, plus Gaussian noise, clipped
    target_policy_noise = FleetTD3.target_policy_noise  # TD3's target smoothing noise (None for DDPG)

    # ----- one gradient step -----------------------------------------------------------------------------------
    def update(self, batch: Batch, generators: list[th.Generator] | None = None, gradient_step: int = 0,
               target_noise: th.Tensor | None = None) -> dict[str, th.Tensor]:
        """One gradient step for every member on its slice of ``batch``; returns per-member losses (S,)."""
        cfg, C = self.cfg, self.cfg.n_critics
        obs, next_obs = goal_set_obs(batch.observations, cfg.n_max), goal_set_obs(batch.next_observations, cfg.n_max)
        S, B, n, _ = obs["desired_goal"].shape
        self.n_updates += 1
        noise = self.target_policy_noise(batch.actions, generators) if target_noise is None else target_noise

        def next_value(x: th.Tensor | None) -> th.Tensor:  # x (S * B, n): gates of the member x batch rows
            gates = None if x is None else x.reshape(S, B, n)
            z = self.embed(self.encoder_target, next_obs, gates)
            partial = x is not None and not cfg.through_target_actor
            if cfg.share_encoder:  # the target actor reads the target critic's embedding
                z_actor = z.detach() if partial else z
            else:
                z_actor = self.embed(self.actor_encoder_target, next_obs, gates.detach() if partial else gates)
            a = self.pi(self.actor_target, next_obs, z_actor)
            a = (a if noise is None else a + noise).clamp(-1, 1)
            return self.heads(self.critic_target, next_obs, z, a).min(dim=1).values.reshape(S * B, 1)

        extra = th.zeros(S, device=cfg.device)
        with self.autocast():
            if not self.use_grad:  # SB3's TD3 expressions
                with th.no_grad():
                    value = next_value(None).reshape(S, B, 1)
                    target = batch.rewards + (1 - batch.dones) * self.gamma * value
                q = self.heads(self.critic, obs, self.embed(self.encoder, obs), batch.actions)
            else:
                rows = (S * B, 1)
                target, grad_target = gg.target_and_goal_gradient(
                    next_value, next_obs["desired_goal"][..., 0].reshape(S * B, n), batch.rewards.reshape(rows),
                    batch.dones.reshape(rows), self.gamma.expand(S, B, 1).reshape(rows))
                target = target.reshape(S, B, 1)
                items = item_rewards(next_obs["achieved_goal"], next_obs["desired_goal"])  # (S, B, n), the env rule
                gates_next = next_obs["desired_goal"][..., 0]
                grad_target = grad_target.reshape(S, B, n) + reward_gate_gradient(items, gates_next)
                x = gg.make_goal_leaf(obs["desired_goal"][..., 0])
                q = self.heads(self.critic, obs, self.embed(self.encoder, obs, x), batch.actions)
                grads = gg.critic_goal_gradient([q[:, j] for j in range(C)], x)
                extra = sum(gate_penalty(g.float(), grad_target, cfg.goal_reduction) for g in grads)
            td = sum(((q[:, j] - target.detach()) ** 2).mean(dim=(1, 2)) for j in range(C))  # (S,): F.mse_loss each
            loss = td + self.alpha.reshape(-1) * extra
            n_enc = len(self.encoder_opt.params)
            g = th.autograd.grad(loss.sum(), self.encoder_opt.params + self.critic_opt.params)
        self.encoder_opt.step(list(g[:n_enc]))
        self.critic_opt.step(list(g[n_enc:]))
        out = {"critic_loss": td.detach(), "gate_gradient_loss": extra.detach()}

        if self.n_updates % cfg.policy_delay == 0:
            with self.autocast():
                with th.no_grad():
                    z = self.embed(self.encoder, obs)  # the critic's encoder gets no actor-loss gradient
                z_actor = z if cfg.share_encoder else self.embed(self.actor_encoder, obs)  # unshared: trained here
                q1 = self.heads(self.critic, obs, z, self.pi(self.actor, obs, z_actor))[:, 0]
                actor_loss = -q1.mean(dim=(1, 2))
                grads = th.autograd.grad(actor_loss.sum(), self.actor_opt.params)
            self.actor_opt.step(list(grads))
            polyak([self.encoder], [self.encoder_target], self.tau)
            polyak([self.critic], [self.critic_target], self.tau.repeat_interleave(C))
            polyak([self.actor], [self.actor_target], self.tau)
            if not cfg.share_encoder:
                polyak([self.actor_encoder], [self.actor_encoder_target], self.tau)
            out["actor_loss"] = actor_loss.detach()
        return out


def scaled_action_env(env_cls: type[TorchGoalSetEnv]) -> type[TorchGoalSetEnv]:
    """``env_cls`` taking actions in SB3's scaled space [-1, 1]: SB3's ``unscale_action`` to the env's Box
    (low + 0.5 (a + 1) (high - low), float32), then the env's own step."""

    class Scaled(env_cls):  # type: ignore[valid-type, misc]
        def step(self, action: th.Tensor):
            low, high = self.action_low, self.action_high
            return super().step(low + (0.5 * (action.to(th.float32) + 1.0) * (high - low)))

    Scaled.__name__ = Scaled.__qualname__ = f"Scaled{env_cls.__name__}"
    Scaled.__module__ = __name__
    return Scaled


ScaledDriveSeek = scaled_action_env(TorchDriveSeek)
ScaledNoisySeek = scaled_action_env(TorchNoisySeek)
