"""The main demo: ``rlcert demo [--out runs/demo] [--quick] [--only S1,S2] [--redo]`` (or ``python -m rlcert.demo``).

Runs each section in turn (environments, agents, certification) and writes PNGs plus ``report.md`` under ``--out``.
Rerunning is safe and cheap:

* the demo's settings (``--quick``) are written (through ``rlcert.runs``) to ``<out>/demo.json`` before the first
  section and compared on every rerun; a different setting is refused in one line (choose another ``--out``);
* a finished section leaves ``<out>/<folder>/section.json`` (its report lines and time) and is skipped on a rerun;
  an interrupted section runs again and reuses what it cached (trained runs resume, TSVs resume, weights are kept);
* ``report.md`` is rebuilt after every section from all finished sections, in the fixed section order, so
  ``--only`` replaces just its own sections and keeps the others;
* ``--redo`` deletes the selected sections' folders first and runs them from scratch.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rlcert import runs
from rlcert.demo import (
    agents,
    certify,
    certify_ablation_wasserstein,
    certify_deterministic,
    certify_policy,
    envs,
    multi_goal,
)

# (title, folder under --out that the section writes to, run(out_dir, quick) -> markdown lines)
SECTIONS: list[tuple[str, str, Callable[[Path, bool], list[str]]]] = [
    ("Environments", "envs", envs.run),
    ("Agents", "agents", agents.run),
    ("Multi-ReenGAGE", "multi_goal", multi_goal.run),
    ("Certification", "certify", certify.run),
    ("Deterministic certificates", "deterministic", certify_deterministic.run),
    ("Randomized ablation and Wasserstein smoothing", "ablation_wasserstein", certify_ablation_wasserstein.run),
    ("Certifying agents", "certify_policy", certify_policy.run),
]
SETTINGS_FILE = "demo.json"
RECORD_FILE = "section.json"


def _read_record(path: Path) -> dict | None:
    """A section record, or None when it is missing or unreadable (a section killed while writing it reruns)."""
    try:
        rec = runs.read_json(path)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def finished(out: Path, folder: str) -> dict | None:
    """The record of a finished section (``lines``, ``seconds``), or None if it has not finished."""
    rec = _read_record(out / folder / RECORD_FILE)
    return rec if rec is not None and isinstance(rec.get("lines"), list) else None


def build_report(out: Path, settings: dict) -> str:
    """``report.md``: every finished section in the fixed order, and the sections still missing."""
    lines = ["# rlcert demo report", "", f"Settings: {', '.join(f'{k} = {v}' for k, v in settings.items())}.", ""]
    missing = []
    for title, folder, _ in SECTIONS:
        rec = finished(out, folder)
        if rec is None:
            missing.append(title)
            continue
        lines += [f"## {title}", "", *rec["lines"], "", f"_section time: {rec['seconds']:.1f} s_", ""]
    if missing:
        lines += ["## Not run yet", "", "Sections without results in this folder: " + ", ".join(missing)
                  + " (`rlcert demo --out <this folder> [--quick]` runs them).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlcert demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true", help="smaller budgets (a smoke run, used by the tests)")
    parser.add_argument("--only", default=None, help="comma-separated section titles to run (default: all)")
    parser.add_argument("--redo", action="store_true", help="delete the selected sections' outputs and run them again")
    args = parser.parse_args(argv)
    valid = [title.lower() for title, _, _ in SECTIONS]
    wanted = None if args.only is None else {s.strip().lower() for s in args.only.split(",") if s.strip()}
    if wanted is not None and (not wanted or wanted - set(valid)):
        bad = sorted(wanted - set(valid)) or [args.only]
        print(f"rlcert demo: error: --only: unknown section(s) {bad}; valid sections: {', '.join(valid)}",
              file=sys.stderr)
        return 2
    settings = {"quick": bool(args.quick)}
    report = args.out / "report.md"

    def body() -> int:
        args.out.mkdir(parents=True, exist_ok=True)
        # settings first, before any section writes; other settings in this folder are refused in one line
        runs.ensure_settings(args.out / SETTINGS_FILE, settings, what=f"--out {args.out} (a demo)")
        try:
            for title, folder, run in SECTIONS:
                if wanted is not None and title.lower() not in wanted:
                    continue
                if args.redo:
                    shutil.rmtree(args.out / folder, ignore_errors=True)
                elif finished(args.out, folder) is not None:
                    print(f"== {title}: finished earlier, skipped (--redo runs it again)", flush=True)
                    continue
                print(f"== {title}", flush=True)
                t0 = time.perf_counter()
                lines = run(args.out, args.quick)
                runs.write_json_atomic(args.out / folder / RECORD_FILE,
                                       {"title": title, "lines": lines, "seconds": round(time.perf_counter() - t0, 1)})
                runs.write_text_atomic(report, build_report(args.out, settings) + "\n")
        finally:  # interrupted or not, the report holds every finished section
            if (args.out / SETTINGS_FILE).exists():
                runs.write_text_atomic(report, build_report(args.out, settings) + "\n")
        print(f"report: {report}")
        return 0

    return runs.run_command("rlcert demo", body, "finished sections are kept, rerun the same command to resume")


if __name__ == "__main__":
    raise SystemExit(main())
