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
  the actor reads the critic's embedding without gradient; the target actor the target critic's.

The training loop is :class:`rlcert.fleet.trainer.Fleet`'s (SB3's off-policy schedule, Gaussian action noise in the
scaled action space, uniform warm-up) with a plain replay (no HER for goal sets, as the agents) and SB3's action
unscaling to the env's Box (DriveSeek: radians).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch as th
from torch.func import functional_call
from torch.nn import functional as F

from rlcert.agents import goal_gradient as gg
from rlcert.agents.deepsets import GoalSetEncoder
from rlcert.agents.multi_reengage import reward_gate_gradient
from rlcert.envs import item_rewards
from rlcert.envs.torch_vector import TorchGoalSetEnv
from rlcert.fleet.adam import StackedAdam
from rlcert.fleet.config import Schedule
from rlcert.fleet.replay import Batch, EpisodeReplay
from rlcert.fleet.stacked import StackedMLP, linears_of, load_linear_stack, store_linear_stack
from rlcert.fleet.trainer import Fleet

Obs = dict[str, th.Tensor]


@dataclass
class GoalSetSettings:
    """Shape-defining settings shared by all members, and per-member settings (lists of length S)."""

    obs_dim: int
    n_max: int
    action_dim: int
    embed_dim: int = 20
    encoder_arch: list[int] = field(default_factory=lambda: [400, 400])
    head_arch: list[int] = field(default_factory=lambda: [400])
    pooling: str = "n_max"
    n_critics: int = 1
    policy_delay: int = 1
    goal_reduction: str = "mean"
    through_target_actor: bool = True
    learning_rate: list[float] = field(default_factory=lambda: [1e-3])
    alpha: list[float] = field(default_factory=lambda: [0.0])
    gamma: list[float] = field(default_factory=lambda: [0.99])
    tau: list[float] = field(default_factory=lambda: [0.005])
    target_policy_noise: list[float] = field(default_factory=lambda: [0.0])
    target_noise_clip: list[float] = field(default_factory=lambda: [0.0])

    def __post_init__(self) -> None:
        if self.goal_reduction not in gg.REDUCTIONS:
            raise ValueError(f"goal_reduction must be one of {gg.REDUCTIONS}, got {self.goal_reduction!r}")
        if self.pooling not in ("n_max", "sum"):
            raise ValueError(f"pooling must be 'n_max' or 'sum', got {self.pooling!r}")
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


def goal_set_obs(obs: Obs, n_max: int) -> Obs:
    """The observation dict with ``desired_goal`` as (..., n_max, 3) (the replay and evaluation flatten it)."""
    dg = obs["desired_goal"]
    return {**obs, "desired_goal": dg.reshape(*dg.shape[:-1], n_max, 3) if dg.shape[-1] != 3 else dg}


def gate_penalty(grad_q: th.Tensor, grad_target: th.Tensor, reduction: str) -> th.Tensor:
    """The agents' :func:`~rlcert.agents.goal_gradient.reengage_penalty` per member: (S, B, n) -> (S,)."""
    fn = functools.partial(gg.reengage_penalty, mask=None, goal_weight=None, reduction=reduction)
    return th.func.vmap(fn)(grad_q, grad_target)


class FleetMultiReenGAGE:
    """Stacked DeepSets actor and critics (shared goal-set encoder owned by the critic) and their targets."""

    def __init__(self, settings: GoalSetSettings, generators: list[th.Generator] | None = None) -> None:
        self.cfg = s = settings
        S, C, E = s.n_members, s.n_critics, s.embed_dim
        self.template = GoalSetEncoder(s.obs_dim, E, s.encoder_arch, divisor=s.n_max if s.pooling == "n_max" else 1.0)
        enc_in = self.template.net[0].in_features

        def nets() -> tuple[StackedMLP, StackedMLP, StackedMLP]:
            return (StackedMLP(S, enc_in, s.encoder_arch, E),
                    StackedMLP(S * C, s.obs_dim + E + s.action_dim, s.head_arch, 1),
                    StackedMLP(S, s.obs_dim + E, s.head_arch, s.action_dim, squash=True))

        self.encoder, self.critic, self.actor = nets()
        if generators is not None:  # the agents' order: encoder, critic heads, then the actor
            for k, g in enumerate(generators):
                self.encoder.init_member(k, g)
                for j in range(C):
                    self.critic.init_member(k * C + j, g)
                self.actor.init_member(k, g)
        self.encoder_target, self.critic_target, self.actor_target = nets()
        self.tau = th.tensor(s.tau, dtype=th.float32)
        self.sync_targets()
        lr = th.tensor(s.learning_rate, dtype=th.float64)
        self.encoder_opt = StackedAdam(list(self.encoder.parameters()), lr)
        self.critic_opt = StackedAdam(list(self.critic.parameters()), lr.repeat_interleave(C))
        self.actor_opt = StackedAdam(list(self.actor.parameters()), lr)
        self.alpha, self.gamma = _col(s.alpha), _col(s.gamma)
        self.noise_sigma, self.noise_clip = _col(s.target_policy_noise), _col(s.target_noise_clip)
        self.n_updates = 0

    def pairs(self) -> list[tuple[StackedMLP, StackedMLP, th.Tensor]]:
        """(online, target, tau per stacked row) for the polyak updates (critic = encoder + heads, actor)."""
        C = self.cfg.n_critics
        return [(self.encoder, self.encoder_target, self.tau), (self.critic, self.critic_target,
                                                                 self.tau.repeat_interleave(C)),
                (self.actor, self.actor_target, self.tau)]

    def sync_targets(self) -> None:
        for net, tgt, _ in self.pairs():
            tgt.load_state_dict(net.state_dict())

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
            out.append(functional_call(self.template, params, (member_obs, gates[k])))
        return th.stack(out)

    def heads(self, net: StackedMLP, obs: Obs, z: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Q (S, C, B, 1) of every critic head on (s, z, a)."""
        S, C = self.cfg.n_members, self.cfg.n_critics
        x = th.cat([obs["observation"], z, actions], dim=-1)  # (S, B, f)
        x = x.unsqueeze(1).expand(S, C, *x.shape[1:]).reshape(S * C, *x.shape[1:])
        return net(x).reshape(S, C, -1, 1)

    def pi(self, net: StackedMLP, obs: Obs, z: th.Tensor) -> th.Tensor:
        return net(th.cat([obs["observation"], z], dim=-1))

    def act(self, obs: Obs) -> th.Tensor:
        """Deterministic actions (S, B, a) in [-1, 1] (SB3's scaled action space) for observations of (S, B, ...)."""
        obs = goal_set_obs(obs, self.cfg.n_max)
        with th.no_grad():
            return self.pi(self.actor, obs, self.embed(self.encoder, obs))

    def target_policy_noise(self, actions: th.Tensor, generators: list[th.Generator] | None) -> th.Tensor | None:
        """TD3 target smoothing noise (S, B, a), clipped; None when every member's clip is 0 (DDPG)."""
        if float(self.noise_clip.abs().max()) == 0.0:
            return None
        if generators is None:
            raise ValueError("TD3 target noise needs the members' generators")
        z = th.stack([th.randn(actions.shape[1:], generator=g) for g in generators])
        return th.maximum(th.minimum(z * self.noise_sigma, self.noise_clip), -self.noise_clip)

    # ----- one gradient step -----------------------------------------------------------------------------------
    def update(self, batch: Batch, generators: list[th.Generator] | None = None,
               target_noise: th.Tensor | None = None) -> dict[str, th.Tensor]:
        """One gradient step for every member on its slice of ``batch``; returns per-member losses (S,)."""
        cfg, C = self.cfg, self.cfg.n_critics
        obs, next_obs = goal_set_obs(batch.observations, cfg.n_max), goal_set_obs(batch.next_observations, cfg.n_max)
        S, B, n, _ = obs["desired_goal"].shape
        self.n_updates += 1
        noise = self.target_policy_noise(batch.actions, generators) if target_noise is None else target_noise

        def next_value(x: th.Tensor | None) -> th.Tensor:  # x (S * B, n): gates of the member x batch rows
            z = self.embed(self.encoder_target, next_obs, None if x is None else x.reshape(S, B, n))
            partial = x is not None and not cfg.through_target_actor
            a = self.pi(self.actor_target, next_obs, z.detach() if partial else z)
            a = (a if noise is None else a + noise).clamp(-1, 1)
            return self.heads(self.critic_target, next_obs, z, a).min(dim=1).values.reshape(S * B, 1)

        extra = th.zeros(S)
        if not bool((self.alpha > 0).any()):  # SB3's TD3 expressions
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
            items = item_rewards(next_obs["achieved_goal"], next_obs["desired_goal"])  # (S, B, n)
            grad_target = grad_target.reshape(S, B, n) + reward_gate_gradient(items, next_obs["desired_goal"][..., 0])
            x = gg.make_goal_leaf(obs["desired_goal"][..., 0])
            q = self.heads(self.critic, obs, self.embed(self.encoder, obs, x), batch.actions)
            grads = gg.critic_goal_gradient([q[:, j] for j in range(C)], x)
            extra = sum(gate_penalty(g, grad_target, cfg.goal_reduction) for g in grads)
        td = sum(th.func.vmap(F.mse_loss)(q[:, j], target.detach()) for j in range(C))
        loss = td + self.alpha.reshape(-1) * extra
        enc_params, head_params = list(self.encoder.parameters()), list(self.critic.parameters())
        g = th.autograd.grad(loss.sum(), enc_params + head_params)
        self.encoder_opt.step(list(g[: len(enc_params)]))
        self.critic_opt.step(list(g[len(enc_params):]))
        out = {"critic_loss": td.detach(), "gate_gradient_loss": extra.detach()}

        if self.n_updates % cfg.policy_delay == 0:
            with th.no_grad():
                z = self.embed(self.encoder, obs)  # the critic's encoder gets no actor-loss gradient
            q1 = self.heads(self.critic, obs, z, self.pi(self.actor, obs, z))[:, 0]
            actor_loss = -q1.mean(dim=(1, 2))
            actor_params = list(self.actor.parameters())
            self.actor_opt.step(list(th.autograd.grad(actor_loss.sum(), actor_params)))
            self.polyak()
            out["actor_loss"] = actor_loss.detach()
        return out

    @th.no_grad()
    def polyak(self) -> None:
        """target <- (1 - tau_k) target + tau_k online, member by member."""
        for net, tgt, tau in self.pairs():
            for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                t = tau.reshape(-1, *([1] * (p.dim() - 1)))
                tp.mul_(1 - t).add_(p * t)

    def state_dict(self) -> dict:
        nets = ("encoder", "critic", "actor", "encoder_target", "critic_target", "actor_target")
        return {**{name: getattr(self, name).state_dict() for name in nets},
                **{f"{name}_opt": getattr(self, f"{name}_opt").state_dict() for name in ("encoder", "critic", "actor")},
                "n_updates": self.n_updates}

    def load_state_dict(self, state: dict) -> None:
        for name in ("encoder", "critic", "actor", "encoder_target", "critic_target", "actor_target"):
            getattr(self, name).load_state_dict(state[name])
        for name in ("encoder", "critic", "actor"):
            getattr(self, f"{name}_opt").load_state_dict(state[f"{name}_opt"])
        self.n_updates = int(state["n_updates"])


def member_modules(fleet: FleetMultiReenGAGE, k: int, model) -> list[tuple[StackedMLP, int, list]]:
    """(stacked net, row, the agent's nn.Linear layers) pairs of member k and a DeepSets agent (shared encoder)."""
    C, policy = fleet.cfg.n_critics, model.policy
    if len(policy.critic.q_networks) != C or not policy.share_encoder:
        raise ValueError(f"the agent must have {C} critics and a shared encoder")
    pairs = [(fleet.encoder, k, linears_of(policy.critic.encoder)),
             (fleet.encoder_target, k, linears_of(policy.critic_target.encoder)),
             (fleet.actor, k, linears_of(policy.actor.mu)), (fleet.actor_target, k, linears_of(policy.actor_target.mu))]
    for j in range(C):
        pairs += [(fleet.critic, k * C + j, linears_of(policy.critic.q_networks[j])),
                  (fleet.critic_target, k * C + j, linears_of(policy.critic_target.q_networks[j]))]
    return pairs


def load_member(fleet: FleetMultiReenGAGE, k: int, model) -> None:
    """Member k := the agent's encoder, actor, critics and their targets (parameters only)."""
    for net, idx, lins in member_modules(fleet, k, model):
        load_linear_stack(net, idx, lins)


def store_member(fleet: FleetMultiReenGAGE, k: int, model) -> None:
    """The agent's encoder, actor, critics and targets := member k's."""
    for net, idx, lins in member_modules(fleet, k, model):
        store_linear_stack(net, idx, lins)


class GoalSetReplay(EpisodeReplay):
    """Plain uniform replay (no HER) of goal-set episodes: the (n_max, 3) goal set is stored flat, per episode."""

    def __init__(self, n_members: int, capacity_steps: int, episode_length: int, obs_dim: int, n_max: int,
                 action_dim: int) -> None:
        super().__init__(n_members, capacity_steps, episode_length, obs_dim, 2, action_dim, her=False)
        self.n_max = int(n_max)
        self.goal = th.zeros(self.S, self.E, 3 * self.n_max)

    def start_episode(self, obs: Obs) -> None:
        super().start_episode({**obs, "desired_goal": obs["desired_goal"].reshape(self.S, -1)})


def scaled_action_env(env_cls: type[TorchGoalSetEnv]) -> type[TorchGoalSetEnv]:
    """``env_cls`` taking actions in SB3's scaled space [-1, 1]: SB3's ``unscale_action`` to the env's Box
    (low + 0.5 (a + 1) (high - low), float32), then the env's own step."""

    class Scaled(env_cls):  # type: ignore[valid-type, misc]
        def step(self, action: th.Tensor):
            low, high = self.action_low, self.action_high
            return super().step(low + (0.5 * (action.to(th.float32) + 1.0) * (high - low)))

    Scaled.__name__ = Scaled.__qualname__ = f"Scaled{env_cls.__name__}"
    return Scaled


class GoalSetFleet(Fleet):
    """S independent Multi-ReenGAGE DDPG/TD3 learners on copies of a torch goal-set env (DriveSeek, NoisySeek).
    The loop, exploration, evaluation and checkpoints are :class:`rlcert.fleet.trainer.Fleet`'s."""

    def __init__(self, settings: GoalSetSettings, schedule: Schedule, seeds: list[int], env_cls: type,
                 env_kwargs: dict | None = None, action_noise: list[float] | None = None) -> None:
        if len(seeds) != settings.n_members:
            raise ValueError(f"need one seed per member ({settings.n_members}), got {len(seeds)}")
        if schedule.her:
            raise ValueError("goal-set envs have no HER (the goal set cannot be relabelled); use a plain buffer")
        self.seeds, self.schedule, self.env_kwargs = [int(s) for s in seeds], schedule, dict(env_kwargs or {})
        self.generators = [th.Generator().manual_seed(s) for s in self.seeds]
        self.eval_generators = [th.Generator().manual_seed(10_000 + s) for s in self.seeds]
        self.agent = FleetMultiReenGAGE(settings, self.generators)
        self.env_cls = scaled_action_env(env_cls)
        self.env = self.env_cls(self.generators, **self.env_kwargs)
        self.noise = th.tensor(action_noise or [0.0] * len(seeds), dtype=th.float32).reshape(-1, 1)
        self.replay = GoalSetReplay(len(seeds), schedule.buffer_size, self.env.max_steps, self.env.obs_dim,
                                    self.env.n_max, self.env.action_dim)
        self.num_timesteps = 0
        self.trained_through = 0
        self.obs: Obs | None = None
