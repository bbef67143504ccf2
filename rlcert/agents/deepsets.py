"""DeepSets actor and critic for goal-set observations (thesis §8.5, App. G.6.1).

Observations are gymnasium Dicts with ``observation`` (B, d) and ``desired_goal`` (B, n_max, 3) whose rows are
(b_i, x_i, y_i) with gate b_i = 1 for a real goal and 0 for padding. The goal set is pooled as

    z(s, b) = sum_i b_i^2 * Enc(s, g_i) / n_max       (B, embed_dim)    (pooling="n_max", default)
    z(s, b) = sum_i b_i^2 * Enc(s, g_i)               (pooling="sum", models saved before agents convention 2)
    Q(s, a, g) = Head_Q(s, a, z),   pi(s, g) = tanh(Head_pi(s, z))

with Enc a 2 x 400 ReLU MLP on (s, x_i, y_i) and heads 1 x 400 ReLU (Table G.4). n_max is the observation space's
(a constant of the network, so extra padding at run time changes nothing); dividing by it, as the authors do, keeps
the head's input and dQ/db O(1) at initialisation (spec §3 "Pooling scale"). Because of the square, a padding
goal (b_i = 0) contributes exactly nothing to z and dz/db_i = 2 b_i Enc = 0: padding has no influence on Q, pi or
the gate gradients. Rows with b_i = 0 are therefore skipped entirely (exact, and about 2x cheaper on average).

The encoder belongs to the critic (its optimiser, its polyak target) and, with ``share_encoder=True`` (thesis
default), the actor *uses* it without owning it: the actor evaluates it with detached parameters, so the encoder
is trained only by the critic loss. ``share_encoder=False`` gives the actor its own encoder (ablation Fig. G.10).
Gradients with respect to the gates always flow (they are needed for the target of the gate-gradient loss).
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import nn
from torch.func import functional_call

Obs = dict[str, torch.Tensor]


def mlp(sizes: list[int], out_activation: nn.Module | None = None) -> nn.Sequential:
    """ReLU MLP with layer sizes [in, h1, ..., out]."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if out_activation is not None:
        layers.append(out_activation)
    return nn.Sequential(*layers)


def gates_of(obs: Obs) -> torch.Tensor:
    """The gates b (B, n_max) stored in column 0 of ``desired_goal``."""
    return obs["desired_goal"][..., 0]


POOLINGS = ("n_max", "sum")


class GoalSetEncoder(nn.Module):
    """DeepSets pooling z = sum_i b_i^2 Enc(s, g_i) / divisor: observation (B, d), goals (B, n, 2), gates (B, n)
    -> (B, E). ``divisor`` is n_max for the default pooling, 1 for the plain sum."""

    def __init__(self, obs_dim: int, embed_dim: int = 20, arch: tuple[int, ...] | list[int] = (400, 400),
                 goal_dim: int = 2, divisor: float = 1.0) -> None:
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
        if not divisor > 0:
            raise ValueError(f"divisor must be > 0, got {divisor}")
        self.obs_dim, self.goal_dim, self.features_dim, self.divisor = obs_dim, goal_dim, embed_dim, float(divisor)
        self.net = mlp([obs_dim + goal_dim, *arch, embed_dim])

    def forward(self, obs: Obs, gates: torch.Tensor) -> torch.Tensor:
        s = obs["observation"]
        goals = obs["desired_goal"][..., 1:]
        real = gates != 0  # padding rows contribute b^2 Enc = 0 and gradient 2 b Enc = 0: skip them exactly
        batch_idx, goal_idx = real.nonzero(as_tuple=True)
        rows = torch.cat([s[batch_idx], goals[batch_idx, goal_idx]], dim=-1)
        emb = self.net(rows)  # (M, E)
        weighted = gates[batch_idx, goal_idx].pow(2).unsqueeze(-1) * emb  # (a bf16 emb under autocast: float32)
        z = torch.zeros(s.shape[0], self.features_dim, dtype=weighted.dtype, device=emb.device)
        z = z.index_add(0, batch_idx, weighted)
        return z if self.divisor == 1.0 else z / self.divisor


def call_detached(module: nn.Module, *args: Any) -> torch.Tensor:
    """Run ``module`` with its parameters detached: no gradient reaches them, inputs stay differentiable."""
    state = {k: v.detach() for k, v in [*module.named_parameters(), *module.named_buffers()]}
    return functional_call(module, state, args)


class GoalSetFeatures(nn.Module):
    """Holds a goal-set encoder, owned (registered) or borrowed from the critic (shared, not registered)."""

    def __init__(self, encoder: nn.Module, owned: bool) -> None:
        super().__init__()
        self.owned = owned
        if owned:
            self.encoder = encoder
        else:
            self._borrowed = (encoder,)  # a tuple is not registered: not in parameters(), state_dict or optimiser

    @property
    def goal_encoder(self) -> nn.Module:
        return self.encoder if self.owned else self._borrowed[0]

    def embed(self, obs: Obs, gates: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled goal-set features (B, E); gates default to the observation's and may require grad."""
        gates = gates_of(obs) if gates is None else gates
        if self.owned:
            return self.goal_encoder(obs, gates)
        return call_detached(self.goal_encoder, obs, gates)


class DeepSetsCritic(nn.Module):
    """n_critics Q heads on (s, a, z) sharing one goal-set encoder (the critic owns it)."""

    def __init__(self, encoder: nn.Module, obs_dim: int, action_dim: int, head_arch: list[int],
                 n_critics: int = 1) -> None:
        super().__init__()
        self.encoder = encoder
        self.q_networks = nn.ModuleList(
            mlp([obs_dim + encoder.features_dim + action_dim, *head_arch, 1]) for _ in range(n_critics))

    def embed(self, obs: Obs, gates: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(obs, gates_of(obs) if gates is None else gates)

    def heads(self, obs: Obs, z: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = torch.cat([obs["observation"], z, actions], dim=-1)
        return tuple(q(x) for q in self.q_networks)

    def forward(self, obs: Obs, actions: torch.Tensor, gates: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        return self.heads(obs, self.embed(obs, gates), actions)

    def q1_forward(self, obs: Obs, actions: torch.Tensor) -> torch.Tensor:
        return self.heads(obs, self.embed(obs), actions)[0]

    def set_training_mode(self, mode: bool) -> None:
        self.train(mode)


class DeepSetsActor(nn.Module):
    """Deterministic actor pi(s, g) = tanh(Head(s, z)) in [-1, 1]^A (SB3's scaled action space)."""

    def __init__(self, features: GoalSetFeatures, obs_dim: int, action_dim: int, head_arch: list[int]) -> None:
        super().__init__()
        self.features = features
        self.mu = mlp([obs_dim + features.goal_encoder.features_dim, *head_arch, action_dim], nn.Tanh())

    def embed(self, obs: Obs, gates: torch.Tensor | None = None) -> torch.Tensor:
        return self.features.embed(obs, gates)

    def head(self, obs: Obs, z: torch.Tensor) -> torch.Tensor:
        return self.mu(torch.cat([obs["observation"], z], dim=-1))

    def forward(self, obs: Obs, gates: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(obs, self.embed(obs, gates))

    def set_training_mode(self, mode: bool) -> None:
        self.train(mode)


class DeepSetsGaussianActor(nn.Module):
    """SAC actor: squashed diagonal Gaussian with mean and log-std heads on (s, z)."""

    def __init__(self, features: GoalSetFeatures, obs_dim: int, action_dim: int, head_arch: list[int]) -> None:
        super().__init__()
        self.features = features
        in_dim = obs_dim + features.goal_encoder.features_dim
        self.latent = mlp([in_dim, *head_arch]) if head_arch else nn.Identity()
        last = head_arch[-1] if head_arch else in_dim
        if head_arch:
            self.latent.append(nn.ReLU())
        self.mu = nn.Linear(last, action_dim)
        self.log_std = nn.Linear(last, action_dim)
        self.action_dist = SquashedDiagGaussianDistribution(action_dim)

    def embed(self, obs: Obs, gates: torch.Tensor | None = None) -> torch.Tensor:
        return self.features.embed(obs, gates)

    def params(self, obs: Obs, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.latent(torch.cat([obs["observation"], z], dim=-1))
        return self.mu(h), torch.clamp(self.log_std(h), LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: Obs, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised action and its log-probability (B,), both differentiable in z (hence in the gates)."""
        mean, log_std = self.params(obs, z)
        return self.action_dist.log_prob_from_params(mean, log_std)

    def action_log_prob(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sample(obs, self.embed(obs))

    def forward(self, obs: Obs, deterministic: bool = False) -> torch.Tensor:
        mean, log_std = self.params(obs, self.embed(obs))
        return self.action_dist.actions_from_params(mean, log_std, deterministic=deterministic)

    def reset_noise(self, batch_size: int = 1) -> None:  # SB3 calls this only with gSDE, which is not supported
        pass

    def set_training_mode(self, mode: bool) -> None:
        self.train(mode)


class _GoalSetPolicyMixin:
    """Shared construction of the SB3 policies below."""

    def _init_goal_set(self, observation_space: spaces.Dict, action_space: spaces.Box, embed_dim: int,
                       encoder_arch: list[int], head_arch: list[int], share_encoder: bool, n_critics: int,
                       pooling: str) -> None:
        if not isinstance(observation_space, spaces.Dict) or "desired_goal" not in observation_space.spaces:
            raise ValueError("observation_space must be a Dict with 'observation' and 'desired_goal' (n_max, 3)")
        dg = observation_space["desired_goal"].shape
        if len(dg) != 2 or dg[1] != 3:
            raise ValueError(f"desired_goal must have shape (n_max, 3), got {dg}")
        if n_critics < 1:
            raise ValueError(f"n_critics must be >= 1, got {n_critics}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling, self.n_max = pooling, int(dg[0])
        self.embed_dim, self.encoder_arch, self.head_arch = int(embed_dim), list(encoder_arch), list(head_arch)
        self.share_encoder, self.n_critics = bool(share_encoder), int(n_critics)
        self.obs_dim = int(observation_space["observation"].shape[0])
        self.action_dim = int(action_space.shape[0])

    def make_encoder(self) -> nn.Module:
        """The goal-set feature module; must map (obs, gates (B, n_max)) -> (B, features_dim)."""
        divisor = self.n_max if self.pooling == "n_max" else 1.0
        return GoalSetEncoder(self.obs_dim, self.embed_dim, self.encoder_arch, divisor=divisor)

    def make_critic(self) -> DeepSetsCritic:
        return DeepSetsCritic(self.make_encoder(), self.obs_dim, self.action_dim, self.head_arch, self.n_critics)

    def _actor_features(self, critic: DeepSetsCritic) -> GoalSetFeatures:
        if self.share_encoder:
            return GoalSetFeatures(critic.encoder, owned=False)
        return GoalSetFeatures(self.make_encoder(), owned=True)

    _with_actor_target = True  # TD3/DDPG; SAC has no target actor
    _extra_constructor_parameters: dict[str, Any] = {}

    def _build(self, lr_schedule: Schedule) -> None:
        self.critic = self.make_critic().to(self.device)
        self.critic_target = self.make_critic().to(self.device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor = self.make_actor(self.critic).to(self.device)
        if self._with_actor_target:
            self.actor_target = self.make_actor(self.critic_target).to(self.device)  # borrows the target encoder
            self.actor_target.load_state_dict(self.actor.state_dict())
            self.actor_target.train(False)
        # The actor optimiser sees only the actor's own parameters (not a shared encoder).
        self.actor.optimizer = self.optimizer_class(self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
        self.critic.optimizer = self.optimizer_class(self.critic.parameters(), lr=lr_schedule(1),
                                                     **self.optimizer_kwargs)
        self.critic_target.train(False)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = BasePolicy._get_constructor_parameters(self)
        data.update(embed_dim=self.embed_dim, encoder_arch=self.encoder_arch, head_arch=self.head_arch,
                    share_encoder=self.share_encoder, n_critics=self.n_critics, pooling=self.pooling,
                    lr_schedule=self._dummy_schedule, optimizer_class=self.optimizer_class,
                    optimizer_kwargs=self.optimizer_kwargs, **self._extra_constructor_parameters)
        return data

    def set_training_mode(self, mode: bool) -> None:
        self.actor.train(mode)
        self.critic.train(mode)
        self.training = mode


class DeepSetsTD3Policy(_GoalSetPolicyMixin, TD3Policy):
    """SB3 TD3/DDPG policy with DeepSets actor and critic (``policy_kwargs``: embed_dim, encoder_arch, head_arch,
    share_encoder, n_critics, pooling ("n_max" default, or "sum"); defaults are Table G.4 with one critic, i.e.
    DDPG)."""

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.Box, lr_schedule: Schedule,
                 embed_dim: int = 20, encoder_arch: list[int] = (400, 400), head_arch: list[int] = (400,),
                 share_encoder: bool = True, n_critics: int = 1, pooling: str = "n_max",
                 optimizer_class: type = torch.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, normalize_images: bool = True,
                 use_sde: bool = False) -> None:
        if use_sde:  # accepted because SB3 writes use_sde into shared policy_kwargs dicts
            raise ValueError("use_sde must be False for DeepSetsTD3Policy")
        BasePolicy.__init__(self, observation_space, action_space, optimizer_class=optimizer_class,
                            optimizer_kwargs=optimizer_kwargs, squash_output=True, normalize_images=normalize_images)
        self._init_goal_set(observation_space, action_space, embed_dim, encoder_arch, head_arch, share_encoder,
                            n_critics, pooling)
        self.share_features_extractor = False
        self._build(lr_schedule)

    def make_actor(self, critic: DeepSetsCritic) -> DeepSetsActor:  # type: ignore[override]
        return DeepSetsActor(self._actor_features(critic), self.obs_dim, self.action_dim, self.head_arch)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        return self.actor(observation)



class DeepSetsSACPolicy(_GoalSetPolicyMixin, SACPolicy):
    """SB3 SAC policy with a DeepSets squashed-Gaussian actor and DeepSets twin critics (``n_critics=2``)."""

    _with_actor_target = False
    _extra_constructor_parameters = {"use_sde": False}

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.Box, lr_schedule: Schedule,
                 embed_dim: int = 20, encoder_arch: list[int] = (400, 400), head_arch: list[int] = (400,),
                 share_encoder: bool = True, n_critics: int = 2, pooling: str = "n_max",
                 optimizer_class: type = torch.optim.Adam,
                 optimizer_kwargs: dict[str, Any] | None = None, use_sde: bool = False,
                 normalize_images: bool = True) -> None:
        if use_sde:
            raise ValueError("use_sde must be False for DeepSetsSACPolicy (gSDE is not supported)")
        BasePolicy.__init__(self, observation_space, action_space, optimizer_class=optimizer_class,
                            optimizer_kwargs=optimizer_kwargs, squash_output=True, normalize_images=normalize_images)
        self._init_goal_set(observation_space, action_space, embed_dim, encoder_arch, head_arch, share_encoder,
                            n_critics, pooling)
        self.use_sde = False
        self.share_features_extractor = False
        self._build(lr_schedule)

    def make_actor(self, critic: DeepSetsCritic) -> DeepSetsGaussianActor:  # type: ignore[override]
        return DeepSetsGaussianActor(self._actor_features(critic), self.obs_dim, self.action_dim, self.head_arch)

    def reset_noise(self, batch_size: int = 1) -> None:
        pass

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        return self.actor(observation, deterministic)

