"""``rlcert plot-curves RUN_DIRS... --out curves.png``: learning curves, mean +- std over seeds.

Each RUN_DIR is a run folder ``{log_dir}/{name}`` holding ``seed*/eval.csv`` (one curve, averaged over its
seeds) or a single ``seed*`` folder. Curves are aligned on the evaluation steps that every seed has reached.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_eval_csv(path: Path, column: str = "success_rate") -> tuple[np.ndarray, np.ndarray]:
    """(timesteps, values) from one eval.csv."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return (np.array([int(r["timesteps"]) for r in rows]), np.array([float(r[column]) for r in rows]))


def load_curves(run_dir: Path, column: str = "success_rate") -> tuple[np.ndarray, np.ndarray, int]:
    """(steps, values[n_seeds, n_steps], n_seeds) on the steps common to every seed of a run folder."""
    files = sorted(run_dir.glob("seed*/eval.csv")) or ([run_dir / "eval.csv"] if (run_dir / "eval.csv").exists()
                                                        else [])
    if not files:
        raise ValueError(f"no eval.csv under {str(run_dir)!r} (expected seed*/eval.csv)")
    curves = [read_eval_csv(f, column) for f in files]
    common = sorted(set.intersection(*(set(s.tolist()) for s, _ in curves)))
    steps = np.array(common)
    values = np.stack([np.array([dict(zip(s.tolist(), v.tolist()))[t] for t in common]) for s, v in curves])
    return steps, values, len(files)


def plot_curves(run_dirs: list[Path], out: Path, column: str = "success_rate", title: str | None = None,
                labels: list[str] | None = None) -> Path:
    """Plot mean +- std over seeds for each run folder into ``out`` (PNG)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, run_dir in enumerate(run_dirs):
        steps, values, n = load_curves(Path(run_dir), column)
        mean, std = values.mean(0), values.std(0)
        label = (labels[i] if labels else Path(run_dir).name) + f" ({n} seed{'s' if n > 1 else ''})"
        ax.plot(steps, mean, label=label, lw=2)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel({"success_rate": "success rate", "mean_return": "mean return"}.get(column, column))
    if column == "success_rate":
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or "learning curves (mean ± std over seeds)")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlcert plot-curves", description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders ({log_dir}/{name})")
    parser.add_argument("--out", type=Path, required=True, help="output PNG")
    parser.add_argument("--column", default="success_rate", choices=["success_rate", "mean_return"])
    parser.add_argument("--title", default=None)
    parser.add_argument("--labels", default=None, help="comma-separated legend labels, one per run folder")
    args = parser.parse_args(argv)
    labels = args.labels.split(",") if args.labels else None
    if labels is not None and len(labels) != len(args.run_dirs):
        parser.error(f"--labels needs {len(args.run_dirs)} labels, got {len(labels)}")
    try:
        out = plot_curves(args.run_dirs, args.out, args.column, args.title, labels)
    except ValueError as e:
        parser.error(str(e))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
