"""``rlcert train --config X.yaml --seeds 0-19`` on the fleet: the same files as ``rlcert train`` per member.

Writes ``{log_dir}/{name}/seed{s}/`` for every seed s: ``eval.csv`` (rows flushed as they are evaluated, the
columns of :data:`rlcert.agents.callbacks.CSV_FIELDS`), ``config.yaml`` (resolved, with the seed) and, at the
end, ``model.zip`` (loadable by the config's agent class; see :mod:`rlcert.fleet.export`). The whole fleet's
state (networks, optimisers, replay, env, random generators) is checkpointed atomically to
``{log_dir}/{name}/fleet_seeds{first}-{last}.pt`` after every evaluation; ``resume=True`` continues from it
(evaluation rows written after the checkpoint are dropped and re-evaluated), and the result is the same as an
uninterrupted run. Ctrl-C ends with one line.
"""

from __future__ import annotations

import copy
import csv
import os
import time
from pathlib import Path

import torch as th
import yaml
from tqdm import tqdm

from rlcert.fleet.config import read_config
from rlcert.fleet.trainer import Fleet

CSV_FIELDS = ["timesteps", "success_rate", "mean_return", "std_return", "episodes", "metric", "wall_time_s"]


def parse_seeds(text: str) -> list[int]:
    """'0-19' -> [0..19]; '0,3,5-7' -> [0, 3, 5, 6, 7]. Seeds must be distinct non-negative integers."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ValueError(f"--seeds must look like '0-19' or '0,3,5-7', got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must name distinct non-negative integers, got {text!r}")
    return seeds


def checkpoint_path(config: dict, seeds: list[int]) -> Path:
    return Path(config["log_dir"]) / config["name"] / f"fleet_seeds{seeds[0]}-{seeds[-1]}_n{len(seeds)}.pt"


def _truncate_csv(path: Path, max_step: int) -> None:
    if not path.exists():
        return
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if int(r["timesteps"]) <= max_step]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def _append_row(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def train_fleet(config: dict, seeds: list[int], resume: bool = False, progress: bool = True,
                member_overrides: list[dict] | None = None, export: bool = True) -> list[Path]:
    """Train one member per seed together; returns the members' run directories (see the module docstring)."""
    if config.get("torch_threads"):
        th.set_num_threads(int(config["torch_threads"]))
    settings, schedule, family, env_cls = read_config(config, len(seeds), member_overrides)
    ev = config["eval"]
    freq, episodes, metric = int(ev["freq"]), int(ev["episodes"]), ev["metric"]
    if freq <= 0 or episodes <= 0 or metric not in ("ever", "final", "return"):
        raise ValueError(f"eval needs freq > 0, episodes > 0, metric in ever|final|return; got {ev}")
    run_dirs = [Path(config["log_dir"]) / config["name"] / f"seed{s}" for s in seeds]
    ckpt = checkpoint_path(config, seeds)
    fleet = Fleet(settings, schedule, seeds, env_cls, config.get("env_kwargs") or {}, family)
    if resume and not ckpt.exists():
        print(f"no fleet checkpoint at {ckpt} yet: starting the {len(seeds)} members from scratch")
        for d in run_dirs:
            (d / "eval.csv").unlink(missing_ok=True)  # rows of an attempt that never reached a checkpoint
    resumed = resume and ckpt.exists()
    if resumed:
        fleet.load_state_dict(th.load(ckpt, weights_only=False))
        for d in run_dirs:
            _truncate_csv(d / "eval.csv", fleet.num_timesteps)
        print(f"resuming {len(seeds)} members from step {fleet.num_timesteps}")
    else:
        taken = [d for d in run_dirs if d.exists() and any(d.iterdir())] + ([ckpt] if ckpt.exists() else [])
        if taken:
            raise ValueError(f"{taken[0]} already holds a run; pass --resume to continue it, or choose another "
                             "--log-dir, --seeds or name (nothing was overwritten)")
    for d, s in zip(run_dirs, seeds, strict=True):
        d.mkdir(parents=True, exist_ok=True)
        member = {**copy.deepcopy(config), "seed": s,
                  "notes": f"trained by rlcert.fleet with seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} members)"}
        (d / "config.yaml").write_text(yaml.safe_dump(member, sort_keys=False))
    t0 = time.perf_counter()

    last_eval = [fleet.num_timesteps if resumed else -1]  # a checkpoint follows an evaluation

    def evaluate_and_save(f: Fleet) -> None:
        stats = f.evaluate(episodes)
        hits = {"ever": stats["successes_ever"], "final": stats["successes_final"]}.get(metric)
        last_eval[0] = f.num_timesteps
        for k, d in enumerate(run_dirs):
            rate = float("nan") if hits is None else int(hits[k]) / episodes  # an exact fraction of the episodes
            _append_row(d / "eval.csv", {"timesteps": f.num_timesteps, "success_rate": rate,
                                         "mean_return": float(stats["mean_return"][k]),
                                         "std_return": float(stats["std_return"][k]), "episodes": episodes,
                                         "metric": metric, "wall_time_s": round(time.perf_counter() - t0, 2)})
        if config.get("checkpoint", True):
            tmp = ckpt.with_suffix(".tmp")
            th.save(f.state_dict(), tmp)
            os.replace(tmp, ckpt)

    total = int(config["total_timesteps"])
    bar = tqdm(total=total, initial=fleet.num_timesteps, unit="step", disable=not progress, mininterval=2.0,
               dynamic_ncols=True)

    def callback(f: Fleet) -> None:
        bar.update(1)
        if f.num_timesteps % freq == 0:
            evaluate_and_save(f)

    try:
        if fleet.num_timesteps == 0 and not (run_dirs[0] / "eval.csv").exists():
            evaluate_and_save(fleet)
        fleet.learn(total, callback)
        if last_eval[0] != fleet.num_timesteps:  # the final step is always evaluated
            evaluate_and_save(fleet)
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted at step {fleet.num_timesteps}; evaluations so far are kept, continue with --resume")
        raise SystemExit(130) from None
    bar.close()
    if export:
        export_all(fleet, config, run_dirs)
    return run_dirs


def export_all(fleet: Fleet, config: dict, run_dirs: list[Path]) -> None:
    """Write ``model.zip`` (the config's agent class and policy) for every member."""
    from rlcert.agents.core import GradientMatching
    from rlcert.fleet.export import export_member
    from rlcert.train import build_algo_kwargs, import_object, make_env, resolve_algo

    algo_cls = resolve_algo(config["algo"])
    policy = config.get("policy", "MultiInputPolicy")
    policy = import_object(policy) if ":" in policy else policy
    env = make_env(config["env"], config.get("env_kwargs") or {})
    base = build_algo_kwargs(config, env.action_space)
    for k, d in enumerate(run_dirs):
        kw = dict(base)
        kw["learning_rate"] = fleet.agent.cfg.learning_rate[k]
        kw["gamma"], kw["tau"] = fleet.agent.cfg.gamma[k], fleet.agent.cfg.tau[k]
        if issubclass(algo_cls, GradientMatching):  # ReenGAGE*, Multi-ReenGAGE*: the member's alpha
            kw["alpha"] = fleet.agent.cfg.alpha[k]
            kw["goal_reduction"] = fleet.agent.cfg.goal_reduction
        export_member(fleet.agent, k, algo_cls, env, d / "model.zip", kw, policy)
