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
noise on the training observations, see ``rlcert.certify.policy.wrappers``). Every value is checked (algo_kwargs
names against the algorithm's constructor) before anything is written; a bad one is a one-line error naming the
key. An existing run folder is refused unless ``--resume`` is given (nothing is ever overwritten silently). The
final step is always evaluated. ``buffer_size`` larger than total_timesteps is capped to it (same behaviour, as
the buffer never wraps; keeps checkpoints small).
"""

from __future__ import annotations

import argparse
import copy
import csv
import difflib
import importlib
import inspect
import numbers
import shutil
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml

DEFAULT_EVAL = {"freq": 2000, "episodes": 50, "metric": "ever"}
KNOWN_KEYS = {"name", "algo", "policy", "env", "env_kwargs", "n_envs", "seed", "total_timesteps", "algo_kwargs",
              "eval", "log_dir", "checkpoint", "torch_threads", "notes", "observation_noise", "precision"}


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
    try:
        node[keys[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ValueError(f"--set {path}: {raw!r} is not a YAML value") from None


def load_config(path: str | Path, overrides: list[str] = (), seed: int | None = None,
                log_dir: str | None = None) -> dict:
    """Read a YAML config, apply overrides, fill defaults and validate; returns a new dict."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"config file {str(path)!r} does not exist")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise ValueError(f"config file {str(path)!r} must hold a YAML mapping of config keys")
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
    if not isinstance(config.get("eval") or {}, dict):
        raise ValueError(f"eval must be a mapping with keys {sorted(DEFAULT_EVAL)}, got {config['eval']!r}")
    config["eval"] = {**DEFAULT_EVAL, **(config.get("eval") or {})}
    validate_config(config)
    if config.get("observation_noise") is not None:  # smoothed training (rlcert.certify.policy)
        from rlcert.certify.policy.wrappers import check_noise_config

        config["observation_noise"] = check_noise_config(config["observation_noise"])
    return config


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and bool(np.isfinite(v))


# algo_kwargs entries checked before the constructor runs: key -> (allowed, test).
ALGO_KWARG_CHECKS = {
    "learning_rate": ("a number > 0", lambda v: _is_num(v) and v > 0),
    "batch_size": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "buffer_size": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "learning_starts": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "gamma": ("a number in [0, 1]", lambda v: _is_num(v) and 0 <= v <= 1),
    "tau": ("a number in (0, 1]", lambda v: _is_num(v) and 0 < v <= 1),
    "gradient_steps": ("an integer >= 1 or -1", lambda v: _is_int(v) and (v >= 1 or v == -1)),
    "train_freq": ("an integer >= 1 or [n, 'step' | 'episode']",
                   lambda v: (_is_int(v) and v >= 1) or (isinstance(v, (list, tuple)) and len(v) == 2 and _is_int(v[0])
                                                         and v[0] >= 1 and v[1] in ("step", "episode"))),
    "policy_delay": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "target_policy_noise": ("a number >= 0", lambda v: _is_num(v) and v >= 0),
    "target_noise_clip": ("a number >= 0", lambda v: _is_num(v) and v >= 0),
    "alpha": ("a number >= 0", lambda v: _is_num(v) and v >= 0),
    "c_low": ("a number", _is_num),
    "ent_coef": ("a number > 0, 'auto' or 'auto_<init>'",
                 lambda v: (_is_num(v) and v > 0) or (isinstance(v, str) and v.startswith("auto"))),
    "policy_kwargs": ("a mapping", lambda v: isinstance(v, dict)),
    "replay_buffer_kwargs": ("a mapping or null", lambda v: v is None or isinstance(v, dict)),
    "action_noise": ("null or {type: normal | ornstein_uhlenbeck, sigma: number >= 0}",
                     lambda v: v is None or (isinstance(v, dict) and set(v) <= {"type", "sigma"}
                                             and v.get("type", "normal") in ("normal", "ornstein_uhlenbeck")
                                             and _is_num(v.get("sigma", 0.1)) and v.get("sigma", 0.1) >= 0)),
}
# Constructor arguments that ``train`` passes itself.
RESERVED_ALGO_KWARGS = {"policy", "env", "seed", "verbose", "tensorboard_log"}


def constructor_kwargs(cls: type) -> set[str] | None:
    """Names a class's constructor accepts, following ``**kwargs`` up the MRO; None if open-ended."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names - {"self"}
    return None


def _allowed_hint(key: str, allowed: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _public(names: set[str]) -> list[str]:
    return sorted(n for n in names if not n.startswith("_"))


def _check_env_kwargs(env_id: str, env_kwargs: dict) -> None:
    """Unknown env id or env_kwargs name -> one-line ValueError (values are checked by the env itself)."""
    import rlcert.envs  # noqa: F401  (registers the environments)

    if env_id.split("/")[-1].startswith("HandReach"):
        return
    try:
        entry = gym.spec(env_id).entry_point
    except gym.error.Error as e:
        raise ValueError(f"env {env_id!r} is not a registered gymnasium id ({e})") from None
    try:
        cls = import_object(entry) if isinstance(entry, str) else entry
    except (ImportError, AttributeError, ValueError):
        return
    allowed = constructor_kwargs(cls) if isinstance(cls, type) else None
    if allowed is None:
        return
    allowed -= {"render_mode"}
    for key in env_kwargs:
        if key not in allowed:
            raise ValueError(f"unknown key env_kwargs.{key} for {env_id}; {_allowed_hint(key, allowed)}"
                             f"allowed: {_public(allowed)}")


def validate_config(config: dict) -> None:
    """Check a config's values (types, ranges, algo_kwargs names against the algorithm's constructor); raises a
    one-line ``ValueError`` naming the key and what is allowed. Writes nothing."""
    for key in ("name", "env", "log_dir"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise ValueError(f"{key} must be a non-empty string, got {config.get(key)!r}")
    if not isinstance(config["policy"], str):
        raise ValueError(f"policy must be a policy name or 'module:Class', got {config['policy']!r}")
    if not _is_int(config["total_timesteps"]) or config["total_timesteps"] <= 0:
        raise ValueError(f"total_timesteps must be an integer >= 1, got {config['total_timesteps']!r}")
    if not _is_int(config["n_envs"]) or config["n_envs"] <= 0:
        raise ValueError(f"n_envs must be an integer >= 1, got {config['n_envs']!r}")
    if not _is_int(config["seed"]) or config["seed"] < 0:
        raise ValueError(f"seed must be an integer >= 0, got {config['seed']!r}")
    for key in ("env_kwargs", "algo_kwargs"):
        if not isinstance(config[key], dict):
            raise ValueError(f"{key} must be a mapping, got {config[key]!r}")
    threads = config.get("torch_threads")
    if threads is not None and (not _is_int(threads) or threads < 1):
        raise ValueError(f"torch_threads must be an integer >= 1, got {threads!r}")
    if config.get("precision", "fp32") not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16' (bf16: the fleet's matmuls), got {config['precision']!r}")
    if "checkpoint" in config and not isinstance(config["checkpoint"], bool):
        raise ValueError(f"checkpoint must be true or false, got {config['checkpoint']!r}")
    ev = config["eval"]
    stray = set(ev) - set(DEFAULT_EVAL)
    if stray:
        raise ValueError(f"unknown eval keys {sorted(stray)}; allowed: {sorted(DEFAULT_EVAL)}")
    for key in ("freq", "episodes"):
        if not _is_int(ev[key]) or ev[key] < 1:
            raise ValueError(f"eval.{key} must be an integer >= 1, got {ev[key]!r}")
    from rlcert.agents.callbacks import METRICS

    if ev["metric"] not in METRICS:
        raise ValueError(f"eval.metric must be one of {list(METRICS)}, got {ev['metric']!r}")
    _check_env_kwargs(config["env"], config["env_kwargs"])
    algo_cls = resolve_algo(config["algo"])
    allowed = constructor_kwargs(algo_cls)
    for key, value in config["algo_kwargs"].items():
        if key in RESERVED_ALGO_KWARGS:
            raise ValueError(f"algo_kwargs.{key} is set by rlcert train (use the top-level key or a flag)")
        if allowed is not None and key not in allowed:
            raise ValueError(f"unknown key algo_kwargs.{key} for {algo_cls.__name__}; {_allowed_hint(key, allowed)}"
                             f"allowed: {_public(allowed - RESERVED_ALGO_KWARGS)}")
        if key in ALGO_KWARG_CHECKS:
            what, ok = ALGO_KWARG_CHECKS[key]
            if not ok(value):
                raise ValueError(f"algo_kwargs.{key} must be {what}, got {value!r}")


def resolve_algo(name: str) -> type:
    from rlcert.agents import ALGOS

    if isinstance(name, str) and name in ALGOS:
        return ALGOS[name]
    if isinstance(name, str) and ":" in name:
        try:
            obj = import_object(name)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"algo {name!r} cannot be imported ({e})") from None
        if not isinstance(obj, type):
            raise ValueError(f"algo {name!r} is not a class")
        return obj
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


def last_eval_step(path: Path) -> int:
    """Largest ``timesteps`` in an eval.csv (-1 when the file is missing or empty)."""
    if not Path(path).exists():
        return -1
    with open(path) as f:
        return max((int(r["timesteps"]) for r in csv.DictReader(f)), default=-1)


def _build_envs(config: dict, seed: int):
    from stable_baselines3.common.env_util import make_vec_env

    try:
        vec_env = make_vec_env(lambda: make_train_env(config), n_envs=config["n_envs"], seed=seed)
        eval_env = make_env(config["env"], config["env_kwargs"])
    except (TypeError, ValueError, gym.error.Error) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"env {config['env']!r} with env_kwargs {config['env_kwargs']}: {msg}") from None
    return vec_env, eval_env


def train(config: dict, resume: bool = False, progress: bool = True, verbose: int = 0):
    """Train from a resolved config (see :func:`load_config`); returns (model, run_dir).

    Everything that can be refused (env arguments, constructor arguments, an existing run folder without
    ``resume``) is checked before anything is written, as a one-line ``ValueError``. The final step is always
    evaluated, also when ``total_timesteps`` is not a multiple of ``eval.freq``.
    """
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.logger import Logger

    from rlcert.agents.callbacks import EvalCheckpointCallback, TqdmCallback

    if config.get("precision", "fp32") != "fp32":
        raise ValueError(f"precision {config['precision']!r} is a fleet setting (rlcert train --seeds with a config "
                         "the fleet supports); one run trains in fp32")
    if config.get("torch_threads"):
        th.set_num_threads(int(config["torch_threads"]))
    algo_cls = resolve_algo(config["algo"])
    run_dir = run_dir_of(config)
    ckpt = run_dir / "checkpoints" / "latest_model.zip"
    seed = int(config["seed"])
    existing = run_dir.exists() and any(run_dir.iterdir())
    if existing and not resume:
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another "
                         "--log-dir, --seed or name (nothing was overwritten)")
    vec_env, eval_env = _build_envs(config, seed)
    resumed = resume and ckpt.exists()
    if resumed:
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
        policy = config["policy"]
        try:
            kwargs = build_algo_kwargs(config, vec_env.action_space)
            if isinstance(policy, str) and ":" in policy:
                policy = import_object(policy)
            model = algo_cls(policy, vec_env, seed=seed, verbose=verbose, tensorboard_log=str(run_dir / "tb"),
                             **kwargs)
        except (TypeError, ValueError, AssertionError, KeyError, ImportError, AttributeError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"{config['algo']} rejected the config (algo_kwargs / policy): {msg}") from None
        if existing:  # resume requested but no checkpoint yet: start this seed again
            print(f"no checkpoint in {run_dir}; starting from scratch")
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    ev = config["eval"]
    evaluator = EvalCheckpointCallback(eval_env, run_dir, int(ev["freq"]), int(ev["episodes"]), ev["metric"],
                                       seed=10_000 + seed, checkpoint=config.get("checkpoint", True))
    callbacks = [evaluator]
    remaining = config["total_timesteps"] - model.num_timesteps
    if progress:
        callbacks.append(TqdmCallback(config["total_timesteps"]))
    if remaining > 0:
        model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=not resumed, tb_log_name="run")
    if last_eval_step(run_dir / "eval.csv") < model.num_timesteps:  # the final step is always evaluated
        if getattr(evaluator, "model", None) is None:
            evaluator.init_callback(model)
        if not hasattr(model, "_logger"):
            model.set_logger(Logger(folder=None, output_formats=[]))
        evaluator.num_timesteps = model.num_timesteps
        evaluator.evaluate_now()
        if evaluator.checkpoint:
            evaluator.save_checkpoint()
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
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest checkpoint (without it, an existing run folder is refused)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: config or torch's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--seeds", default=None, metavar="RANGE",
                        help="train several seeds, e.g. 0-19 or 0,3,5-7: together in one process on batched "
                             "networks (rlcert.fleet) when the config allows it, else one after another")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be an integer >= 1, got {args.threads}")
    if args.seeds is not None:
        return _main_seeds(parser, args)
    try:
        config = load_config(args.config, args.set, args.seed, args.log_dir)
        if args.threads is not None:
            config["torch_threads"] = args.threads
        _, run_dir = train(config, resume=args.resume, progress=not args.no_progress)
    except ValueError as e:
        print(f"rlcert train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the latest checkpoint is kept; continue with the same command plus --resume",
              file=sys.stderr)
        return 130
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
    try:
        if reason is None:
            print(f"training seeds {args.seeds} together (fleet of {len(seeds)})")
            run_dirs = train_fleet(config, seeds, resume=args.resume, progress=not args.no_progress)
        else:
            print(f"the fleet does not support {reason}; training the seeds one after another")
            run_dirs = [train({**config, "seed": s}, resume=args.resume, progress=not args.no_progress)[1]
                        for s in seeds]
    except ValueError as e:
        print(f"rlcert train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs and the latest checkpoints are kept; continue with --resume",
              file=sys.stderr)
        return 130
    print(f"done: {len(run_dirs)} runs under {run_dirs[0].parent} (seed*/eval.csv, seed*/model.zip)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
