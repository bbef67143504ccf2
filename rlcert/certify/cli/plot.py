"""``rlcert plot-certified``: certified accuracy vs radius from certification TSVs, one panel per threat model.

Example (after the ``rlcert certify --help`` example):

    rlcert plot-certified runs/certify/gaussian.tsv --labels "gaussian sigma=0.25" --out runs/certify/curve.png

Radii of different norms (the TSV's ``norm`` column: l2, l1, l0, lp:0.5, patch, poison, ...) are never drawn on
one axis: each norm gets its own panel, with the norm in the x-axis label.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rlcert.certify.cli.tsv import load_tsv
from rlcert.certify.core.metrics import average_certified_radius, certified_accuracy


def tsv_norm(data: dict[str, np.ndarray], path: str | Path) -> str:
    """The single threat model of a TSV ("?" for Cohen's files without a norm column)."""
    norms = sorted({str(n) for n in data.get("norm", [])})
    if len(norms) > 1:
        raise ValueError(f"{path} mixes radii of different norms {norms}; certify each norm into its own TSV")
    return norms[0] if norms else "?"


def plot_certified(paths: list[str | Path], out: str | Path, labels: list[str] | None = None,
                   title: str | None = None, max_radius: float | None = None) -> list[str]:
    """Draw one curve per TSV into ``out`` (PNG), one panel per norm. Returns summary lines (accuracy at r = 0 and
    ACR per file). ``max_radius`` caps every panel's x axis (default: 1.05 x the largest radius of the panel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or [Path(p).stem for p in paths]
    if len(labels) != len(paths):
        raise ValueError(f"--labels needs one label per file ({len(paths)}), got {len(labels)}")
    if max_radius is not None and not max_radius > 0:
        raise ValueError(f"--max-radius must be > 0, got {max_radius}")
    data = [load_tsv(p) for p in paths]
    panels: dict[str, list[int]] = {}
    for i, (d, p) in enumerate(zip(data, paths)):
        panels.setdefault(tsv_norm(d, p), []).append(i)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    summary = []
    for ax, (norm, members) in zip(axes[0], panels.items()):
        radii = [float(data[i]["radius"].max()) if len(data[i]["radius"]) else 0.0 for i in members]
        top = max_radius or max(radii + [0.1]) * 1.05
        grid = np.linspace(0.0, top, 400)
        for i in members:
            d = data[i]
            acc = certified_accuracy(d["radius"], d["correct"], grid)
            acr = average_certified_radius(d["radius"], d["correct"])
            ax.plot(grid, acc, label=f"{labels[i]} (ACR {acr:.3f})")
            summary.append(f"{labels[i]}: {len(d['radius'])} points, {norm} radii, certified acc at r=0 "
                           f"{acc[0]:.3f}, ACR {acr:.3f}")
        ax.set_xlabel(f"radius ({norm})")
        ax.set_ylabel("certified accuracy")
        ax.set_title(f"certified accuracy vs {norm} radius", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, top)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return summary


def parse_labels(text: str | None) -> list[str] | None:
    """``--labels``: comma-separated, one per TSV (the convention of ``rlcert plot-curves`` too)."""
    return None if text is None else [s.strip() for s in text.split(",")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlcert plot-certified", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tsv", nargs="+", help="certification TSV files (rlcert certify output)")
    parser.add_argument("--out", default="certified_accuracy.png", help="output PNG (default certified_accuracy.png)")
    parser.add_argument("--labels", default=None,
                        help="comma-separated legend labels, one per TSV (default: the file names)")
    parser.add_argument("--title", default=None, help="figure title (default: none)")
    parser.add_argument("--max-radius", type=float, default=None,
                        help="x-axis limit of every panel (default: 1.05 x the panel's largest radius)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        lines = plot_certified(args.tsv, args.out, parse_labels(args.labels), args.title, args.max_radius)
    except (ValueError, OSError) as e:
        print(f"rlcert plot-certified: error: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
