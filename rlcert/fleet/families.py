"""Which fleet family trains a ``rlcert train`` config, and how: the one entry point of ``rlcert train --seeds``.

Families (each a module with its own update, equivalence-tested against the agents):

* TD3 family (:mod:`rlcert.fleet.td3`): DDPG, TD3, ReenGAGEDDPG, ReenGAGETD3 on ContinuousSeek (settings:
  :func:`rlcert.fleet.config.read_config`);
* DQN family (:mod:`rlcert.fleet.dqn`): DQN, ReenGAGEDQN (+HER) on Bit-Flipping;
* goal-set family (:mod:`rlcert.fleet.goal_set`): MultiReenGAGEDDPG, MultiReenGAGETD3 with
  ``DeepSetsTD3Policy`` on DriveSeek and NoisySeek.

:func:`unsupported_reason` says in one line why a config cannot run as a fleet (the command then trains the seeds
one after another); :func:`build_fleet` builds the fleet; :func:`export_all` writes each member's ``model.zip``,
loadable by the config's agent class. Settings come from the config, defaults from the agent classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stable_baselines3 import DQN

from rlcert.agents.deepsets import DeepSetsTD3Policy
from rlcert.agents.dqn import ReenGAGEDQN
from rlcert.agents.multi_reengage import GateInput
from rlcert.envs.torch_vector import TORCH_TWINS
from rlcert.fleet import config as td3_config
from rlcert.fleet.config import Schedule
from rlcert.fleet.dqn import DQNFleet, DQNSettings, Exploration, agent_defaults
from rlcert.fleet.goal_set import GoalSetFleet, GoalSetSettings, store_member
from rlcert.fleet.stacked import linears_of, store_linear_stack
from rlcert.fleet.trainer import Fleet

TD3_ALGOS = set(td3_config.ALGO_DEFAULTS)
DQN_ALGOS = {"DQN": DQN, "ReenGAGEDQN": ReenGAGEDQN}
GOAL_SET_ALGOS = {"MultiReenGAGEDDPG": "DDPG", "MultiReenGAGETD3": "TD3"}  # -> the TD3-family defaults to use
DQN_ENVS = {"rlcert/BitFlipping-v0"}
GOAL_SET_ENVS = {"rlcert/DriveSeek-v0", "rlcert/NoisySeek-v0"}
DQN_NET_ARCH = [64, 64]  # SB3 QNetwork's default net_arch (tests/fleet/test_families.py)
DQN_KWARGS = {"learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
              "gradient_steps", "replay_buffer_class", "replay_buffer_kwargs", "target_update_interval",
              "exploration_fraction", "exploration_initial_eps", "exploration_final_eps", "max_grad_norm",
              "policy_kwargs", "alpha", "softmax_tau", "reengage_mode", "c_low", "goal_reduction", "goal_key",
              "goal_weighting", "verbose"}
GOAL_SET_KWARGS = {"learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
                   "gradient_steps", "replay_buffer_class", "replay_buffer_kwargs", "action_noise", "policy_kwargs",
                   "policy_delay", "target_policy_noise", "target_noise_clip", "alpha", "goal_reduction",
                   "through_target_actor", "verbose"}
GOAL_SET_POLICY_KWARGS = {"embed_dim", "encoder_arch", "head_arch", "share_encoder", "n_critics", "pooling"}


def algo_name(config: dict) -> str:
    """The class name of the config's algo ('rlcert.agents.multi_reengage:MultiReenGAGEDDPG' -> 'MultiReenGAGEDDPG')."""
    return str(config["algo"]).rsplit(":", 1)[-1]


def _common_reason(config: dict, kw: dict, known: set[str]) -> str | None:
    """Checks shared by the DQN and goal-set families (the TD3 family has its own in rlcert.fleet.config)."""
    if config.get("observation_noise") is not None:
        return "observation_noise (certification noise wrapper)"
    if config.get("n_envs", 1) != 1:
        return "n_envs other than 1"
    extra = set(kw) - known
    if extra:
        return f"algo_kwargs {sorted(extra)}"
    if not isinstance(kw.get("learning_rate", 1e-3), (int, float)):
        return "learning-rate schedules"
    tf = kw.get("train_freq", 1)
    if not (isinstance(tf, int) or (isinstance(tf, (list, tuple)) and len(tf) == 2 and tf[1] == "step")):
        return f"train_freq {tf!r} (fleet: steps only)"
    return None


def _dqn_reason(config: dict) -> str | None:
    kw = config.get("algo_kwargs") or {}
    if config["env"] not in DQN_ENVS:
        return f"env {config['env']!r} for DQN (fleet: {sorted(DQN_ENVS)})"
    if config.get("policy", "MultiInputPolicy") != "MultiInputPolicy":
        return "policy other than MultiInputPolicy"
    reason = _common_reason(config, kw, DQN_KWARGS)
    if reason is not None:
        return reason
    pk = kw.get("policy_kwargs") or {}
    if set(pk) - {"net_arch"} or not isinstance(pk.get("net_arch", []), list):
        return "policy_kwargs other than a list net_arch"
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


def _goal_set_reason(config: dict) -> str | None:
    kw = config.get("algo_kwargs") or {}
    policy = str(config.get("policy", ""))
    if policy.endswith("DriveSeekCnnTD3Policy"):
        return ("the DriveSeek CNN variant (its NatureCNN image encoder is not a stacked MLP and its 168x168 image "
                "per goal set would dominate; train it one seed at a time)")
    if not policy.endswith("DeepSetsTD3Policy"):
        return f"policy {policy!r} for goal sets (fleet: DeepSetsTD3Policy)"
    if config["env"] not in GOAL_SET_ENVS:
        return f"env {config['env']!r} for Multi-ReenGAGE (fleet: {sorted(GOAL_SET_ENVS)})"
    reason = _common_reason(config, kw, GOAL_SET_KWARGS)
    if reason is not None:
        return reason
    pk = kw.get("policy_kwargs") or {}
    if set(pk) - GOAL_SET_POLICY_KWARGS:
        return f"policy_kwargs {sorted(set(pk) - GOAL_SET_POLICY_KWARGS)}"
    if not pk.get("share_encoder", True):
        return "share_encoder=false (the unshared-encoder ablation; fleet: shared encoder)"
    if kw.get("replay_buffer_class") not in (None, "DictReplayBuffer"):
        return f"replay_buffer_class {kw.get('replay_buffer_class')!r} (goal sets: a plain buffer)"
    noise = kw.get("action_noise")
    if noise is not None and (not isinstance(noise, dict) or noise.get("type", "normal") != "normal"):
        return "action noise other than normal"
    return None


def unsupported_reason(config: dict) -> str | None:
    """None if some fleet family trains this (resolved) config, else a one-line reason."""
    name = algo_name(config)
    if name in DQN_ALGOS:
        return _dqn_reason(config)
    if name in GOAL_SET_ALGOS:
        return _goal_set_reason(config)
    if name in TD3_ALGOS:
        return td3_config.unsupported_reason(config)
    return (f"algo {config['algo']!r} (fleet: {sorted(TD3_ALGOS | set(DQN_ALGOS) | set(GOAL_SET_ALGOS))}; "
            "SAC not yet)")


def _per_member(overrides: list[dict] | None, n: int, allowed: set[str]):
    overrides = overrides or [{} for _ in range(n)]
    if len(overrides) != n:
        raise ValueError(f"member_overrides must have {n} entries, got {len(overrides)}")
    for o in overrides:
        if set(o) - allowed:
            raise ValueError(f"member_overrides keys must be in {sorted(allowed)}, got {sorted(set(o) - allowed)}")
    return lambda name, default: [float(o.get(name, default)) for o in overrides]


def _schedule(kw: dict, total_timesteps: int, episode_length: int, her: bool) -> Schedule:
    """SB3's off-policy schedule from (defaults-merged) algo kwargs; the buffer capped at the run's length."""
    tf = kw["train_freq"]
    train_freq = int(tf if isinstance(tf, int) else tf[0])
    gradient_steps = int(kw["gradient_steps"])
    rk = kw.get("replay_buffer_kwargs") or {}
    schedule = Schedule(learning_starts=int(kw["learning_starts"]), train_freq=train_freq,
                        gradient_steps=train_freq if gradient_steps < 0 else gradient_steps,
                        batch_size=int(kw["batch_size"]),
                        buffer_size=int(min(kw["buffer_size"], total_timesteps + episode_length)),
                        n_sampled_goal=int(rk.get("n_sampled_goal", 4)), her=her)
    if schedule.train_freq < 1 or schedule.gradient_steps < 1 or schedule.batch_size < 1:
        raise ValueError("train_freq, gradient_steps and batch_size must be positive")
    return schedule


def _build_dqn(config: dict, seeds: list[int], overrides: list[dict] | None) -> DQNFleet:
    cls = DQN_ALGOS[algo_name(config)]
    kw = {**agent_defaults(ReenGAGEDQN), **agent_defaults(cls), **(config.get("algo_kwargs") or {})}
    if cls is DQN:  # stock DQN: no gradient term (its other ReenGAGE settings are unused)
        kw["alpha"] = 0.0
    per = _per_member(overrides, len(seeds), {"learning_rate", "alpha", "gamma", "tau"})
    env_cls, env_kwargs = TORCH_TWINS[config["env"]], config.get("env_kwargs") or {}
    probe = env_cls([None], **env_kwargs)
    settings = DQNSettings(
        obs_dim=probe.obs_dim, goal_dim=probe.goal_dim, n_actions=probe.n_actions,
        net_arch=list((kw.get("policy_kwargs") or {}).get("net_arch", DQN_NET_ARCH)),
        goal_reduction=kw["goal_reduction"], c_low=float(kw["c_low"]), softmax_tau=float(kw["softmax_tau"]),
        max_grad_norm=float(kw["max_grad_norm"]), learning_rate=per("learning_rate", kw["learning_rate"]),
        alpha=per("alpha", kw["alpha"]), gamma=per("gamma", kw["gamma"]), tau=per("tau", kw["tau"]))
    schedule = _schedule(kw, int(config["total_timesteps"]), probe.max_steps,
                         her=kw.get("replay_buffer_class") == "HerReplayBuffer")
    exploration = Exploration(float(kw["exploration_initial_eps"]), float(kw["exploration_final_eps"]),
                              float(kw["exploration_fraction"]), int(kw["target_update_interval"]))
    return DQNFleet(settings, schedule, seeds, env_cls, env_kwargs, exploration, int(config["total_timesteps"]))


def _build_goal_set(config: dict, seeds: list[int], overrides: list[dict] | None) -> GoalSetFleet:
    base = GOAL_SET_ALGOS[algo_name(config)]
    kw = {**td3_config.COMMON_DEFAULTS, **td3_config.ALGO_DEFAULTS[base], **agent_defaults(GateInput),
          **(config.get("algo_kwargs") or {})}
    pk = {**agent_defaults(DeepSetsTD3Policy), "n_critics": kw["n_critics"], **(kw.get("policy_kwargs") or {})}
    noise = kw.get("action_noise")
    sigma = float(noise.get("sigma", 0.1)) if isinstance(noise, dict) else 0.0
    per = _per_member(overrides, len(seeds), {"learning_rate", "alpha", "gamma", "tau", "target_policy_noise",
                                              "target_noise_clip", "action_noise_sigma"})
    env_cls, env_kwargs = TORCH_TWINS[config["env"]], config.get("env_kwargs") or {}
    probe = env_cls([None], **env_kwargs)
    settings = GoalSetSettings(
        obs_dim=probe.obs_dim, n_max=probe.n_max, action_dim=probe.action_dim, embed_dim=int(pk["embed_dim"]),
        encoder_arch=list(pk["encoder_arch"]), head_arch=list(pk["head_arch"]), pooling=pk["pooling"],
        n_critics=int(pk["n_critics"]), policy_delay=int(kw["policy_delay"]), goal_reduction=kw["goal_reduction"],
        through_target_actor=bool(kw["through_target_actor"]),
        learning_rate=per("learning_rate", kw["learning_rate"]), alpha=per("alpha", kw["alpha"]),
        gamma=per("gamma", kw["gamma"]), tau=per("tau", kw["tau"]),
        target_policy_noise=per("target_policy_noise", kw["target_policy_noise"]),
        target_noise_clip=per("target_noise_clip", kw["target_noise_clip"]))
    schedule = _schedule(kw, int(config["total_timesteps"]), probe.max_steps, her=False)
    return GoalSetFleet(settings, schedule, seeds, env_cls, env_kwargs, per("action_noise_sigma", sigma))


def build_fleet(config: dict, seeds: list[int], member_overrides: list[dict] | None = None) -> Fleet:
    """The fleet (trainer) for a config that :func:`unsupported_reason` accepts, one member per seed."""
    reason = unsupported_reason(config)
    if reason is not None:
        raise ValueError(f"the fleet does not support {reason}")
    name = algo_name(config)
    if name in DQN_ALGOS:
        return _build_dqn(config, seeds, member_overrides)
    if name in GOAL_SET_ALGOS:
        return _build_goal_set(config, seeds, member_overrides)
    settings, schedule, noise, env_cls = td3_config.read_config(config, len(seeds), member_overrides)
    return Fleet(settings, schedule, seeds, env_cls, config.get("env_kwargs") or {}, noise)


def export_all(fleet: Fleet, config: dict, run_dirs: list[Path]) -> None:
    """Write ``model.zip`` (the config's agent class, loadable by ``<class>.load``) for every member of a DQN or
    goal-set fleet (the TD3 family: :func:`rlcert.fleet.run.export_all`)."""
    from rlcert.train import build_algo_kwargs, import_object, make_env, resolve_algo  # floor 3, as fleet.run does

    name = algo_name(config)
    if name in TD3_ALGOS:
        raise ValueError("TD3-family fleets are exported by rlcert.fleet.run.export_all")
    algo_cls = resolve_algo(config["algo"])
    env = make_env(config["env"], config.get("env_kwargs") or {})
    base = build_algo_kwargs(config, env.action_space)
    base.update(buffer_size=1, learning_starts=0)
    base.pop("replay_buffer_class", None)
    base.pop("replay_buffer_kwargs", None)
    cfg = fleet.agent.cfg
    for k, d in enumerate(run_dirs):
        kw: dict[str, Any] = {**base, "learning_rate": cfg.learning_rate[k], "gamma": cfg.gamma[k], "tau": cfg.tau[k]}
        if name != "DQN":
            kw["alpha"] = cfg.alpha[k]
        if name in DQN_ALGOS:
            model = algo_cls("MultiInputPolicy", env, **kw)
            store_linear_stack(fleet.agent.q_net, k, linears_of(model.q_net))
            store_linear_stack(fleet.agent.q_net_target, k, linears_of(model.q_net_target))
        else:
            policy = config["policy"]
            model = algo_cls(import_object(policy) if ":" in policy else policy, env, **kw)
            store_member(fleet.agent, k, model)
        d.mkdir(parents=True, exist_ok=True)
        model.save(d / "model.zip")
