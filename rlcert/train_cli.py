"""``rlcert train --config configs/X.yaml [--seed N | --seeds RANGE] [--set key.sub=value ...] [--log-dir DIR]
[--resume]`` (also ``python -m rlcert.train``).

Trains an SB3 / ReenGAGE agent from a YAML config (schema: :mod:`rlcert.training.config`) and writes
``{log_dir}/{name}/seed{seed}/``: ``config.yaml`` (resolved; written before the first result), ``eval.csv`` (one
row per evaluation, flushed), ``tb/`` (tensorboard), ``checkpoints/latest_*`` (model + replay buffer +
``latest_state.json``, for ``--resume``) and the final ``model.zip`` (reload with ``ALGOS[algo].load(path,
env=...)``).

Every value is checked (algo_kwargs names against the algorithm's constructor) before anything is written; a bad
one is a one-line error naming the key. An existing run folder is refused unless ``--resume`` is given (nothing
is ever overwritten silently), and ``--resume`` with a config that differs from the folder's ``config.yaml`` in
anything but ``total_timesteps`` / ``torch_threads`` / ``notes`` is refused in one line naming the keys. Ctrl-C
checkpoints the current step and ends with one line (exit 130); ``--resume`` continues from that step
(``wall_time_s`` accumulates over resumes). The final step is always evaluated.

``--seeds``: the fleet (:mod:`rlcert.fleet`, one process, batched networks) when it supports the config, else the
seeds one after another with :func:`rlcert.train.train` -- this command decides, not the fleet.
"""

from __future__ import annotations

import argparse

from rlcert import runs
from rlcert.fleet.config import unsupported_reason
from rlcert.fleet.run import parse_seeds, train_fleet
from rlcert.train import train
from rlcert.training import load_config


def build_parser() -> argparse.ArgumentParser:
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be an integer >= 1, got {args.threads}")
    if args.seeds is not None:
        if args.seed is not None:
            parser.error("give either --seed or --seeds, not both")
        return runs.run_command("rlcert train", lambda: _train_seeds(args),
                                "finished runs and the latest checkpoints are kept; continue with --resume")
    return runs.run_command("rlcert train", lambda: _train_one(args),
                            "the current step is checkpointed; continue with the same command plus --resume")


def _train_one(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.set, args.seed, args.log_dir)
    if args.threads is not None:
        config["torch_threads"] = args.threads
    _, run_dir = train(config, resume=args.resume, progress=not args.no_progress)
    print(f"done: {run_dir / 'model.zip'} (eval log {run_dir / 'eval.csv'})")
    return 0


def _train_seeds(args: argparse.Namespace) -> int:
    """``--seeds``: the fleet (rlcert.fleet) if it supports the config, else sequential runs of :func:`train`."""
    seeds = parse_seeds(args.seeds)
    config = load_config(args.config, args.set, seeds[0], args.log_dir)
    if args.threads is not None:
        config["torch_threads"] = args.threads
    reason = unsupported_reason(config)
    if reason is None:
        print(f"training seeds {args.seeds} together (fleet of {len(seeds)})")
        run_dirs = train_fleet(config, seeds, resume=args.resume, progress=not args.no_progress)
    else:
        print(f"the fleet does not support {reason}; training the seeds one after another")
        run_dirs = [train({**config, "seed": s}, resume=args.resume, progress=not args.no_progress)[1]
                    for s in seeds]
    print(f"done: {len(run_dirs)} runs under {run_dirs[0].parent} (seed*/eval.csv, seed*/model.zip)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
