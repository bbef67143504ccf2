"""``rlcert train --config X.yaml --seeds 0-19`` on the fleet: the same files as ``rlcert train`` per member.

Writes ``{log_dir}/{name}/seed{s}/`` for every seed s: ``eval.csv`` (rows flushed as they are evaluated, the
columns of :data:`rlcert.agents.callbacks.CSV_FIELDS`), ``config.yaml`` (resolved, with the seed) and, at the
end, ``model.zip`` (loadable by the config's agent class; see :mod:`rlcert.fleet.export`). The whole fleet's
state (networks, optimisers, replay, env, random generators) is checkpointed atomically to
``{log_dir}/{name}/fleet_seeds{first}-{last}.pt`` after every evaluation, and on Ctrl-C at the current step;
``resume=True`` continues from it (evaluation rows written after the checkpoint are dropped and re-evaluated;
``wall_time_s`` accumulates), and the result is the same as an uninterrupted run. A resume with a config that
differs from the members' ``config.yaml`` (other than the budget) is refused in one line. Files are written
through :mod:`rlcert.runs`.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch as th
from tqdm import tqdm

from rlcert import runs
from rlcert.agents.callbacks import CSV_FIELDS
from rlcert.agents.core import GradientMatching
from rlcert.fleet.config import read_config
from rlcert.fleet.export import export_member
from rlcert.fleet.trainer import Fleet
from rlcert.train import check_run_config
from rlcert.training import build_algo_kwargs, import_object, make_env, resolve_algo


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
    members = [{**copy.deepcopy(config), "seed": s,
                "notes": f"trained by rlcert.fleet with seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} members)"}
               for s in seeds]
    fleet = Fleet(settings, schedule, seeds, env_cls, config.get("env_kwargs") or {}, family)
    resumed = resume and ckpt.exists()
    if resume:
        for m in members:  # compared before anything is written
            check_run_config(m)
    if resumed:
        fleet.load_state_dict(th.load(ckpt, weights_only=False))
        print(f"resuming {len(seeds)} members from step {fleet.num_timesteps}")
    elif resume:  # no checkpoint yet (e.g. killed before the first one): start again; that attempt's rows go below
        print(f"no fleet checkpoint at {ckpt} yet: starting the {len(seeds)} members from scratch")
    else:
        taken = [d for d in run_dirs if d.exists() and any(d.iterdir())] + ([ckpt] if ckpt.exists() else [])
        if taken:
            raise ValueError(f"{taken[0]} already holds a run; pass --resume to continue it, or choose another "
                             "--log-dir, --seeds or name (nothing was overwritten)")
    for d, m in zip(run_dirs, members, strict=True):  # the settings go first
        d.mkdir(parents=True, exist_ok=True)
        check_run_config(m, write=True)
    tables = [runs.Rows(d / "eval.csv", CSV_FIELDS) for d in run_dirs]
    for t in tables:  # rows after the checkpoint are re-evaluated (all of them when there is no checkpoint)
        t.keep(lambda r: resumed and int(r["timesteps"]) <= fleet.num_timesteps)
    state = ckpt.with_suffix(".json")  # {num_timesteps, wall_time_s} of the checkpoint
    wall = float(tables[0].rows[-1]["wall_time_s"]) if resumed and len(tables[0]) else 0.0
    if resumed and state.exists() and runs.read_json(state).get("num_timesteps") == fleet.num_timesteps:
        wall = float(runs.read_json(state)["wall_time_s"])
    t0 = time.perf_counter() - wall

    def save(f: Fleet) -> None:
        if config.get("checkpoint", True):
            with runs.atomic_path(ckpt) as tmp:
                th.save(f.state_dict(), tmp)
            runs.write_json_atomic(state, {"num_timesteps": f.num_timesteps,
                                           "wall_time_s": round(time.perf_counter() - t0, 2)})

    last_eval = [int(tables[0].rows[-1]["timesteps"]) if resumed and len(tables[0]) else -1]

    def evaluate_and_save(f: Fleet) -> None:
        stats = f.evaluate(episodes)
        hits = {"ever": stats["successes_ever"], "final": stats["successes_final"]}.get(metric)
        last_eval[0] = f.num_timesteps
        for k, t in enumerate(tables):
            rate = float("nan") if hits is None else int(hits[k]) / episodes  # an exact fraction of the episodes
            t.append({"timesteps": f.num_timesteps, "success_rate": rate,
                      "mean_return": float(stats["mean_return"][k]), "std_return": float(stats["std_return"][k]),
                      "episodes": episodes, "metric": metric, "wall_time_s": round(time.perf_counter() - t0, 2)})
        save(f)

    total = int(config["total_timesteps"])
    bar = tqdm(total=total, initial=fleet.num_timesteps, unit="step", disable=not progress, mininterval=2.0,
               dynamic_ncols=True)
    with runs.deferred_interrupt() as stop:
        def callback(f: Fleet) -> None:
            bar.update(1)
            if f.num_timesteps % freq == 0:
                evaluate_and_save(f)
            # Ctrl-C: checkpoint this step (the same point as the evaluation checkpoints), then stop
            stop.check(lambda: save(f))

        try:
            if not resumed:  # (a checkpoint at step 0 is written after that step's evaluation)
                evaluate_and_save(fleet)
            fleet.learn(total, callback)
            if last_eval[0] != fleet.num_timesteps:  # the final step is always evaluated
                evaluate_and_save(fleet)
        finally:
            bar.close()
    if export:
        export_all(fleet, config, run_dirs)
    return run_dirs


def export_all(fleet: Fleet, config: dict, run_dirs: list[Path]) -> None:
    """Write ``model.zip`` (the config's agent class and policy) for every member."""
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
