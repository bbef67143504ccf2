"""Which ``rlcert train`` configs the fleet runs, and the fleet's settings read from such a config.

Supported: algo DDPG, TD3, ReenGAGEDDPG, ReenGAGETD3 (sparse mode, no goal weighting), policy MultiInputPolicy
with a list ``net_arch``, a torch-vectorised env (:data:`TORCH_ENVS`), n_envs 1, replay buffer HerReplayBuffer
with the "future" strategy (or none: plain uniform replay), Gaussian action noise or none, constant learning rate.
Anything else returns a reason from :func:`unsupported_reason` and ``rlcert train --seeds`` falls back to running
the seeds one after another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlcert.fleet.td3 import FleetSettings
from rlcert.fleet.vector_envs import TorchContinuousSeek

TORCH_ENVS = {"rlcert/ContinuousSeek-v0": TorchContinuousSeek}
# SB3 2.x constructor defaults of the supported algorithms (DDPG = TD3 with one critic and no target noise).
ALGO_DEFAULTS = {
    "DDPG": {"n_critics": 1, "policy_delay": 1, "target_policy_noise": 0.0, "target_noise_clip": 0.0},
    "TD3": {"n_critics": 2, "policy_delay": 2, "target_policy_noise": 0.2, "target_noise_clip": 0.5},
}
ALGO_DEFAULTS["ReenGAGEDDPG"] = ALGO_DEFAULTS["DDPG"]
ALGO_DEFAULTS["ReenGAGETD3"] = ALGO_DEFAULTS["TD3"]
COMMON_DEFAULTS = {"learning_rate": 1e-3, "buffer_size": 1_000_000, "learning_starts": 100, "batch_size": 256,
                   "tau": 0.005, "gamma": 0.99, "train_freq": 1, "gradient_steps": 1}
KNOWN_ALGO_KWARGS = set(COMMON_DEFAULTS) | {"alpha",
    "replay_buffer_class", "replay_buffer_kwargs", "action_noise", "policy_kwargs", "policy_delay",
    "target_policy_noise", "target_noise_clip", "reengage_mode", "c_low", "goal_reduction", "goal_weighting",
    "goal_key", "through_target_actor", "verbose"}


def unsupported_reason(config: dict) -> str | None:
    """None if the fleet can train this (resolved) config, else a one-line reason."""
    kw = config.get("algo_kwargs") or {}
    if config["algo"] not in ALGO_DEFAULTS:
        return f"algo {config['algo']!r} (fleet: {sorted(ALGO_DEFAULTS)})"
    if config["env"] not in TORCH_ENVS:
        return f"env {config['env']!r} has no torch-vectorised version (fleet: {sorted(TORCH_ENVS)})"
    if config.get("observation_noise") is not None:
        return "observation_noise (certification noise wrapper)"
    if config.get("policy", "MultiInputPolicy") != "MultiInputPolicy" or config.get("n_envs", 1) != 1:
        return "policy must be MultiInputPolicy and n_envs 1"
    extra = set(kw) - KNOWN_ALGO_KWARGS
    if extra:
        return f"algo_kwargs {sorted(extra)}"
    pk = kw.get("policy_kwargs") or {}
    if set(pk) - {"net_arch", "n_critics"} or not isinstance(pk.get("net_arch", []), list):
        return "policy_kwargs other than a list net_arch / n_critics"
    if kw.get("replay_buffer_class") not in (None, "HerReplayBuffer"):
        return f"replay_buffer_class {kw.get('replay_buffer_class')!r}"
    rk = kw.get("replay_buffer_kwargs") or {}
    if set(rk) - {"n_sampled_goal", "goal_selection_strategy"} or rk.get("goal_selection_strategy",
                                                                           "future") != "future":
        return "HER other than the 'future' strategy"
    noise = kw.get("action_noise")
    if noise is not None and (not isinstance(noise, dict) or noise.get("type", "normal") != "normal"):
        return "action noise other than normal"
    if kw.get("reengage_mode", "sparse") != "sparse" or kw.get("goal_weighting") is not None:
        return "ReenGAGE dense mode / goal weighting"
    if kw.get("goal_key", "desired_goal") != "desired_goal" or not kw.get("through_target_actor", True):
        return "goal_key / through_target_actor other than the defaults"
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


def read_config(config: dict, n_members: int, member_overrides: list[dict] | None = None
                ) -> tuple[FleetSettings, Schedule, list[float], Any]:
    """(settings, schedule, action-noise sigma per member, torch env class) for ``n_members`` members.

    ``member_overrides[k]`` may change learning_rate, alpha, gamma, tau, target_policy_noise,
    target_noise_clip or action_noise_sigma for member k (settings that keep the shapes).
    """
    reason = unsupported_reason(config)
    if reason is not None:
        raise ValueError(f"the fleet does not support {reason}")
    kw = {**COMMON_DEFAULTS, **ALGO_DEFAULTS[config["algo"]], **(config.get("algo_kwargs") or {})}
    pk = kw.get("policy_kwargs") or {}
    if "n_critics" in pk:
        kw["n_critics"] = pk["n_critics"]
    net_arch = list(pk.get("net_arch", [400, 300]))
    noise = kw.get("action_noise")
    sigma = float(noise.get("sigma", 0.1)) if isinstance(noise, dict) else 0.0
    overrides = member_overrides or [{} for _ in range(n_members)]
    if len(overrides) != n_members:
        raise ValueError(f"member_overrides must have {n_members} entries, got {len(overrides)}")
    allowed = {"learning_rate", "alpha", "gamma", "tau", "target_policy_noise", "target_noise_clip",
               "action_noise_sigma"}
    for o in overrides:
        if set(o) - allowed:
            raise ValueError(f"member_overrides keys must be in {sorted(allowed)}, got {sorted(set(o) - allowed)}")

    def per_member(name: str, default: float) -> list[float]:
        return [float(o.get(name, default)) for o in overrides]

    env_cls = TORCH_ENVS[config["env"]]
    probe = env_cls([None], **(config.get("env_kwargs") or {}))
    settings = FleetSettings(
        obs_dim=probe.obs_dim, goal_dim=probe.goal_dim, action_dim=probe.action_dim, net_arch=net_arch,
        n_critics=int(kw["n_critics"]), policy_delay=int(kw["policy_delay"]),
        goal_reduction=kw.get("goal_reduction", "mean"), c_low=float(kw.get("c_low", -1.0)),
        learning_rate=per_member("learning_rate", kw["learning_rate"]),
        alpha=per_member("alpha", kw.get("alpha", 0.2) if config["algo"].startswith("ReenGAGE") else 0.0),
        gamma=per_member("gamma", kw["gamma"]), tau=per_member("tau", kw["tau"]),
        target_policy_noise=per_member("target_policy_noise", kw["target_policy_noise"]),
        target_noise_clip=per_member("target_noise_clip", kw["target_noise_clip"]))
    tf = kw["train_freq"]
    train_freq = int(tf if isinstance(tf, int) else tf[0])
    gradient_steps = int(kw["gradient_steps"])
    rk = kw.get("replay_buffer_kwargs") or {}
    schedule = Schedule(
        learning_starts=int(kw["learning_starts"]), train_freq=train_freq,
        gradient_steps=train_freq if gradient_steps < 0 else gradient_steps, batch_size=int(kw["batch_size"]),
        buffer_size=int(min(kw["buffer_size"], config["total_timesteps"] + probe.max_steps)),
        n_sampled_goal=int(rk.get("n_sampled_goal", 4)), her=kw.get("replay_buffer_class") == "HerReplayBuffer")
    if schedule.train_freq < 1 or schedule.gradient_steps < 1 or schedule.batch_size < 1:
        raise ValueError("train_freq, gradient_steps and batch_size must be positive")
    return settings, schedule, per_member("action_noise_sigma", sigma), env_cls
