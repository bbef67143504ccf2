"""``rlcert reproduce EXPERIMENT [--seeds RANGE] [--steps N] [--precision fp32|bf16] [--log-dir DIR]
[--results-dir DIR] [--resume] [--threads N] [--methods KEYS] [--page-only]``, ``rlcert reproduce --list``.

Trains every method of a thesis experiment (settings: the configs in configs/, Tables G.1-G.4) through the fleet,
one process; continues where the last invocation stopped with ``--resume`` (finished seeds are kept, unfinished
ones continue from their last checkpoint); when every run is done writes ``{results_dir}/{experiment}.md`` and
``.png`` (default results dir: ``{log_dir}/{experiment}``): curves, a table at fixed steps, CPU time spent and a
verdict against the thesis' finding (reproduces / does not / not yet; rule in :mod:`rlcert.reproduce.verdict`).
``--steps`` cuts the steps, never the problem size. Ctrl-C keeps everything trained so far.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from rlcert import runs
from rlcert.fleet.run import parse_seeds
from rlcert.reproduce.experiments import EXPERIMENTS, Experiment, estimate_time, format_hours, load_costs
from rlcert.reproduce.run import PRECISIONS, page_from_runs, plan, run_experiment


def describe(exp: Experiment) -> str:
    """The ``--list`` block of one experiment."""
    est = estimate_time(exp, exp.seeds, exp.steps, load_costs())
    lines = [f"{exp.name}: {exp.figure}" + (f"  [{exp.listed_only}]" if exp.listed_only else ""),
             f"    finding: {exp.finding}",
             f"    seeds {exp.seeds} x {exp.steps} env steps per method; estimated CPU {format_hours(est.cpu_s)}, "
             f"GPU {format_hours(est.gpu_s)}" + (" (estimate: rlcert/reproduce/costs.yaml)" if est.estimate else "")]
    for m in exp.methods:
        what = "reference policy, evaluated only" if m.reference else f"configs/{m.config}"
        sets = f" --set {' --set '.join(m.set)}" if m.set else ""
        lines.append(f"    - {m.key}: {m.label} ({what}{sets})")
    if exp.note:
        lines.append(f"    note: {exp.note}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlcert reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?", help="experiment name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the experiments with settings and estimated time")
    parser.add_argument("--seeds", default=None, metavar="RANGE", help="e.g. 0-19 or 0,3,5-7 (default: the "
                        "thesis' number of seeds from 0)")
    parser.add_argument("--steps", type=int, default=None, help="env steps per run (default: the thesis')")
    parser.add_argument("--precision", default="fp32", help=f"matmul precision of the fleet: {'|'.join(PRECISIONS)}")
    parser.add_argument("--log-dir", default="runs/reproduce", help="runs go to LOG_DIR/EXPERIMENT/METHOD/seedK")
    parser.add_argument("--results-dir", default=None, help="where the page and figure go (default: LOG_DIR/"
                        "EXPERIMENT; e.g. docs/results/reproduce to publish)")
    parser.add_argument("--resume", action="store_true", help="continue the runs under LOG_DIR/EXPERIMENT "
                        "(finished ones are kept); without it an existing experiment folder is refused")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the process (default: the "
                        "config's, else 1; may change between invocations)")
    parser.add_argument("--methods", default=None, metavar="KEYS", help="train only these methods (comma-"
                        "separated keys of --list), e.g. two invocations at once, one per core, on one --log-dir "
                        "(disjoint methods; the second with --resume); the last to finish writes the page")
    parser.add_argument("--page-only", action="store_true", help="write the results page from the runs' eval.csv "
                        "files without training (e.g. CSVs copied next to the page); every run must have reached "
                        "--steps")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.list:
        print("\n\n".join(describe(e) for e in EXPERIMENTS.values()))
        return 0
    return runs.run_command("rlcert reproduce", lambda: _run(args, argv),
                            "finished runs and the latest checkpoints are kept; continue with --resume")


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    if args.experiment is None:
        raise ValueError(f"name an EXPERIMENT (one of {', '.join(EXPERIMENTS)}) or pass --list")
    if args.experiment not in EXPERIMENTS:
        raise ValueError(f"unknown EXPERIMENT {args.experiment!r}; choose one of {', '.join(EXPERIMENTS)}")
    exp = EXPERIMENTS[args.experiment]
    seeds = parse_seeds(args.seeds) if args.seeds is not None else list(range(exp.seeds))
    steps = exp.steps if args.steps is None else args.steps
    methods = None if args.methods is None else [k.strip() for k in args.methods.split(",") if k.strip()]
    command = _canonical(exp.name, args) if args.page_only else "rlcert reproduce " + shlex.join(_page_argv(argv))
    p = plan(exp, seeds, steps, args.precision, args.log_dir, args.results_dir, args.resume or args.page_only,
             command=command, threads=args.threads, methods=methods)
    if args.page_only:
        print(f"done: {page_from_runs(p)}")
        return 0
    page = run_experiment(p, resume=args.resume, progress=not args.no_progress)
    if page is not None:
        print(f"done: {page}")
    return 0


def _canonical(name: str, args: argparse.Namespace) -> str:
    """A page rebuilt from copied CSVs shows the command that trains such runs (default --log-dir), not its own."""
    given = (("--seeds", args.seeds), ("--steps", args.steps))
    parts = ["rlcert reproduce", name] + [f"{flag} {v}" for flag, v in given if v is not None]
    return " ".join(parts + ([f"--precision {args.precision}"] if args.precision != "fp32" else []))


def _page_argv(argv: list[str]) -> list[str]:
    """The command as the page shows it: the whole experiment (no --methods, no --no-progress)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--methods":
            skip = True
        elif a not in ("--no-progress", "--page-only") and not a.startswith("--methods="):
            out.append(a)
    return out

if __name__ == "__main__":
    raise SystemExit(main())
