"""What every fleet family shares: the settings base, the plug-in interface the trainer calls, and small helpers.

A *family* (:class:`FleetAlgorithm` subclass: :class:`rlcert.fleet.td3.FleetTD3`, :class:`rlcert.fleet.sac.FleetSAC`,
...) holds S members' stacked networks, optimisers and update. It plugs into the trainer
(:class:`rlcert.fleet.trainer.Fleet`) with five methods, and into ``rlcert train --seeds`` with one entry in
:data:`rlcert.fleet.config.FAMILIES` (algo name -> family class) and its :meth:`FleetAlgorithm.settings_from_agent`
(settings read from the config's own agent, built once as a probe, so defaults are the agents' and SB3's).

Random numbers: member k's generator gives, in this order, its initial parameters (at construction), then during
training whatever the family draws for member k (exploration, noise); a family must draw member k's numbers from
``generators[k]`` only, so that member k's run does not depend on the other members.

Precision: ``settings.precision`` "bf16" runs the update's matmuls under ``torch.autocast(bfloat16,
cache_enabled=False)`` (the weight cache would keep stale casts of weights that change every step: nothing learns);
master weights, Adam state, losses and targets stay float32 (families cast network outputs with ``.float()``).
"""

from __future__ import annotations

import abc
import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any

import torch as th

from rlcert.fleet.adam import StackedAdam
from rlcert.fleet.replay import Batch
from rlcert.fleet.stacked import StackedMLP

OBS_KEYS = ("achieved_goal", "desired_goal", "observation")  # gymnasium's sorted Dict key order (SB3's features)
PRECISIONS = ("fp32", "bf16")


@dataclass
class MemberSettings:
    """Settings every family has: shapes shared by all members, per-member lists of length S."""

    obs_dim: int
    goal_dim: int
    action_dim: int
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    learning_rate: list[float] = field(default_factory=lambda: [1e-3])
    gamma: list[float] = field(default_factory=lambda: [0.99])
    tau: list[float] = field(default_factory=lambda: [0.005])
    precision: str = "fp32"
    device: str = "cpu"  # where networks, optimiser state and replay live (random draws stay on CPU generators)

    PER_MEMBER = ("gamma", "tau")  # besides learning_rate; subclasses extend

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        n = len(self.learning_rate)
        for name in self.PER_MEMBER:
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have one value per member ({n}), got {len(getattr(self, name))}")

    @property
    def n_members(self) -> int:
        return len(self.learning_rate)


def col(values: list[float], device: str | th.device = "cpu") -> th.Tensor:
    """Per-member values as an (S, 1, 1) float32 column (broadcasts against (S, B, dim))."""
    return th.tensor(values, dtype=th.float32, device=device).reshape(-1, 1, 1)


def features(obs: dict[str, th.Tensor], goal: th.Tensor | None = None) -> th.Tensor:
    """SB3's ``CombinedExtractor`` features of a Dict observation: concat(achieved, desired (or ``goal``), obs)."""
    return th.cat([goal if (k == "desired_goal" and goal is not None) else obs[k] for k in OBS_KEYS], dim=-1)


def goal_columns(goal_dim: int) -> slice:
    """Where the desired goal sits in :func:`features` (and in the critic input, the action appended last)."""
    return slice(goal_dim, 2 * goal_dim)


@th.no_grad()
def polyak(nets: list[StackedMLP], targets: list[StackedMLP], tau: th.Tensor) -> None:
    """target <- (1 - tau_k) target + tau_k online, member by member (SB3's ``polyak_update`` arithmetic)."""
    params = [p for n in nets for p in n.parameters()]
    tparams = [p for n in targets for p in n.parameters()]
    taus = [tau.reshape(-1, *([1] * (p.dim() - 1))) for p in params]
    th._foreach_mul_(tparams, [1 - t for t in taus])
    th._foreach_add_(tparams, th._foreach_mul(params, taus))


def clone_net(net: StackedMLP) -> StackedMLP:
    """An independent copy (same device), e.g. a target network."""
    return copy.deepcopy(net)


class FleetAlgorithm(abc.ABC):
    """S members of one algorithm family on stacked networks: the interface the trainer calls.

    Subclasses set ``self.cfg`` (their :class:`MemberSettings`) and implement the abstract methods; the members'
    networks are :class:`StackedMLP` s, their optimisers :class:`StackedAdam` s (listed by :meth:`modules` /
    :meth:`optimizers` for checkpoints).
    """

    cfg: MemberSettings
    n_updates: int = 0

    # --- plugging into rlcert train --seeds -------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def settings_from_agent(cls, agent: Any, env: Any, n_members: int, precision: str) -> MemberSettings:
        """The family's settings for ``n_members`` identical members from a probe of the config's agent (an instance
        of the agent class built with the config's kwargs: its attributes are the resolved defaults) and the torch
        env ``env`` (dimensions). Per-member overrides are applied afterwards to the per-member lists."""

    @classmethod
    def member_overridable(cls) -> tuple[str, ...]:
        """Setting names that ``member_overrides`` may change (they keep the shapes)."""
        return ("learning_rate", "gamma", "tau")

    # --- the trainer's calls ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def act(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        """Deterministic actions (S, B, a) for observations of (S, B, dim) (evaluation, export)."""

    @abc.abstractmethod
    def explore(self, obs: dict[str, th.Tensor], generators: list[th.Generator], warm_up: bool) -> th.Tensor:
        """Actions (S, a) taken while learning for observations of (S, dim) (``warm_up``: before learning_starts,
        SB3's random actions), drawing member k's random numbers from ``generators[k]``."""

    @abc.abstractmethod
    def update(self, batch: Batch, generators: list[th.Generator] | None = None, gradient_step: int = 0
               ) -> dict[str, th.Tensor]:
        """One gradient step of every member on its slice of ``batch`` (``gradient_step``: index within the
        current ``train()`` call, as SB3 counts it); per-member losses (S,)."""

    @abc.abstractmethod
    def modules(self) -> dict[str, StackedMLP]:
        """Every stacked network by name (checkpoint order)."""

    @abc.abstractmethod
    def optimizers(self) -> dict[str, StackedAdam]:
        """Every optimiser by name."""

    @abc.abstractmethod
    def member_pairs(self, k: int, model: Any) -> list[tuple[StackedMLP, int, list]]:
        """(stacked net, member index, the agent's ``nn.Linear`` layers) pairs mapping member k onto ``model`` (an
        instance of the config's agent class), for :mod:`rlcert.fleet.export`."""

    def on_step(self, num_timesteps: int, total_timesteps: int | None) -> None:
        """Called after every collected env step, once the transition is stored (SB3's ``_on_step``: e.g. DQN's
        target update every ``target_update_interval`` steps and its exploration schedule, evaluated at progress
        remaining ``1 - num_timesteps / total_timesteps``). ``total_timesteps`` is the current ``learn`` call's
        target (None outside ``learn``). Default: nothing."""

    # --- plugging into the config check (rlcert.fleet.config.unsupported_reason) --------------------------------
    env_ids: tuple[str, ...] = ("rlcert/ContinuousSeek-v0",)  # the gymnasium ids of the envs the family trains on
    standard_config = True  # MultiInputPolicy with a list net_arch, HER or a plain buffer: the generic checks apply

    @classmethod
    def config_reason(cls, config: dict) -> str | None:
        """A one-line reason the family cannot train ``config``, or None; called instead of the generic
        MultiInputPolicy checks when ``standard_config`` is False."""
        return None

    def extra_state(self) -> dict:
        """Family state besides networks and optimisers (override: e.g. SAC's entropy coefficient)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Inverse of :meth:`extra_state`."""

    # --- shared -----------------------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for the matmuls when ``precision`` is "bf16" (weight cache off), else nothing."""
        if self.cfg.precision == "bf16":
            return th.autocast(th.device(self.cfg.device).type, dtype=th.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def state_dict(self) -> dict:
        return {"modules": {k: m.state_dict() for k, m in self.modules().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
                "n_updates": self.n_updates, "extra": self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        for name, m in self.modules().items():
            m.load_state_dict(state["modules"][name])
        for name, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][name])
        self.n_updates = int(state["n_updates"])
        self.load_extra_state(state["extra"])


def uniform_actions(generators: list[th.Generator], action_dim: int, device: str | th.device = "cpu") -> th.Tensor:
    """SB3's warm-up actions for a [-1, 1]^a Box: uniform, (S, a), member k's from ``generators[k]``."""
    return (th.stack([th.rand(action_dim, generator=g) for g in generators]) * 2 - 1).to(device)


def gaussian(generators: list[th.Generator], shape: tuple[int, ...], device: str | th.device = "cpu") -> th.Tensor:
    """Standard normal noise (S, *shape), member k's from ``generators[k]`` (drawn on the CPU, so a member's numbers
    do not depend on the device)."""
    return th.stack([th.randn(shape, generator=g) for g in generators]).to(device)
