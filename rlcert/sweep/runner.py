"""Run a sweep's trials (Ray Tune, or one after another in this process) and gather every evaluation point.

A trial trains its seeds as one fleet (:func:`rlcert.fleet.train_fleet`) when the fleet supports its config, else
one after another with :func:`rlcert.train.train`; either way one ordinary run folder per seed:
``{sweep_dir}/trials/{setting_id}/seed{seed}/`` (``eval.csv``, checkpoints, ``model.zip``), so
``rlcert plot-curves {sweep_dir}/trials/{setting_id}`` works on it. A seed whose ``eval.csv`` already reaches
``total_timesteps`` and has ``model.zip`` is never rerun; any other seed resumes from its latest checkpoint.
A run folder made with another config (other than the budget) is refused before anything is written
(:func:`rlcert.train.check_run_config`); files are written through :mod:`rlcert.runs`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from rlcert import runs
from rlcert.agents.callbacks import CSV_FIELDS
from rlcert.fleet.config import unsupported_reason
from rlcert.fleet.run import train_fleet
from rlcert.ray_connect import init_ray
from rlcert.sweep.spec import SweepSpec, Trial, expand_trials, trial_overrides
from rlcert.train import check_run_config, train
from rlcert.training import load_config, run_dir_of

RAY_HINT = ("rlcert sweep needs Ray Tune: pip install 'rlcert[sweep]' (or pip install 'ray[tune]==2.60.0'); "
            "--sequential runs the same trials one after another without Ray")


def trial_payload(spec: SweepSpec, trial: Trial, threads: int = 1) -> dict[str, Any]:
    """Everything a worker needs to run one trial, as plain JSON-able data (it travels to Ray workers)."""
    s = trial.setting
    return {"trial_id": trial.trial_id, "setting_id": s.setting_id, "method": s.method, "params": s.params,
            "seeds": list(trial.seeds), "base_config": str(spec.base_configs[s.method]),
            "overrides": trial_overrides(spec, s), "trials_dir": str(spec.sweep_dir / "trials"), "threads": threads}


def seed_config(payload: dict[str, Any], seed: int) -> dict:
    """The resolved ``rlcert train`` config of one seed of a trial (validated by
    :func:`rlcert.training.load_config`)."""
    config = load_config(payload["base_config"], payload["overrides"], seed=seed, log_dir=payload["trials_dir"])
    config["name"] = payload["setting_id"]
    config["torch_threads"] = payload["threads"]
    return config


def last_step(run_dir: Path) -> int:
    """Largest ``timesteps`` in ``run_dir/eval.csv`` (-1 when there is none)."""
    table = runs.Rows(Path(run_dir) / "eval.csv", CSV_FIELDS, readonly=True)  # a Ray worker may be writing it
    return max((int(t) for t in table.column("timesteps")), default=-1)


def seed_done(config: dict) -> bool:
    """True when the seed's run folder holds ``model.zip`` and an evaluation at ``total_timesteps`` or later."""
    run_dir = run_dir_of(config)
    return (run_dir / "model.zip").exists() and last_step(run_dir) >= config["total_timesteps"]


def check_same_config(config: dict) -> None:
    """Refuse to reuse a run folder made with a different config (other than the budget): one-line ValueError."""
    check_run_config(config)


def run_trial(payload: dict[str, Any], progress: bool = False) -> dict[str, Any]:
    """Train (or finish) every seed of one trial; returns {"trial_id", "trained": [...], "skipped": [...]}.

    The unfinished seeds train together as one fleet when the fleet supports the config, else one after another,
    in this process with ``payload["threads"]`` torch threads.
    """
    torch.set_num_threads(int(payload["threads"]))
    pending, skipped = [], []
    for seed in payload["seeds"]:
        config = seed_config(payload, seed)
        check_same_config(config)
        (skipped if seed_done(config) else pending).append((seed, config))
    if pending and unsupported_reason(pending[0][1]) is None:
        train_fleet(pending[0][1], [s for s, _ in pending], resume=True, progress=progress)
    else:
        for _, config in pending:
            train(config, resume=True, progress=progress)
    trained, skipped = [s for s, _ in pending], [s for s, _ in skipped]
    return {"trial_id": payload["trial_id"], "trained": trained, "skipped": skipped}


def write_manifest(spec: SweepSpec, trials: list[Trial]) -> Path:
    """``{sweep_dir}/sweep.json``: the settings, trials, swept keys and metric (what ``sweep-report`` reads)."""
    settings = {}
    for t in trials:
        s = t.setting
        settings.setdefault(s.setting_id, {"method": s.method, "params": s.params, "seeds": []})
        settings[s.setting_id]["seeds"] += list(t.seeds)
    manifest = {"name": spec.name, "kind": spec.kind, "swept_keys": spec.swept_keys, "method_keys": spec.method_keys,
                "metric": spec.metric, "methods": {m: str(p) for m, p in spec.base_configs.items()},
                "settings": settings, "trials": [t.trial_id for t in trials]}
    path = spec.sweep_dir / "sweep.json"
    runs.write_json_atomic(path, manifest)
    runs.write_text_atomic(spec.sweep_dir / "sweep.yaml", yaml.safe_dump(spec.source, sort_keys=False))
    return path


RESULT_FIELDS = CSV_FIELDS  # the eval.csv columns


def collect_results(sweep_dir: Path) -> Path:
    """Write ``{sweep_dir}/results.csv``: one row per evaluation point of every seed of every setting.

    Columns: setting, method, one per swept key, seed, step, then the eval.csv columns.
    """
    sweep_dir = Path(sweep_dir)
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    keys = manifest["swept_keys"]
    fields = ["setting", "method", *keys, "seed", "step", *RESULT_FIELDS[1:]]
    out = sweep_dir / "results.csv"
    with runs.atomic_path(out) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for sid, info in manifest["settings"].items():
            for seed in info["seeds"]:
                path = sweep_dir / "trials" / sid / f"seed{seed}" / "eval.csv"
                if not path.exists():
                    continue
                with open(path) as g:
                    for r in csv.DictReader(g):
                        row = {"setting": sid, "method": info["method"], "seed": seed, "step": int(r["timesteps"])}
                        row.update({k: info["params"].get(k, "") for k in keys})
                        row.update({k: r[k] for k in RESULT_FIELDS[1:]})
                        writer.writerow(row)
    return out


def _run_ray(spec: SweepSpec, payloads: list[dict], address: str | None, num_cpus: int | None,
             progress: bool) -> list[str]:
    """Run the payloads as Ray Tune trials; returns one line per failed trial."""
    import ray
    from ray import tune

    repo_root = str(Path(__file__).resolve().parents[2])
    env_vars = {"PYTHONPATH": os.pathsep.join(p for p in (repo_root, os.environ.get("PYTHONPATH")) if p),
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAY_CHDIR_TO_TRIAL_DIR": "0"}
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    for name in ("ray.tune", "ray.train"):  # Tune's own resume hints (Tuner.restore) do not apply: rerun instead
        logging.getLogger(name).setLevel(logging.ERROR)
    init_ray(address, num_cpus, env_vars)  # joining a cluster that refuses us: one-line ValueError
    try:
        callbacks = [_TqdmTrials(len(payloads))] if progress else []
        tuner = tune.Tuner(
            tune.with_resources(_tune_trainable, spec.resources),
            param_space={"trial": tune.grid_search(payloads)},
            tune_config=tune.TuneConfig(reuse_actors=False, trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(storage_path=str(spec.sweep_dir / "ray"), name=f"tune-{int(time.time())}",
                                      verbose=0, callbacks=callbacks,
                                      failure_config=tune.FailureConfig(max_failures=0)))
        results = tuner.fit()
        return [f"trial {r.config['trial']['trial_id']} failed: {str(r.error).strip().splitlines()[-1]}"
                for r in results if r.error is not None]
    finally:
        ray.shutdown()


def _trial_name(trial) -> str:
    return trial.config["trial"]["trial_id"]


def _tune_trainable(config: dict) -> None:
    from ray import tune

    out = run_trial(config["trial"])
    tune.report({"trained": len(out["trained"]), "skipped": len(out["skipped"])})


class _TqdmTrials:
    """A Ray Tune callback showing finished trials as a tqdm bar (built lazily so importing needs no Ray)."""

    def __new__(cls, total: int):
        from ray.tune import Callback
        from tqdm import tqdm

        class _Bar(Callback):
            def __init__(self) -> None:
                self.bar = tqdm(total=total, unit="trial", desc="sweep", dynamic_ncols=True)

            def on_trial_complete(self, iteration, trials, trial, **info) -> None:
                self.bar.update(1)

            def on_trial_error(self, iteration, trials, trial, **info) -> None:
                self.bar.update(1)

            def on_experiment_end(self, trials, **info) -> None:
                self.bar.close()

        return _Bar()


def run_sweep(spec: SweepSpec, address: str | None = None, num_cpus: int | None = None, sequential: bool = False,
              progress: bool = True) -> tuple[Path, list[str]]:
    """Validate every trial's config, then run the unfinished trials; returns (results.csv, failure lines).

    Raises ``ValueError`` (one line) on a bad config before anything is written, ``ImportError`` with
    :data:`RAY_HINT` when Ray is needed but missing.
    """
    trials = expand_trials(spec)
    payloads = [trial_payload(spec, t) for t in trials]
    for p in payloads:  # every seed's config is validated, and compared with its existing run, before any write
        for seed in p["seeds"]:
            check_same_config(seed_config(p, seed))
    pending = [p for p in payloads if not all(seed_done(seed_config(p, s)) for s in p["seeds"])]
    if pending and not sequential:
        try:
            import ray  # noqa: F401
            from ray import tune  # noqa: F401
        except ImportError as exc:
            raise ImportError(RAY_HINT) from exc
    write_manifest(spec, trials)
    print(f"sweep {spec.name}: {len(trials)} trials ({len(trials) - len(pending)} already finished) -> "
          f"{spec.sweep_dir}", flush=True)
    failures: list[str] = []
    if pending and sequential:
        for p in tqdm(pending, unit="trial", desc="sweep", disable=not progress, dynamic_ncols=True):
            run_trial(p)
    elif pending:
        failures = _run_ray(spec, pending, address, num_cpus, progress)
        unfinished = [p for p in pending if not all(seed_done(seed_config(p, s)) for s in p["seeds"])]
        if unfinished and not failures:  # Ray Tune ended early without an error: it was interrupted (Ctrl-C)
            collect_results(spec.sweep_dir)
            raise KeyboardInterrupt
    return collect_results(spec.sweep_dir), failures
