"""Sweep configs: read and validate a sweep YAML, expand it into settings x seeds, group seeds into trials.

Schema (every key optional unless marked required)::

    name: continuous_seek_d5            # sweep folder = {log_dir}/{name}; default: the file's stem
    log_dir: runs/sweeps
    methods:                            # required: method label -> base ``rlcert train`` config (path relative
      DDPG+HER: configs/continuous_seek_d5_ddpg_her.yaml   #   to the current folder, else to the sweep file)
      ReenGAGE: configs/continuous_seek_d5_reengage.yaml
    set: {total_timesteps: 20000}       # overrides for every trial (``rlcert train --set`` paths and values)
    method_set: {ReenGAGE: {algo_kwargs.goal_reduction: mean}}   # overrides for one method
    search:                             # required: at least one swept key (space or method_space)
      kind: grid                        # grid (every combination) | random (num_samples draws per method)
      space:                            # key path -> list of values (grid) or a distribution (random):
        algo_kwargs.batch_size: [128, 256, 512]            #   {uniform: [lo, hi]}, {loguniform: [lo, hi]},
        algo_kwargs.learning_rate: [2.5e-4, 5.0e-4]        #   {randint: [lo, hi]} (hi excluded), {choice: [...]}
      method_space: {ReenGAGE: {algo_kwargs.alpha: [0.1, 0.2, 0.3]}}   # keys searched for one method only
      num_samples: 8                    # random only
      seed: 0                           # random only: the draws are reproducible, so a rerun finds its trials
    seeds: 3                            # an int n (seeds 0..n-1) or a list of seeds
    seeds_per_trial: 1                  # seeds trained inside one trial (one after another today)
    method_keys: [algo_kwargs.alpha]    # swept keys that name a method variant in the report (Table G.2 rows)
    metric: success_rate                # eval.csv column the report ranks by (success_rate | mean_return)
    resources_per_trial: {cpu: 1}       # Ray resources of one trial

A setting is one method with one value per swept key; its id is ``{method}-{8 hex digits}`` (a hash of the
method and the values), so the same setting gets the same folder in every run of the sweep.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

SWEEP_KEYS = {"name", "log_dir", "methods", "set", "method_set", "search", "seeds", "seeds_per_trial", "method_keys",
              "metric", "resources_per_trial", "notes"}
SEARCH_KEYS = {"kind", "space", "method_space", "num_samples", "seed"}
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
METRICS = ("success_rate", "mean_return")


@dataclass(frozen=True)
class Setting:
    """One method with one value per swept key (``params``: key path -> value)."""

    setting_id: str
    method: str
    params: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Trial:
    """The unit Ray schedules: one setting and the seeds trained in it (one run folder per seed)."""

    trial_id: str
    setting: Setting
    seeds: tuple[int, ...]


@dataclass
class SweepSpec:
    """A validated sweep config (see the module docstring); ``base_configs`` maps method -> resolved config path."""

    name: str
    sweep_dir: Path
    base_configs: dict[str, Path]
    overrides: dict[str, Any]
    method_overrides: dict[str, dict[str, Any]]
    kind: str
    space: dict[str, Any]
    method_space: dict[str, dict[str, Any]]
    num_samples: int
    search_seed: int
    seeds: list[int]
    seeds_per_trial: int
    method_keys: list[str]
    metric: str
    resources: dict[str, float]
    source: dict = field(default_factory=dict)

    @property
    def swept_keys(self) -> list[str]:
        """Every key path searched, for any method, in first-seen order."""
        keys = list(self.space)
        for space in self.method_space.values():
            keys += [k for k in space if k not in keys]
        return keys


def _fail(msg: str) -> None:
    raise ValueError(msg)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "method"


def _check_space(where: str, space: Any, kind: str) -> dict[str, Any]:
    if not isinstance(space, dict):
        _fail(f"{where} must be a mapping key.path -> values, got {space!r}")
    for key, values in space.items():
        if not isinstance(key, str) or not key or key.split(".")[0] in ("seed", "log_dir", "name"):
            _fail(f"{where}: {key!r} cannot be swept (seed, log_dir and name are set by the sweep; "
                  "use a config key path such as algo_kwargs.learning_rate)")
        if kind == "grid":
            if not isinstance(values, list) or not values:
                _fail(f"{where}.{key} must be a non-empty list of values for a grid search, got {values!r}")
        else:
            if isinstance(values, list) and values:
                continue  # a plain list means {choice: list}
            if not (isinstance(values, dict) and len(values) == 1 and next(iter(values)) in DISTRIBUTIONS):
                _fail(f"{where}.{key} must be a list or one of {{{', '.join(DISTRIBUTIONS)}: ...}} for a random "
                      f"search, got {values!r}")
            dist, arg = next(iter(values.items()))
            if dist == "choice":
                if not isinstance(arg, list) or not arg:
                    _fail(f"{where}.{key}.choice must be a non-empty list, got {arg!r}")
            elif not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, (int, float)) for a in arg)
                      and arg[0] < arg[1]):
                _fail(f"{where}.{key}.{dist} must be [low, high] with low < high, got {arg!r}")
            elif dist == "loguniform" and arg[0] <= 0:
                _fail(f"{where}.{key}.loguniform needs low > 0, got {arg!r}")
            elif dist == "randint" and not all(isinstance(a, int) for a in arg):
                _fail(f"{where}.{key}.randint needs integer bounds, got {arg!r}")
    return dict(space)


def _resolve_path(raw: Any, where: str, sweep_file: Path) -> Path:
    if not isinstance(raw, str) or not raw:
        _fail(f"{where} must be a path to an 'rlcert train' config, got {raw!r}")
    for candidate in (Path(raw), sweep_file.parent / raw):
        if candidate.exists():
            return candidate.resolve()
    _fail(f"{where}: config file {raw!r} does not exist (looked in the current folder and next to {sweep_file})")
    raise AssertionError  # unreachable


def load_sweep(path: str | Path, log_dir: str | None = None) -> SweepSpec:
    """Read and validate a sweep YAML; every problem is one ``ValueError`` line naming the key."""
    path = Path(path)
    if not path.exists():
        _fail(f"sweep config {str(path)!r} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        _fail(f"sweep config {str(path)!r} must be a YAML mapping")
    unknown = set(raw) - SWEEP_KEYS
    if unknown:
        _fail(f"unknown sweep keys {sorted(unknown)}; allowed: {sorted(SWEEP_KEYS)}")
    methods = raw.get("methods")
    if not isinstance(methods, dict) or not methods:
        _fail(f"methods must be a non-empty mapping label -> train config path, got {methods!r}")
    base = {str(m): _resolve_path(p, f"methods.{m}", path) for m, p in methods.items()}
    overrides = raw.get("set") or {}
    if not isinstance(overrides, dict):
        _fail(f"set must be a mapping key.path -> value, got {overrides!r}")
    method_overrides = raw.get("method_set") or {}
    if not isinstance(method_overrides, dict) or not all(isinstance(v, dict) for v in method_overrides.values()):
        _fail(f"method_set must map a method label to a mapping key.path -> value, got {method_overrides!r}")
    search = raw.get("search") or {}
    if not isinstance(search, dict):
        _fail(f"search must be a mapping, got {search!r}")
    bad = set(search) - SEARCH_KEYS
    if bad:
        _fail(f"unknown search keys {sorted(bad)}; allowed: {sorted(SEARCH_KEYS)}")
    kind = search.get("kind", "grid")
    if kind not in ("grid", "random"):
        _fail(f"search.kind must be 'grid' or 'random', got {kind!r}")
    space = _check_space("search.space", search.get("space") or {}, kind)
    method_space_raw = search.get("method_space") or {}
    if not isinstance(method_space_raw, dict):
        _fail(f"search.method_space must map a method label to a space, got {method_space_raw!r}")
    method_space = {}
    for m, s in method_space_raw.items():
        method_space[str(m)] = _check_space(f"search.method_space.{m}", s, kind)
    for where, labels in (("method_set", method_overrides), ("search.method_space", method_space)):
        stray = set(map(str, labels)) - set(base)
        if stray:
            _fail(f"{where} names methods {sorted(stray)} that are not under methods; allowed: {sorted(base)}")
    num_samples = search.get("num_samples", 1 if kind == "grid" else None)
    if kind == "random" and (isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1):
        _fail(f"search.num_samples must be an integer >= 1 for a random search, got {num_samples!r}")
    search_seed = search.get("seed", 0)
    if isinstance(search_seed, bool) or not isinstance(search_seed, int):
        _fail(f"search.seed must be an integer, got {search_seed!r}")
    seeds = raw.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            _fail(f"seeds must be an integer >= 1 or a list of integers, got {seeds!r}")
        seeds = list(range(seeds))
    elif not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool)
                                                         for s in seeds)) or len(set(seeds)) != len(seeds):
        _fail(f"seeds must be an integer >= 1 or a list of distinct integers, got {seeds!r}")
    per_trial = raw.get("seeds_per_trial", 1)
    if isinstance(per_trial, bool) or not isinstance(per_trial, int) or per_trial < 1:
        _fail(f"seeds_per_trial must be an integer >= 1, got {per_trial!r}")
    swept = list(space) + [k for s in method_space.values() for k in s]
    method_keys = raw.get("method_keys") or []
    if not isinstance(method_keys, list) or any(k not in swept for k in method_keys):
        _fail(f"method_keys must be a list of swept keys (allowed: {sorted(set(swept))}), got {method_keys!r}")
    metric = raw.get("metric", "success_rate")
    if metric not in METRICS:
        _fail(f"metric must be one of {list(METRICS)}, got {metric!r}")
    resources = raw.get("resources_per_trial") or {"cpu": 1}
    if not isinstance(resources, dict) or not all(isinstance(v, (int, float)) and v >= 0 for v in resources.values()):
        _fail(f"resources_per_trial must map a resource name to a number >= 0, got {resources!r}")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name or "/" in name:
        _fail(f"name must be a non-empty string without '/', got {name!r}")
    if not space and not any(method_space.values()):
        _fail(f"search.space is empty (and so is search.method_space): a {kind} search over no keys would run each "
              "method once per seed; list at least one key path with its values, e.g. "
              "search: {space: {algo_kwargs.learning_rate: [0.0005, 0.001]}}")
    root = Path(log_dir if log_dir is not None else raw.get("log_dir", "runs/sweeps"))
    return SweepSpec(name=name, sweep_dir=(root / name).resolve(), base_configs=base, overrides=dict(overrides),
                     method_overrides={str(k): dict(v) for k, v in method_overrides.items()}, kind=kind, space=space,
                     method_space=method_space, num_samples=int(num_samples or 1), search_seed=search_seed,
                     seeds=list(seeds), seeds_per_trial=per_trial, method_keys=list(method_keys), metric=metric,
                     resources={str(k): float(v) for k, v in resources.items()}, source=raw)


def _draw(rng: np.random.Generator, values: Any) -> Any:
    """One draw from a list (uniform choice) or a one-key distribution mapping (see the module docstring)."""
    if isinstance(values, list):
        return values[int(rng.integers(len(values)))]
    ((dist, arg),) = values.items()
    if dist == "choice":
        return arg[int(rng.integers(len(arg)))]
    lo, hi = arg
    if dist == "uniform":
        return float(rng.uniform(lo, hi))
    if dist == "loguniform":
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return int(rng.integers(lo, hi))


def setting_id(method: str, params: dict[str, Any]) -> str:
    """``{method slug}-{8 hex}``: a stable id of a method and its swept values."""
    blob = json.dumps([method, sorted(params.items())], sort_keys=True, default=str)
    return f"{_slug(method)}-{hashlib.sha1(blob.encode()).hexdigest()[:8]}"


def expand_settings(spec: SweepSpec) -> list[Setting]:
    """All settings, methods in config order: the grid's product, or ``num_samples`` reproducible draws."""
    out: list[Setting] = []
    for m_index, method in enumerate(spec.base_configs):
        space = {**spec.space, **spec.method_space.get(method, {})}
        if spec.kind == "grid":
            keys = list(space)
            combos = [dict(zip(keys, vals)) for vals in itertools.product(*(space[k] for k in keys))]
        else:
            rng = np.random.default_rng([spec.search_seed, m_index])
            combos = [{k: _draw(rng, v) for k, v in space.items()} for _ in range(spec.num_samples)]
        seen = set()
        for params in combos:
            sid = setting_id(method, params)
            if sid not in seen:
                seen.add(sid)
                out.append(Setting(sid, method, params))
    return out


def expand_trials(spec: SweepSpec) -> list[Trial]:
    """Settings x seed groups of ``seeds_per_trial``; trial id = ``{setting_id}-s{first seed}``."""
    trials = []
    for setting in expand_settings(spec):
        for i in range(0, len(spec.seeds), spec.seeds_per_trial):
            group = tuple(spec.seeds[i:i + spec.seeds_per_trial])
            trials.append(Trial(f"{setting.setting_id}-s{group[0]}", setting, group))
    return trials


def trial_overrides(spec: SweepSpec, setting: Setting) -> list[str]:
    """``--set`` strings for one setting: sweep ``set``, then ``method_set``, then the swept values."""
    merged = {**spec.overrides, **spec.method_overrides.get(setting.method, {}), **setting.params}
    return [f"{k}={json.dumps(v)}" for k, v in merged.items()]
