"""Single-goal ReenGAGE evidence (thesis Fig. 8.2, Fig. G.1, Fig. 8.3) on a CPU budget: a job queue over
``rlcert train`` runs, then curves (mean +- std over seeds) and tables of success at fixed steps.

Suites (each writes only under ``<out>/<suite>/<run name>/seed<k>/``, ``<out>`` = ``runs/single_goal``):

* ``continuous_seek``: d = 5, 10, 20, DDPG+HER vs ReenGAGE (alpha 0.2; 0.1 as an extra, lower priority), Table
  G.1 settings with Table G.2's best batch / lr per agent and d;
* ``bit_flipping``: n = 40 (and 20), DQN+HER vs ReenGAGE-DQN with the "gradient loss only" soft target,
  alpha in {0.5, 1.0} x softmax tau in {0.5, 1.0} (+ tau = 0, the hard target);
* ``hand_reach``: HandReach-v3, DDPG+HER vs ReenGAGE (alpha 0.2), success at the final step.

Every ReenGAGE run passes ``goal_reduction=mean`` (alpha multiplies the mean over goal coordinates of the squared
gradient error: the published convention, the agents' default after the agents-v2 change). Jobs are ordered
seed-major (every run of seed 0 first, then seed 1, ...), so stopping early still leaves the broadest picture.
A run whose ``eval.csv`` reached its step budget (and has ``model.zip``) is skipped; an unfinished one resumes
from its checkpoint (``rlcert train --resume``). Ctrl-C stops the workers and keeps every finished evaluation.

    python scripts/single_goal_experiment.py --suite continuous_seek bit_flipping --jobs 2
    python scripts/single_goal_experiment.py --suite continuous_seek --report-only   # curves + tables only
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MEAN = ("algo_kwargs.goal_reduction=mean",)
NO_CKPT = ("checkpoint=false",)  # Bit-Flipping runs take minutes but their replay buffer is ~200 MB: no checkpoints


@dataclass(frozen=True)
class Run:
    """One curve: a config plus overrides, trained for ``steps`` env steps per seed."""

    suite: str
    panel: str          # runs sharing a panel are drawn in one subplot and one table
    name: str           # run folder name (also the --set name=...)
    label: str          # legend label
    config: str
    steps: int
    eval_freq: int
    overrides: tuple[str, ...] = ()
    priority: int = 0   # lower runs first within a seed
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    table_steps: tuple[int, ...] = field(default=())


def continuous_seek_runs() -> list[Run]:
    runs = []
    budget = {5: (4000, 1000, (1000, 2000, 3000, 4000)), 10: (8000, 1000, (2000, 4000, 6000, 8000)),
              20: (20000, 2000, (10000, 15000, 20000))}
    for d, (steps, freq, table) in budget.items():
        panel = f"d={d}"
        runs.append(Run("continuous_seek", panel, f"cs_d{d}_ddpg_her", "DDPG+HER",
                        f"configs/continuous_seek_d{d}_ddpg_her.yaml", steps, freq, (), 0, table_steps=table))
        runs.append(Run("continuous_seek", panel, f"cs_d{d}_reengage_a0.2", "ReenGAGE alpha=0.2",
                        f"configs/continuous_seek_d{d}_reengage.yaml", steps, freq,
                        ("algo_kwargs.alpha=0.2", *MEAN), 0, table_steps=table))
        runs.append(Run("continuous_seek", panel, f"cs_d{d}_reengage_a0.1", "ReenGAGE alpha=0.1",
                        f"configs/continuous_seek_d{d}_reengage.yaml", steps, freq,
                        ("algo_kwargs.alpha=0.1", *MEAN), 2, seeds=(0, 1, 2), table_steps=table))
    return runs


def bit_flipping_runs() -> list[Run]:
    runs = []
    for n, steps, freq, table in ((40, 200000, 8000, (40000, 80000, 120000, 160000, 200000)),
                                  (20, 60000, 4000, (20000, 32000, 40000, 48000, 60000))):
        panel = f"n={n}"
        runs.append(Run("bit_flipping", panel, f"bf_n{n}_dqn_her", "DQN+HER",
                        f"configs/bit_flipping_n{n}_dqn_her.yaml", steps, freq, NO_CKPT, 0, table_steps=table))
        grid = [(1.0, 0.5, 0), (0.5, 0.5, 0), (1.0, 1.0, 1), (0.5, 1.0, 1), (1.0, 0.0, 2)] if n == 40 else \
            [(1.0, 0.5, 0), (0.5, 0.5, 1)]
        for alpha, tau, prio in grid:
            label = f"ReenGAGE alpha={alpha:g}, tau={tau:g}" + (" (hard target)" if tau == 0 else "")
            runs.append(Run("bit_flipping", panel, f"bf_n{n}_reengage_a{alpha:g}_t{tau:g}", label,
                            f"configs/bit_flipping_n{n}_reengage.yaml", steps, freq,
                            (f"algo_kwargs.alpha={alpha}", f"algo_kwargs.softmax_tau={tau}", *MEAN, *NO_CKPT), prio,
                            table_steps=table))
    return runs


def hand_reach_runs() -> list[Run]:
    table = (5000, 10000, 15000, 20000)
    return [Run("hand_reach", "HandReach-v3", "hr_ddpg_her", "DDPG+HER", "configs/hand_reach_ddpg_her.yaml",
                20000, 2500, (), 0, seeds=(0,), table_steps=table),
            Run("hand_reach", "HandReach-v3", "hr_reengage_a0.2", "ReenGAGE alpha=0.2",
                "configs/hand_reach_reengage.yaml", 20000, 2500, ("algo_kwargs.alpha=0.2", *MEAN), 0, seeds=(0,),
                table_steps=table)]


SUITES = {"continuous_seek": continuous_seek_runs, "bit_flipping": bit_flipping_runs, "hand_reach": hand_reach_runs}


def run_dir(out: Path, run: Run, seed: int) -> Path:
    return out / run.suite / run.name / f"seed{seed}"


def last_step(path: Path) -> int:
    """Last evaluated step in a run's eval.csv (0 if none)."""
    try:
        with open(path / "eval.csv") as f:
            rows = list(csv.DictReader(f))
        return int(rows[-1]["timesteps"]) if rows else 0
    except (OSError, KeyError, ValueError, IndexError):
        return 0


def finished(out: Path, run: Run, seed: int, steps: int) -> bool:
    d = run_dir(out, run, seed)
    return (d / "model.zip").exists() and last_step(d) >= steps


def command(out: Path, run: Run, seed: int, steps: int, python: str) -> list[str]:
    cmd = ["nice", "-n", "15", python, "-m", "rlcert.train_cli", "--config", run.config, "--seed", str(seed),
           "--log-dir", str(out / run.suite), "--threads", "1", "--no-progress", "--resume",
           "--set", f"name={run.name}", "--set", f"total_timesteps={steps}", "--set", f"eval.freq={run.eval_freq}"]
    for o in run.overrides:
        cmd += ["--set", o]
    return cmd


def run_queue(jobs: list[tuple[Run, int, int]], out: Path, n_workers: int, python: str) -> None:
    """Run ``(run, seed, steps)`` jobs, at most ``n_workers`` at once; logs next to each run folder."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    pending, active = list(jobs), []
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` ends the workers like Ctrl-C does
    try:
        while pending or active:
            while pending and len(active) < n_workers:
                run, seed, steps = pending.pop(0)
                d = run_dir(out, run, seed)
                d.parent.mkdir(parents=True, exist_ok=True)
                log = open(d.parent / f"seed{seed}.log", "a")
                print(f"{time.strftime('%H:%M:%S')} start {run.suite}/{run.name} seed {seed} ({steps} steps)",
                      flush=True)
                proc = subprocess.Popen(command(out, run, seed, steps, python), cwd=ROOT, env=env, stdout=log,
                                        stderr=subprocess.STDOUT)
                active.append((proc, run, seed, log, time.time()))
            time.sleep(2)
            for item in list(active):
                proc, run, seed, log, t0 = item
                if proc.poll() is not None:
                    log.close()
                    active.remove(item)
                    status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see log)"
                    print(f"{time.strftime('%H:%M:%S')} {status} {run.suite}/{run.name} seed {seed} "
                          f"({time.time() - t0:.0f} s)", flush=True)
    except KeyboardInterrupt:
        for proc, *_ in active:
            proc.terminate()
        for proc, *_ in active:
            proc.wait()
        print("interrupted: finished evaluations are kept; run again to resume", file=sys.stderr)
        raise SystemExit(130) from None


def read_seeds(path: Path) -> dict[int, dict[int, float]]:
    """{seed: {step: success}} for one run folder."""
    out = {}
    for f in sorted(path.glob("seed*/eval.csv")):
        with open(f) as fh:
            rows = list(csv.DictReader(fh))
        out[int(f.parent.name[4:])] = {int(r["timesteps"]): float(r["success_rate"]) for r in rows}
    return out


def curve(seeds: dict[int, dict[int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """steps, mean, std, n_seeds per step (every seed that reached the step counts)."""
    steps = sorted(set().union(*(s.keys() for s in seeds.values()))) if seeds else []
    vals = [[s[t] for s in seeds.values() if t in s] for t in steps]
    return (np.array(steps), np.array([np.mean(v) for v in vals]), np.array([np.std(v) for v in vals]),
            np.array([len(v) for v in vals]))


def report(out: Path, suite: str, runs: list[Run], docs: Path, title: str) -> str:
    """Draw one PNG per suite (a panel per ``Run.panel``) and return a markdown table of success at fixed steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    panels = list(dict.fromkeys(r.panel for r in runs))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    lines = []
    for ax, panel in zip(axes[0], panels):
        panel_runs = [r for r in runs if r.panel == panel]
        cols = sorted({t for r in panel_runs for t in r.table_steps})
        lines += [f"**{title} {panel}**: success after N env steps, mean ± std over the seeds that reached N", "",
                  "| run | seeds | " + " | ".join(f"{t}" for t in cols) + " |", "|---|---|" + "---|" * len(cols)]
        for run in panel_runs:
            seeds = read_seeds(out / suite / run.name)
            if not seeds:
                continue
            steps, mean, std, n = curve(seeds)
            keep = n >= max(1, min(len(seeds), 2)) if len(seeds) > 1 else n >= 1
            plural = "s" if len(seeds) > 1 else ""
            line, = ax.plot(steps[keep], mean[keep], lw=2, label=f"{run.label} ({len(seeds)} seed{plural})")
            ax.fill_between(steps[keep], (mean - std)[keep], (mean + std)[keep], color=line.get_color(), alpha=0.2)
            cells = []
            for t in cols:
                v = [s[t] for s in seeds.values() if t in s]
                n_txt = "" if len(v) == len(seeds) else f" ({len(v)})"
                cells.append(f"{np.mean(v):.2f} ± {np.std(v):.2f}{n_txt}" if v else "–")
            lines.append(f"| {run.label} | {', '.join(map(str, sorted(seeds)))} | {' | '.join(cells)} |")
        lines.append("")
        ax.set_title(f"{title} {panel}")
        ax.set_xlabel("environment steps")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x else "0"))
        ax.set_ylabel("success rate" + (" (final step)" if suite == "hand_reach" else " (goal ever reached)"))
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{title}: mean ± std over seeds (seeds counted in the legend)", fontsize=10)
    fig.tight_layout()
    docs.mkdir(parents=True, exist_ok=True)
    png = docs / f"{suite}_curves.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    lines.append("(n) after a value: only n of the seeds reached that step.")
    table = "\n".join(lines)
    (out / suite / "table.md").write_text(table + "\n")
    print(f"wrote {png} and {out / suite / 'table.md'}")
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", nargs="+", default=["continuous_seek"], choices=sorted(SUITES))
    p.add_argument("--out", type=Path, default=Path("runs/single_goal"))
    p.add_argument("--docs", type=Path, default=Path("docs/results"), help="where the PNGs go")
    p.add_argument("--jobs", type=int, default=2, help="parallel training processes (one torch thread each)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="restrict to these seeds")
    p.add_argument("--only", default=None, help="regular expression on run names")
    p.add_argument("--max-priority", type=int, default=9, help="skip runs with a larger priority number")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply every step budget (e.g. 0.05 to smoke)")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--python", default=sys.executable)
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error(f"--jobs must be >= 1, got {args.jobs}")
    if not 0 < args.steps_scale <= 10:
        p.error(f"--steps-scale must be in (0, 10], got {args.steps_scale}")
    runs = [r for s in args.suite for r in SUITES[s]()]
    runs = [r for r in runs if r.priority <= args.max_priority and (args.only is None or re.search(args.only, r.name))]
    if not args.report_only:
        jobs = []
        for seed in sorted({s for r in runs for s in r.seeds}):
            if args.seeds is not None and seed not in args.seeds:
                continue
            for run in sorted((r for r in runs if seed in r.seeds), key=lambda r: r.priority):
                steps = max(1, int(round(run.steps * args.steps_scale)))
                if finished(args.out, run, seed, steps):
                    print(f"skip {run.suite}/{run.name} seed {seed} (finished)")
                    continue
                jobs.append((run, seed, steps))
        run_queue(jobs, args.out, args.jobs, args.python)
    titles = {"continuous_seek": "ContinuousSeek", "bit_flipping": "Bit-Flipping", "hand_reach": "HandReach-v3"}
    for suite in args.suite:
        print(report(args.out, suite, [r for r in runs if r.suite == suite], args.docs, titles[suite]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
