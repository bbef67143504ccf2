"""``rlcert train --config configs/X.yaml [--seed N] [--set key.sub=value ...] [--log-dir DIR] [--resume]``.

Trains an SB3 / ReenGAGE agent from a YAML config (schema below) and writes ``{log_dir}/{name}/seed{seed}/``:
``eval.csv`` (one row per evaluation, flushed), ``tb/`` (tensorboard), ``checkpoints/latest_*`` (model + replay
buffer, for ``--resume``), ``config.yaml`` (resolved) and the final ``model.zip`` (reload with
``ALGOS[algo].load(path, env=...)``).

Config keys: name, algo (key of ``rlcert.agents.ALGOS`` or "module:Class"), policy, env (gymnasium id;
"HandReach-v3" uses ``rlcert.envs.make_hand_reach``), env_kwargs, n_envs, seed, total_timesteps, algo_kwargs
(constructor kwargs; special: replay_buffer_class, action_noise {type: normal|ornstein_uhlenbeck, sigma},
policy_kwargs with "module:Class" strings for *_class / activation_fn), eval {freq, episodes, metric:
ever|final|return}, log_dir, observation_noise {method, sigma, perturb} (smoothed training: the certification
noise on the training observations, see ``rlcert.certify.policy.wrappers``). ``buffer_size`` larger than
total_timesteps is capped to it (same behaviour, as the buffer never wraps; keeps checkpoints small).
"""

from __future__ import annotations

import argparse
import copy
import csv
import importlib
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml

DEFAULT_EVAL = {"freq": 2000, "episodes": 50, "metric": "ever"}
KNOWN_KEYS = {"name", "algo", "policy", "env", "env_kwargs", "n_envs", "seed", "total_timesteps", "algo_kwargs",
              "eval", "log_dir", "checkpoint", "torch_threads", "notes", "observation_noise"}


def import_object(spec: str) -> Any:
    """'package.module:Name' -> the object."""
    if ":" not in spec:
        raise ValueError(f"expected 'package.module:Name', got {spec!r}")
    module, name = spec.split(":", 1)
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def set_by_path(config: dict, assignment: str) -> None:
    """Apply one ``--set a.b.c=value`` override; the value is parsed as YAML (numbers, lists, null...)."""
    if "=" not in assignment:
        raise ValueError(f"--set expects key.path=value, got {assignment!r}")
    path, raw = assignment.split("=", 1)
    keys = path.strip().split(".")
    node = config
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {path}: {k!r} is not a mapping")
    node[keys[-1]] = yaml.safe_load(raw)


def load_config(path: str | Path, overrides: list[str] = (), seed: int | None = None,
                log_dir: str | None = None) -> dict:
    """Read a YAML config, apply overrides, fill defaults and validate; returns a new dict."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"config file {str(path)!r} does not exist")
    config = yaml.safe_load(path.read_text()) or {}
    for assignment in overrides:
        set_by_path(config, assignment)
    if seed is not None:
        config["seed"] = seed
    if log_dir is not None:
        config["log_dir"] = log_dir
    unknown = set(config) - KNOWN_KEYS
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; allowed: {sorted(KNOWN_KEYS)}")
    for key in ("algo", "env", "total_timesteps"):
        if key not in config:
            raise ValueError(f"config is missing the required key {key!r}")
    config.setdefault("name", path.stem)
    config.setdefault("policy", "MultiInputPolicy")
    config.setdefault("env_kwargs", {})
    config.setdefault("n_envs", 1)
    config.setdefault("seed", 0)
    config.setdefault("algo_kwargs", {})
    config.setdefault("log_dir", "runs/train")
    config["eval"] = {**DEFAULT_EVAL, **(config.get("eval") or {})}
    if not isinstance(config["total_timesteps"], int) or config["total_timesteps"] <= 0:
        raise ValueError(f"total_timesteps must be a positive integer, got {config['total_timesteps']!r}")
    resolve_algo(config["algo"])  # fail early on an unknown algorithm name
    if not isinstance(config["n_envs"], int) or config["n_envs"] <= 0:
        raise ValueError(f"n_envs must be a positive integer, got {config['n_envs']!r}")
    if config.get("observation_noise") is not None:  # smoothed training (rlcert.certify.policy)
        from rlcert.certify.policy.wrappers import check_noise_config

        config["observation_noise"] = check_noise_config(config["observation_noise"])
    return config


def resolve_algo(name: str) -> type:
    from rlcert.agents import ALGOS

    if name in ALGOS:
        return ALGOS[name]
    if ":" in name:
        return import_object(name)
    raise ValueError(f"algo must be one of {sorted(ALGOS)} or 'module:Class', got {name!r}")


def make_env(env_id: str, env_kwargs: dict, seed: int | None = None) -> gym.Env:
    """One environment instance (HandReach-v3 goes through ``rlcert.envs.make_hand_reach``)."""
    import rlcert  # noqa: F401  (registers the environments)

    if env_id.split("/")[-1].startswith("HandReach"):
        from rlcert.envs import make_hand_reach

        env = make_hand_reach(**env_kwargs)
    else:
        env = gym.make(env_id, **env_kwargs)
    if seed is not None:
        env.reset(seed=seed)
    return env


def make_train_env(config: dict) -> gym.Env:
    """A training environment: ``make_env``, wrapped with the certification noise when the config has
    ``observation_noise: {method, sigma, perturb}`` (``rlcert.certify.policy.wrappers.ObservationNoiseWrapper``)."""
    env = make_env(config["env"], config["env_kwargs"])
    if config.get("observation_noise") is not None:
        from rlcert.certify.policy.wrappers import ObservationNoiseWrapper

        env = ObservationNoiseWrapper(env, **config["observation_noise"])
    return env


def _resolve_classes(obj: Any) -> Any:
    """Recursively turn "module:Class" strings under *_class / activation_fn keys into objects."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(v, str) and (k.endswith("_class") or k == "activation_fn") and ":" in v:
                out[k] = import_object(v)
            else:
                out[k] = _resolve_classes(v)
        return out
    return obj


def build_algo_kwargs(config: dict, action_space: gym.Space) -> dict:
    """Constructor kwargs from ``algo_kwargs`` with the special keys resolved."""
    from stable_baselines3 import HerReplayBuffer
    from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    kw = _resolve_classes(copy.deepcopy(config["algo_kwargs"]))
    rb = kw.get("replay_buffer_class")
    if isinstance(rb, str):
        named = {"HerReplayBuffer": HerReplayBuffer, "ReplayBuffer": ReplayBuffer,
                 "DictReplayBuffer": DictReplayBuffer}
        if rb in named:
            kw["replay_buffer_class"] = named[rb]
        elif ":" in rb:
            kw["replay_buffer_class"] = import_object(rb)
        else:
            raise ValueError(f"replay_buffer_class must be one of {sorted(named)}, 'module:Class' or null, got {rb!r}")
    noise = kw.get("action_noise")
    if isinstance(noise, dict):
        kind, sigma = noise.get("type", "normal"), float(noise.get("sigma", 0.1))
        shape = action_space.shape
        if kind == "normal":
            kw["action_noise"] = NormalActionNoise(np.zeros(shape), sigma * np.ones(shape))
        elif kind == "ornstein_uhlenbeck":
            kw["action_noise"] = OrnsteinUhlenbeckActionNoise(np.zeros(shape), sigma * np.ones(shape))
        else:
            raise ValueError(f"action_noise.type must be 'normal' or 'ornstein_uhlenbeck', got {kind!r}")
    for key in ("reward_fn",):
        if isinstance(kw.get(key), str):
            kw[key] = import_object(kw[key])
    cap = config["total_timesteps"] + config["n_envs"]  # never overflows: same behaviour, small checkpoints
    kw["buffer_size"] = int(min(kw.get("buffer_size", 1_000_000), cap))
    return kw


def grow_replay_buffer(buffer, new_size: int) -> None:
    """Enlarge a not-yet-wrapped SB3 replay buffer in place (used when ``--resume`` raises total_timesteps above
    the capped ``buffer_size``). Every per-slot array/list (first axis = buffer_size) is extended; contents kept."""
    old = buffer.buffer_size
    if new_size <= old:
        return
    if buffer.full:
        raise ValueError("cannot grow a replay buffer that has already wrapped around")

    def grow(x):
        if isinstance(x, np.ndarray) and x.ndim >= 1 and x.shape[0] == old:
            out = np.zeros((new_size, *x.shape[1:]), dtype=x.dtype)
            if x.dtype == object:  # HER infos: one dict per slot
                for idx in np.ndindex(out.shape):
                    out[idx] = {}
            out[:old] = x
            return out
        if isinstance(x, dict):
            return {k: grow(v) for k, v in x.items()}
        return x

    for name, value in list(vars(buffer).items()):
        setattr(buffer, name, grow(value))
    buffer.buffer_size = new_size


def run_dir_of(config: dict) -> Path:
    return Path(config["log_dir"]) / config["name"] / f"seed{config['seed']}"


def train(config: dict, resume: bool = False, progress: bool = True, verbose: int = 0):
    """Train from a resolved config (see :func:`load_config`); returns (model, run_dir)."""
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.env_util import make_vec_env

    from rlcert.agents.callbacks import EvalCheckpointCallback, TqdmCallback

    if config.get("torch_threads"):
        th.set_num_threads(int(config["torch_threads"]))
    algo_cls = resolve_algo(config["algo"])
    run_dir = run_dir_of(config)
    ckpt = run_dir / "checkpoints" / "latest_model.zip"
    seed = int(config["seed"])
    vec_env = make_vec_env(lambda: make_train_env(config), n_envs=config["n_envs"], seed=seed)
    eval_env = make_env(config["env"], config["env_kwargs"])
    if resume and ckpt.exists():
        model = algo_cls.load(ckpt, env=vec_env, tensorboard_log=str(run_dir / "tb"))
        buffer = run_dir / "checkpoints" / "latest_replay_buffer.pkl"
        if buffer.exists():
            model.load_replay_buffer(buffer)
            want = build_algo_kwargs(config, vec_env.action_space)["buffer_size"]
            grow_replay_buffer(model.replay_buffer, want)
        # Drop CSV rows written after the checkpoint (they will be re-evaluated), keep all earlier ones.
        _truncate_csv(run_dir / "eval.csv", model.num_timesteps)
        print(f"resuming {run_dir} from step {model.num_timesteps}")
    else:
        if run_dir.exists() and any(run_dir.iterdir()):
            if resume:
                print(f"no checkpoint in {run_dir}; starting from scratch")
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        kwargs = build_algo_kwargs(config, vec_env.action_space)
        policy = config["policy"]
        if isinstance(policy, str) and ":" in policy:
            policy = import_object(policy)
        model = algo_cls(policy, vec_env, seed=seed, verbose=verbose, tensorboard_log=str(run_dir / "tb"), **kwargs)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    ev = config["eval"]
    callbacks = [EvalCheckpointCallback(eval_env, run_dir, int(ev["freq"]), int(ev["episodes"]), ev["metric"],
                                        seed=10_000 + seed, checkpoint=config.get("checkpoint", True))]
    remaining = config["total_timesteps"] - model.num_timesteps
    if progress:
        callbacks.append(TqdmCallback(config["total_timesteps"]))
    if remaining > 0:
        model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=not (resume and ckpt.exists()),
                    tb_log_name="run")
    model.save(run_dir / "model.zip")
    return model, run_dir


def _truncate_csv(path: Path, max_step: int) -> None:
    if not path.exists():
        return
    with open(path) as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, [r for r in reader if int(r["timesteps"]) <= max_step]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlcert train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry, e.g. --set algo_kwargs.batch_size=256 (repeatable)")
    parser.add_argument("--log-dir", default=None, help="override log_dir")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: config or torch's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--seeds", default=None, metavar="RANGE",
                        help="train several seeds, e.g. 0-19 or 0,3,5-7: together in one process on batched "
                             "networks (rlcert.fleet) when the config allows it, else one after another")
    args = parser.parse_args(argv)
    if args.seeds is not None:
        return _main_seeds(parser, args)
    try:
        config = load_config(args.config, args.set, args.seed, args.log_dir)
    except ValueError as e:
        parser.error(str(e))
    if args.threads is not None:
        config["torch_threads"] = args.threads
    _, run_dir = train(config, resume=args.resume, progress=not args.no_progress)
    print(f"done: {run_dir / 'model.zip'} (eval log {run_dir / 'eval.csv'})")
    return 0


def _main_seeds(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--seeds``: the fleet (rlcert.fleet) if it supports the config, else sequential runs of :func:`train`."""
    from rlcert.fleet.config import unsupported_reason
    from rlcert.fleet.run import parse_seeds, train_fleet

    if args.seed is not None:
        parser.error("give either --seed or --seeds, not both")
    try:
        seeds = parse_seeds(args.seeds)
        config = load_config(args.config, args.set, seeds[0], args.log_dir)
    except ValueError as e:
        parser.error(str(e))
    if args.threads is not None:
        config["torch_threads"] = args.threads
    reason = unsupported_reason(config)
    if reason is None:
        print(f"training seeds {args.seeds} together (fleet of {len(seeds)})")
        run_dirs = train_fleet(config, seeds, resume=args.resume, progress=not args.no_progress)
    else:
        print(f"the fleet does not support {reason}; training the seeds one after another")
        run_dirs = [train({**config, "seed": s}, resume=args.resume, progress=not args.no_progress)[1]
                    for s in seeds]
    print(f"done: {len(run_dirs)} runs under {run_dirs[0].parent} (seed*/eval.csv, seed*/model.zip)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
