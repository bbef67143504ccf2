"""Run one experiment of :data:`~rlcert.reproduce.experiments.EXPERIMENTS` and write its results page.

Layout: ``{log_dir}/{experiment}/{method}/seed{s}/`` (what ``rlcert train --seeds`` writes: ``eval.csv``,
``config.yaml``, ``model.zip``, the fleet checkpoint one level up), ``{log_dir}/{experiment}/reproduce.json``
(settings: experiment and precision, compared on resume; CPU seconds spent per method) and, once every run is
done, the page ``{results_dir}/{experiment}.md`` with its figure ``{experiment}.png`` (``results_dir`` defaults
to ``{log_dir}/{experiment}``).

Resuming: a seed is done when its ``eval.csv`` reached the requested steps and (trained methods) its
``model.zip`` exists; done seeds are never retrained. The others continue from their latest checkpoint (the fleet
checkpoints after every evaluation and on Ctrl-C, so a killed run loses at most the steps since its last
evaluation). Each method
trains through the fleet (:func:`rlcert.fleet.run.train_fleet`) when the fleet supports its config, else seed by
seed through :func:`rlcert.train.train` -- the command decides, not the fleet. Keep ``--seeds`` between
invocations of an unfinished method: the fleet checkpoint belongs to that set of seeds.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import numpy as np

from rlcert import runs
from rlcert.agents.callbacks import CSV_FIELDS
from rlcert.envs.reference import REFERENCE_POLICIES
from rlcert.fleet.config import unsupported_reason
from rlcert.fleet.run import train_fleet
from rlcert.reproduce.experiments import CONFIGS, Experiment, Method, Plan
from rlcert.reproduce.page import last_step, write_page
from rlcert.train import train
from rlcert.training import load_config, make_env

PRECISIONS = ("fp32", "bf16")
STATE = "reproduce.json"  # {"settings": {experiment, precision}, "cpu_s": {method: CPU seconds spent}}
LOCK = ".reproduce.lock"  # held while STATE is read and rewritten (invocations with other --methods may run at once)


def settings_of(exp: Experiment, precision: str) -> dict:
    """What an experiment folder's runs must share (seeds and steps may grow between invocations)."""
    return {"experiment": exp.name, "precision": precision}


def method_config(exp: Experiment, m: Method, seeds: list[int], steps: int, precision: str, exp_dir: Path,
                  threads: int | None = None) -> dict:
    """The method's resolved config: its file of configs/ + its ``set`` + name, steps, precision, log folder and
    torch threads (``threads``, else the config's, else 1)."""
    overrides = [*m.set, f"name={m.key}", f"total_timesteps={steps}", f"precision={precision}"]
    config = load_config(CONFIGS / m.config, overrides, seeds[0], str(exp_dir))
    config["torch_threads"] = threads or config.get("torch_threads") or 1
    return config


def plan(exp: Experiment, seeds: list[int], steps: int, precision: str, log_dir: str | Path,
         results_dir: str | Path | None, resume: bool, command: str = "", threads: int | None = None,
         methods: list[str] | None = None) -> Plan:
    """Validate everything (one-line ``ValueError``s) and resolve each method's config; writes nothing.
    ``methods``: train only these method keys (e.g. two processes, one per core, each with its own methods)."""
    keys = [m.key for m in exp.methods]
    for k in methods or []:
        if k not in keys:
            raise ValueError(f"--methods: unknown method {k!r} of {exp.name}; choose from {', '.join(keys)}")
    if methods is not None and (not methods or len(set(methods)) != len(methods)):
        raise ValueError(f"--methods must name distinct methods of {exp.name} ({', '.join(keys)}), got "
                         f"{','.join(methods)!r}")
    if steps < 1:
        raise ValueError(f"--steps must be an integer >= 1, got {steps}")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be an integer >= 1, got {threads}")
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    exp_dir = Path(log_dir) / exp.name
    configs, fleet = {}, {}
    for m in exp.methods:
        config = method_config(exp, m, seeds, steps, precision, exp_dir, threads)
        if m.reference:
            if config["env"] not in REFERENCE_POLICIES:
                raise ValueError(f"method {m.key}: no reference policy for env {config['env']!r}")
            fleet[m.key] = "a hand-written policy (evaluated, not trained)"
        else:
            fleet[m.key] = unsupported_reason(config)
            if fleet[m.key] is not None and precision != "fp32":
                raise ValueError(f"--precision {precision}: method {m.key} trains seed by seed (the fleet does not "
                                 f"support {fleet[m.key]}), which runs in fp32 only; use --precision fp32")
        if config["env"].startswith("Hand"):
            make_env(config["env"], config.get("env_kwargs") or {}).close()  # gymnasium-robotics present?
        configs[m.key] = config
    taken = exp_dir.exists() and any(p.name not in (STATE, LOCK) for p in exp_dir.iterdir())
    if taken and not resume:
        raise ValueError(f"{exp_dir} already holds runs; pass --resume to continue them (finished runs are kept), "
                         "or choose another --log-dir (nothing was overwritten)")
    runs.compare_settings(exp_dir / STATE, settings_of(exp, precision), key="settings", what=str(exp_dir),
                          have_results=taken)
    return Plan(exp, seeds, steps, precision, exp_dir, Path(results_dir) if results_dir else exp_dir, configs,
                fleet, command, tuple(methods or ()))


def seed_done(run_dir: Path, steps: int, reference: bool = False) -> bool:
    """Reached ``steps`` (and, if trained, exported its model)."""
    return last_step(run_dir) >= steps and (reference or (run_dir / "model.zip").exists())


def evaluate_reference(config: dict, seed: int, steps: int, run_dir: Path) -> None:
    """The env's hand-written reference policy, ``eval.episodes`` episodes; the same rows at step 0 and ``steps``
    (a flat line on the figure). Seeded by ``10000 + seed`` like the agents' evaluation."""
    env = make_env(config["env"], config.get("env_kwargs") or {})
    policy = REFERENCE_POLICIES[config["env"]]
    episodes, metric = int(config["eval"]["episodes"]), config["eval"]["metric"]
    returns, ever, final = [], 0, 0
    for ep in range(episodes):
        obs, _ = env.reset(seed=10_000 + seed if ep == 0 else None)
        total, hit, done, info = 0.0, False, False, {}
        while not done:
            obs, r, term, trunc, info = env.step(policy(obs))
            total += float(r)
            hit = hit or bool(info.get("is_success", False))
            done = term or trunc
        returns.append(total)
        ever += hit
        final += bool(info.get("is_success", False))
    env.close()
    rate = {"ever": ever / episodes, "final": final / episodes}.get(metric, float("nan"))
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=CSV_FIELDS)
    w.writeheader()
    for t in (0, steps):
        w.writerow({"timesteps": t, "success_rate": rate, "mean_return": float(np.mean(returns)),
                    "std_return": float(np.std(returns)), "episodes": episodes, "metric": metric, "wall_time_s": 0.0})
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.write_text_atomic(run_dir / "eval.csv", text.getvalue())


def train_method(p: Plan, m: Method, resume: bool, progress: bool) -> str:
    """Train (or evaluate) the method's unfinished seeds; returns what was done, in one line."""
    config = p.configs[m.key]
    method_dir = p.exp_dir / m.key
    todo = [s for s in p.seeds if not seed_done(method_dir / f"seed{s}", p.steps, m.reference)]
    if not todo:
        return f"{m.key}: all {len(p.seeds)} seeds done at {p.steps} steps (kept)"
    if m.reference:
        for s in todo:
            evaluate_reference(config, s, p.steps, method_dir / f"seed{s}")
        return f"{m.key}: evaluated the reference policy for seeds {todo}"
    if p.fleet[m.key] is None:
        print(f"{m.key}: training seeds {todo} together (fleet of {len(todo)})", flush=True)
        train_fleet(config, todo, resume=resume, progress=progress)
        return f"{m.key}: trained seeds {todo} as one fleet"
    print(f"{m.key}: the fleet does not support {p.fleet[m.key]}; training seeds {todo} one after another",
          flush=True)
    for s in todo:
        train({**config, "seed": s}, resume=resume or (method_dir / f"seed{s}").exists(), progress=progress)
    return f"{m.key}: trained seeds {todo} one after another"


def unfinished(p: Plan) -> list[str]:
    """The methods with a seed that has not reached ``p.steps``."""
    return [m.key for m in p.exp.methods
            if not all(seed_done(p.exp_dir / m.key / f"seed{s}", p.steps, m.reference) for s in p.seeds)]


def page_from_runs(p: Plan) -> Path:
    """Write the results page from the runs' ``eval.csv`` files alone (no training; exported models not needed:
    e.g. the CSVs of a finished experiment copied next to the page); ValueError if a run is short of ``p.steps``."""
    short = [f"{m.key}/seed{s}" for m in p.exp.methods for s in p.seeds
             if last_step(p.exp_dir / m.key / f"seed{s}") < p.steps]
    if short:
        raise ValueError(f"--page-only: {len(short)} runs under {p.exp_dir} have not reached --steps {p.steps} "
                         f"(first: {short[0]}); train them first (without --page-only)")
    state = runs.read_json(p.exp_dir / STATE) if (p.exp_dir / STATE).exists() else {}
    return write_page(p, state.get("cpu_s", {}))


def run_experiment(p: Plan, resume: bool = False, progress: bool = True) -> Path | None:
    """Train the plan's methods (every method unless ``p.only``; resuming), then write the results page once every
    method is done; returns the page's path, or None while another method (another invocation's) is unfinished.
    Invocations with disjoint ``--methods`` may run at once on one folder."""
    path = p.exp_dir / STATE
    p.exp_dir.mkdir(parents=True, exist_ok=True)
    lock = p.exp_dir / LOCK
    with runs.file_lock(lock):
        runs.ensure_settings(path, settings_of(p.exp, p.precision), key="settings", what=str(p.exp_dir))
    for m in p.exp.methods:
        if p.only and m.key not in p.only:
            continue
        t0 = time.process_time()
        try:
            print(train_method(p, m, resume, progress), flush=True)
        finally:
            with runs.file_lock(lock):
                state = runs.read_json(path)
                cpu = state.setdefault("cpu_s", {})
                cpu[m.key] = cpu.get(m.key, 0.0) + time.process_time() - t0
                runs.write_json_atomic(path, state)
    waiting = unfinished(p)
    if waiting:
        print(f"results page not written yet: {', '.join(waiting)} not done at {p.steps} steps "
              f"(run them with --methods {','.join(waiting)} --resume; the last one to finish writes the page)",
              flush=True)
        return None
    return write_page(p, runs.read_json(path).get("cpu_s", {}))


__all__ = ["PRECISIONS", "Plan", "page_from_runs", "plan", "run_experiment", "seed_done", "unfinished"]
