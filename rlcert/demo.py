"""The main demo: ``python -m rlcert.demo [--out runs/demo] [--quick]``.

Runs each section in turn (environments, then agents and certification where present) and writes PNGs plus
``report.md`` under the output folder. The report is rewritten after every section, so an interrupted demo
keeps what finished.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

# Demo sections live in the top-level ``demos/`` folder next to the ``rlcert`` package: make it importable also
# when ``rlcert demo`` runs through the console script (whose sys.path holds neither the cwd nor the repo root).
REPO_ROOT = Path(__file__).resolve().parent.parent
if (REPO_ROOT / "demos" / "__init__.py").is_file() and str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# (title, "module:function"); each function is run(out_dir: Path, quick: bool) -> list[str] (markdown lines).
SECTIONS = [
    ("Environments", "demos.envs:run"),
    ("Agents", "demos.agents:run"),
    ("Multi-ReenGAGE", "demos.multi_goal:run"),
    ("Certification", "demos.certify:run"),
    ("Deterministic certificates", "demos.certify_deterministic:run"),
    ("Randomized ablation and Wasserstein smoothing", "demos.certify_ablation_wasserstein:run"),
    ("Certifying agents", "demos.certify_policy:run"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlcert demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true", help="smaller budgets (used by the tests)")
    parser.add_argument("--only", default=None, help="comma-separated section titles to run (default: all)")
    args = parser.parse_args(argv)
    wanted = None if args.only is None else {s.strip().lower() for s in args.only.split(",") if s.strip()}
    valid = [title.lower() for title, _ in SECTIONS]
    if wanted is not None and (not wanted or wanted - set(valid)):
        bad = sorted(wanted - set(valid)) or [args.only]
        print(f"rlcert demo: error: --only: unknown section(s) {bad}; valid sections: {', '.join(valid)}",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report = ["# rlcert demo report", ""]
    for title, target in SECTIONS:
        if wanted is not None and title.lower() not in wanted:
            continue
        module, func = target.split(":")
        print(f"== {title}", flush=True)
        t0 = time.perf_counter()
        lines = getattr(importlib.import_module(module), func)(args.out, args.quick)
        report += [f"## {title}", "", *lines, "", f"_section time: {time.perf_counter() - t0:.1f} s_", ""]
        (args.out / "report.md").write_text("\n".join(report) + "\n")
    print(f"report: {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
