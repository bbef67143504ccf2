"""``rlcert sweep --config sweep.yaml [--address ADDR] [--num-cpus N] [--sequential] [--log-dir DIR]``.

Runs a grid or random search (see ``rlcert.sweep.spec`` for the YAML schema) over ``rlcert train`` configs x
seeds on Ray Tune: a local Ray instance using every core by default (one torch thread per trial), or an existing
cluster with ``--address`` (the sweep folder must then be on a file system every node sees). Rerunning the same
command resumes: finished seeds are skipped, interrupted ones continue from their latest checkpoint.
Writes ``{log_dir}/{name}/``: ``sweep.json``, ``trials/{setting}/seed{k}/`` (ordinary run folders) and
``results.csv`` (every evaluation point of every trial). Then ``rlcert sweep-report {log_dir}/{name}``.
"""

from __future__ import annotations

import argparse
import sys
import time

from rlcert import runs
from rlcert.sweep.runner import run_sweep
from rlcert.sweep.spec import load_sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlcert sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="sweep YAML")
    parser.add_argument("--log-dir", default=None, help="override the sweep's log_dir")
    parser.add_argument("--address", default=None,
                        help="join this Ray cluster (e.g. 'auto' or 'host:6379'); a cluster with token authentication "
                             "(Ray 2.60's default once a token exists) needs RAY_AUTH_MODE=token for an explicit "
                             "address (docs/sweep.md)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--sequential", action="store_true", help="run the trials one after another, without Ray")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.num_cpus is not None and args.num_cpus < 1:
        parser.error(f"--num-cpus must be an integer >= 1, got {args.num_cpus}")
    if args.address is not None and (args.sequential or args.num_cpus is not None):
        parser.error("--address cannot be combined with --sequential or --num-cpus")
    return runs.run_command("rlcert sweep", lambda: _run(args),
                            "finished seeds are kept; rerun the same command to resume")


def _run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    spec = load_sweep(args.config, args.log_dir)
    try:
        results, failures = run_sweep(spec, address=args.address, num_cpus=args.num_cpus,
                                      sequential=args.sequential, progress=not args.no_progress)
    except ImportError as e:
        print(str(e), file=sys.stderr)
        return 2
    for line in failures:
        print(line, file=sys.stderr)
    print(f"done in {time.perf_counter() - t0:.1f} s: {results} (report: rlcert sweep-report {spec.sweep_dir})")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
