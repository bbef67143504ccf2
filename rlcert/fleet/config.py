"""Which ``rlcert train`` configs the fleet runs, and the fleet's settings read from such a config.

:data:`FAMILIES` maps the config's ``algo`` to a fleet family (:class:`rlcert.fleet.family.FleetAlgorithm`);
:data:`TORCH_ENVS` maps env ids to torch-vectorised twins. Settings are never re-typed here: the config's own
agent class is built once as a *probe* with the config's kwargs (tiny replay buffer) and the family reads the
resolved values from it (SB3's and rlcert.agents' defaults included: DDPG's single critic, TD3's delay and noise,
SAC's ``target_entropy="auto"``, ReenGAGE's alpha / goal_reduction / c_low); HER's defaults come from
``HerReplayBuffer``'s signature. Top-level ``precision`` (fp32 | bf16) selects the update's matmul precision.

Anything the fleet cannot run returns a reason from :func:`unsupported_reason`; ``rlcert train --seeds`` then falls
back to running the seeds one after another (the command decides, not the fleet).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from stable_baselines3 import HerReplayBuffer

from rlcert.envs.torch_vector import TorchBitFlipping, TorchContinuousSeek
from rlcert.fleet.dqn import FleetDQN
from rlcert.fleet.family import PRECISIONS, FleetAlgorithm, MemberSettings
from rlcert.fleet.goal_set import FleetMultiReenGAGE, ScaledDriveSeek, ScaledNoisySeek
from rlcert.fleet.sac import FleetSAC
from rlcert.fleet.td3 import FleetTD3
from rlcert.training import build_algo_kwargs, import_object, make_env, resolve_algo

TORCH_ENVS: dict[str, type] = {"rlcert/ContinuousSeek-v0": TorchContinuousSeek,
                               "rlcert/BitFlipping-v0": TorchBitFlipping,
                               "rlcert/DriveSeek-v0": ScaledDriveSeek,  # SB3's action unscaling, then the twin
                               "rlcert/NoisySeek-v0": ScaledNoisySeek}
FAMILIES: dict[str, type[FleetAlgorithm]] = {
    "DDPG": FleetTD3, "TD3": FleetTD3, "ReenGAGEDDPG": FleetTD3, "ReenGAGETD3": FleetTD3,
    "SAC": FleetSAC, "ReenGAGESAC": FleetSAC, "DQN": FleetDQN, "ReenGAGEDQN": FleetDQN,
    "MultiReenGAGEDDPG": FleetMultiReenGAGE, "MultiReenGAGETD3": FleetMultiReenGAGE,
}
# algo_kwargs the fleet understands (everything else is a reason to fall back); values are checked below
KNOWN_ALGO_KWARGS = {"learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
                     "gradient_steps", "alpha", "replay_buffer_class", "replay_buffer_kwargs", "action_noise",
                     "policy_kwargs", "policy_delay", "target_policy_noise", "target_noise_clip", "reengage_mode",
                     "c_low", "goal_reduction", "goal_weighting", "goal_key", "through_target_actor", "verbose",
                     "ent_coef", "target_entropy", "target_update_interval"}
HER_DEFAULTS = {name: p.default for name, p in inspect.signature(HerReplayBuffer.__init__).parameters.items()
                if name in ("n_sampled_goal", "goal_selection_strategy")}


def algo_name(config: dict) -> str:
    """The config's algo as a class name ('rlcert.agents.multi_reengage:MultiReenGAGEDDPG' -> 'MultiReenGAGEDDPG')."""
    return str(config["algo"]).rsplit(":", 1)[-1]


def unsupported_reason(config: dict) -> str | None:
    """None if the fleet can train this (resolved) config, else a one-line reason."""
    kw = config.get("algo_kwargs") or {}
    family = FAMILIES.get(algo_name(config))
    if family is None:
        return f"algo {config['algo']!r} (fleet: {sorted(FAMILIES)})"
    if config["env"] not in family.env_ids or config["env"] not in TORCH_ENVS:
        return f"env {config['env']!r} for {algo_name(config)} (fleet: {sorted(family.env_ids)})"
    if config.get("precision", "fp32") not in PRECISIONS:
        return f"precision {config.get('precision')!r} (fleet: {list(PRECISIONS)})"
    if config.get("observation_noise") is not None:
        return "observation_noise (certification noise wrapper)"
    if not family.standard_config:  # the family checks its own policy, kwargs and buffer (the shared ones after)
        reason = family.config_reason(config) or (None if config.get("n_envs", 1) == 1 else "n_envs other than 1")
        return reason or _schedule_reason(kw)
    if config.get("policy", "MultiInputPolicy") != "MultiInputPolicy" or config.get("n_envs", 1) != 1:
        return "policy must be MultiInputPolicy and n_envs 1"
    extra = set(kw) - KNOWN_ALGO_KWARGS
    if extra:
        return f"algo_kwargs {sorted(extra)}"
    pk = kw.get("policy_kwargs") or {}
    if set(pk) - {"net_arch", "n_critics"} or not isinstance(pk.get("net_arch", []), list) or pk.get("net_arch") == []:
        return "policy_kwargs other than a non-empty list net_arch / n_critics"
    if kw.get("replay_buffer_class") not in (None, "HerReplayBuffer"):
        return f"replay_buffer_class {kw.get('replay_buffer_class')!r}"
    rk = kw.get("replay_buffer_kwargs") or {}
    if set(rk) - {"n_sampled_goal", "goal_selection_strategy"} or rk.get(
            "goal_selection_strategy", HER_DEFAULTS["goal_selection_strategy"]) not in ("future",):
        return "HER other than the 'future' strategy"
    noise = kw.get("action_noise")
    if noise is not None and (not isinstance(noise, dict) or noise.get("type", "normal") != "normal"):
        return "action noise other than normal"
    if kw.get("reengage_mode", "sparse") != "sparse" or kw.get("goal_weighting") is not None:
        return "ReenGAGE dense mode / goal weighting"
    if kw.get("goal_key", "desired_goal") != "desired_goal":
        return "goal_key other than desired_goal"
    reason = _schedule_reason(kw)
    if reason is not None:
        return reason
    ent = kw.get("ent_coef", "auto")
    if not (isinstance(ent, (int, float)) or (isinstance(ent, str) and ent.startswith("auto"))):
        return f"ent_coef {ent!r}"
    return None


def _schedule_reason(kw: dict) -> str | None:
    if not isinstance(kw.get("learning_rate", 1e-3), (int, float)):
        return "learning-rate schedules"
    tf = kw.get("train_freq", 1)
    if not (isinstance(tf, int) or (isinstance(tf, (list, tuple)) and len(tf) == 2 and tf[1] == "step")):
        return f"train_freq {tf!r} (fleet: steps only)"
    return None


@dataclass
class Schedule:
    """When to act randomly and when to train (SB3's off-policy loop semantics)."""

    learning_starts: int
    train_freq: int
    gradient_steps: int
    batch_size: int
    buffer_size: int
    n_sampled_goal: int
    her: bool


def probe_agent(config: dict) -> tuple[Any, int]:
    """The config's agent, built once with its kwargs (replay buffer of size 1, no HER) to read resolved settings,
    and the buffer size ``rlcert train`` would give it."""
    policy = config.get("policy", "MultiInputPolicy")
    env = make_env(config["env"], config.get("env_kwargs") or {})
    kw = build_algo_kwargs(config, env.action_space)
    kw.pop("replay_buffer_class", None)
    kw.pop("replay_buffer_kwargs", None)
    buffer_size = int(kw["buffer_size"])
    kw.update(buffer_size=1, verbose=0, device="cpu")
    return resolve_algo(config["algo"])(import_object(policy) if ":" in policy else policy, env, **kw), buffer_size


def read_config(config: dict, n_members: int, member_overrides: list[dict] | None = None
                ) -> tuple[MemberSettings, Schedule, type[FleetAlgorithm], Any]:
    """(settings, schedule, family class, torch env class) for ``n_members`` members.

    ``member_overrides[k]`` may change, for member k, the settings the family lists in ``member_overridable()``
    (e.g. learning_rate, alpha, gamma, tau: settings that keep the shapes).
    """
    reason = unsupported_reason(config)
    if reason is not None:
        raise ValueError(f"the fleet does not support {reason}")
    family = FAMILIES[algo_name(config)]
    overrides = member_overrides or [{} for _ in range(n_members)]
    if len(overrides) != n_members:
        raise ValueError(f"member_overrides must have {n_members} entries, got {len(overrides)}")
    allowed = set(family.member_overridable())
    for o in overrides:
        if set(o) - allowed:
            raise ValueError(f"member_overrides keys must be in {sorted(allowed)}, got {sorted(set(o) - allowed)}")
    agent, buffer_size = probe_agent(config)
    kw = config.get("algo_kwargs") or {}
    env_cls = TORCH_ENVS[config["env"]]
    probe_env = env_cls([None], **(config.get("env_kwargs") or {}))
    settings = family.settings_from_agent(agent, probe_env, n_members, config.get("precision", "fp32"))
    for k, o in enumerate(overrides):
        for name, value in o.items():
            getattr(settings, name)[k] = float(value)
    settings.__post_init__()  # the overridden values checked
    tf = agent.train_freq
    rk = kw.get("replay_buffer_kwargs") or {}
    schedule = Schedule(
        learning_starts=int(agent.learning_starts), train_freq=int(tf.frequency),
        gradient_steps=int(tf.frequency if agent.gradient_steps < 0 else agent.gradient_steps),
        batch_size=int(agent.batch_size),
        buffer_size=int(min(buffer_size, config["total_timesteps"] + probe_env.max_steps)),
        n_sampled_goal=int(rk.get("n_sampled_goal", HER_DEFAULTS["n_sampled_goal"])),
        her=kw.get("replay_buffer_class") == "HerReplayBuffer")
    if schedule.train_freq < 1 or schedule.gradient_steps < 1 or schedule.batch_size < 1:
        raise ValueError("train_freq, gradient_steps and batch_size must be positive")
    return settings, schedule, family, env_cls
