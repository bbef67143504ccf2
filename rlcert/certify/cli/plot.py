"""``rlcert plot-certified results.tsv [more.tsv ...] --out curve.png``: certified accuracy vs radius."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rlcert.certify.cli.tsv import load_tsv
from rlcert.certify.core.metrics import average_certified_radius, certified_accuracy


def plot_certified(paths: list[str | Path], out: str | Path, labels: list[str] | None = None,
                   title: str | None = None, max_radius: float | None = None) -> list[str]:
    """Draw one step curve per TSV into ``out`` (PNG). Returns summary lines (clean acc, ACR per file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or [Path(p).stem for p in paths]
    if len(labels) != len(paths):
        raise ValueError(f"--labels needs one label per file ({len(paths)}), got {len(labels)}")
    data = [load_tsv(p) for p in paths]
    norms = sorted({str(n) for d in data for n in d.get("norm", [])})
    top = max_radius or max([float(d["radius"].max()) if len(d["radius"]) else 0.0 for d in data] + [0.1]) * 1.05
    grid = np.linspace(0.0, top, 400)
    fig, ax = plt.subplots(figsize=(6, 4))
    summary = []
    for d, lab in zip(data, labels):
        acc = certified_accuracy(d["radius"], d["correct"], grid)
        acr = average_certified_radius(d["radius"], d["correct"])
        ax.plot(grid, acc, label=f"{lab} (ACR {acr:.3f})")
        summary.append(f"{lab}: {len(d['radius'])} points, certified acc at r=0 {acc[0]:.3f}, ACR {acr:.3f}")
    ax.set_xlabel(f"radius ({', '.join(norms)})" if norms else "radius")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, top)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlcert plot-certified", description=__doc__)
    parser.add_argument("tsv", nargs="+", help="certification TSV files (rlcert certify output)")
    parser.add_argument("--out", default="certified_accuracy.png", help="output PNG")
    parser.add_argument("--labels", nargs="+", default=None, help="legend labels (default: file names)")
    parser.add_argument("--title", default=None)
    parser.add_argument("--max-radius", type=float, default=None)
    args = parser.parse_args(argv)
    for line in plot_certified(args.tsv, args.out, args.labels, args.title, args.max_radius):
        print(line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
