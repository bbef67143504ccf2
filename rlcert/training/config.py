"""Training configs: YAML + ``--set`` overrides, defaults, and validation (one-line errors naming the key).

Config keys: name, algo (key of ``rlcert.agents.ALGOS`` or "module:Class"), policy, env (gymnasium id;
"HandReach-v3" uses ``rlcert.envs.make_hand_reach``), env_kwargs, n_envs, seed, total_timesteps, algo_kwargs
(constructor kwargs; special: replay_buffer_class, action_noise {type: normal|ornstein_uhlenbeck, sigma},
policy_kwargs with "module:Class" strings for *_class / activation_fn), eval {freq, episodes, metric:
ever|final|return}, log_dir, checkpoint, torch_threads, notes, observation_noise {method, sigma, perturb}
(smoothed training, ``rlcert.envs.observation_noise``). Every value is checked (algo_kwargs names against the
algorithm's constructor) before anything is written.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import numbers
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

import rlcert.envs  # noqa: F401  (registers the environments)
from rlcert.agents import ALGOS
from rlcert.agents.callbacks import METRICS
from rlcert.envs.observation_noise import check_noise_config

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
    if config.get("observation_noise") is not None:  # smoothed training (rlcert.envs.observation_noise)
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
    """An algorithm class from a config's ``algo`` (a key of ``rlcert.agents.ALGOS`` or 'module:Class')."""
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




def run_dir_of(config: dict) -> Path:
    """The run folder of a resolved config: ``{log_dir}/{name}/seed{seed}``."""
    return Path(config["log_dir"]) / config["name"] / f"seed{config['seed']}"
