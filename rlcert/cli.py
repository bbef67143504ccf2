"""``rlcert <command> [args]``: one entry point that dispatches to each part's own ``main(argv)``."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "demo": ("rlcert.demo.main", "run the demo (envs, agents, certification) and write runs/demo/"),
    "train": ("rlcert.train_cli", "train an agent from a YAML config"),
    "plot-curves": ("rlcert.plots", "plot learning curves (mean +- std over seeds)"),
    "certify": ("rlcert.certify.cli.certify", "certify a classifier on a data set, writing a TSV"),
    "plot-certified": ("rlcert.certify.cli.plot", "plot certified accuracy vs radius from TSV files"),
    "certify-policy": ("rlcert.certify.policy.cli", "certify an agent's actions and return under observation noise"),
    "sweep": ("rlcert.sweep.cli", "grid/random search over train configs x seeds on Ray Tune (resumable)"),
    "reproduce": ("rlcert.reproduce.cli", "train a thesis experiment's methods (resumable) and write its results page"),
    "sweep-report": ("rlcert.sweep.report", "best settings (area under the curve) and figures of a sweep"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {k:<16}{v[1]}" for k, v in COMMANDS.items()]
        print("usage: rlcert <command> [args]\n\ncommands:\n" + "\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nunknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
