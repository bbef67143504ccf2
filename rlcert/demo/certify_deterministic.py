"""Deterministic certifiers on the digits: train tiny base models, certify the held-out split with the CLI.

    python -m rlcert.demo.certify_deterministic --out runs/demo [--quick] [--methods dssn,column]

Data: the certification core's digits split (``rlcert.certify.io``; 1397 train / 400 test images, the CLI's
``--data digits``). Digits are integers 0..16, so ``x = pixel/16`` lies exactly on the q = 16 grid the l1/lp
certificates need. Methods: DSSN (l1), variable-Lambda (l_{1/2}, MILP design), deterministic l0 (pixels), column
smoothing (theta = 0.3) and DPA (poisoning). Each base model (``rlcert.certify.models.digits.digits_cnn`` through the
``rlcert.certify.models`` factories) is trained on its certifier's own noise/ablation (``certifier.sample``: one random
outcome per image; column smoothing: one random band per batch, as in Ch.6); the certifier is built from the same
CLI flags used to certify, and certification runs through ``python -m rlcert.certify`` (one TSV per method).
Weights and TSVs are cached under ``<out>/deterministic/`` (a rerun only plots). ``run(out, quick)`` is the demo
section; with all methods it writes ``certified_accuracy.png`` and ``summary.json`` there, with a subset
(``--methods dssn,column``) ``certified_accuracy_dssn+column.png`` and ``summary_dssn+column.json``, so a partial
run never overwrites the full section's figure and summary.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from rlcert.certify.cli.certify import build_parser
from rlcert.certify.cli.certify import main as certify_main
from rlcert.certify.cli.tsv import load_tsv
from rlcert.certify.core.metrics import certified_accuracy
from rlcert.certify.core.registry import get
from rlcert.certify.core.votes import median_certified_robustness
from rlcert.certify.deterministic.patch import ColumnSmoothing, encode_null
from rlcert.certify.io import load_digits_split
from rlcert.certify.models.digits import train_digits_cnn
from rlcert.certify.poisoning.dpa import train_partitions

Q = 16

# label -> (CLI --method, its flags, model factory for --model, unit of the radius)
METHODS: dict[str, tuple[str, list[str], str, str]] = {
    "DSSN l1 (lambda=1, N=32)": ("dssn", ["--lambda", "1", "--q", "16"], "digits_dssn_cnn", "l1 radius"),
    "variable-Lambda l_1/2 (alpha=2, B=200)": (
        "variable-lambda", ["--p", "0.5", "--design", "milp", "--q", "16", "--budget", "100", "--lambda-alpha", "2",
                            "--milp-time", "20"], "digits_bounds_cnn", "l_1/2 radius"),
    "deterministic l0 (alpha=8 pixels)": (
        "deterministic-l0", ["--l0-alpha", "8", "--q", "16", "--l0-unit", "pixel"], "digits_bounds_cnn", "pixels"),
    "column s=2, theta=0.3": ("column", ["--band-width", "2", "--theta", "0.3"], "digits_null_cnn", "patch side m"),
}


def column_noise(cert: ColumnSmoothing) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """Training ablation for column smoothing: one random band for the whole batch (Ch.6), NULL-encoded."""
    def noise(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        masks = cert.masks(xb.shape[2], xb.shape[3])
        pos = int(torch.randint(len(masks), (1,), generator=gen))
        return encode_null(xb) * masks[pos]
    return noise


def certify_args(method: str, flags: list[str], out_tsv: Path, images: int, model: list[str]) -> list[str]:
    """The ``python -m rlcert.certify`` arguments the demo runs (printed in the report for reproduction)."""
    return [*model, "--data", "digits", "--method", method, *flags, "--max", str(images), "--device", "cpu",
            "--out", str(out_tsv)]


def _certify(argv: list[str]) -> tuple[dict[str, np.ndarray], float]:
    t0 = time.perf_counter()
    if certify_main([*argv, "--no-progress"]) != 0:
        raise RuntimeError(f"python -m rlcert.certify {' '.join(argv)} failed (see stderr)")
    out_tsv = Path(argv[argv.index("--out") + 1])
    return load_tsv(out_tsv), time.perf_counter() - t0


def run(out: Path, quick: bool, methods: list[str] | None = None) -> list[str]:
    """Demo section; ``methods`` (CLI names, e.g. ["dssn", "column"]) restricts it (default: all five)."""
    torch.set_num_threads(1)
    out = Path(out) / "deterministic"
    out.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr = load_digits_split("train")
    images = 60 if quick else 400
    epochs = 6 if quick else 25
    results: dict[str, dict] = {}
    lines, commands = [], []
    for label, (method, flags, factory, unit) in METHODS.items():
        if methods is not None and method not in methods:
            continue
        t0 = time.perf_counter()
        weights = out / f"{method}_e{epochs}.pt"
        tsv = out / f"{method}_e{epochs}.tsv"
        cert = get(method).from_arguments(build_parser(method).parse_args(["--method", method, *flags,
                                                                             "--out", str(tsv)]))
        if not weights.exists():
            from rlcert.certify import models as digit_models

            noise = column_noise(cert) if isinstance(cert, ColumnSmoothing) else (lambda xb, g, c=cert: c.sample(xb, g))
            model = train_digits_cnn(x_tr, y_tr, epochs=epochs, noise=noise, log=None,
                                     model_fn=getattr(digit_models, factory))
            torch.save(model.state_dict(), weights)
        train_s = time.perf_counter() - t0
        argv = certify_args(method, flags, tsv, images,
                            ["--model", f"rlcert.certify.models:{factory}", "--weights", str(weights)])
        commands.append("python -m rlcert.certify " + " ".join(argv))
        d, certify_s = _certify(argv)
        results[label] = _summary(d, unit, train_s, certify_s)
        med = results[label]["median_certified"]
        lines.append(f"- {label}: clean accuracy {results[label]['clean_accuracy']:.3f}, median certified "
                     f"{'N/A' if med is None else med} ({unit}), {np.mean(d['time']) * 1e3:.1f} ms/input")

    if methods is None or "dpa" in methods:  # DPA: one tiny MLP per partition, trained with seed = partition index
        k = 10 if quick else 30
        t0 = time.perf_counter()
        folder = out / f"dpa_k{k}"
        train_partitions(x_tr, y_tr, k, folder, mode="dpa", epochs=100 if quick else 300, hidden=0, progress=False)
        train_s = time.perf_counter() - t0
        argv = certify_args("dpa", ["--partitions-dir", str(folder)], out / f"dpa_k{k}.tsv", images, [])
        commands.append("python -m rlcert.certify " + " ".join(argv))
        d, certify_s = _certify(argv)
        label = f"DPA k={k} (linear base models)"
        results[label] = _summary(d, "poisoned samples", train_s, certify_s)
        results[label]["median_certified_table7_1"] = median_certified_robustness(d["radius"], d["correct"] == 1,
                                                                                  "table7.1")
        lines.append(f"- {label}: clean accuracy {results[label]['clean_accuracy']:.3f}, median certified "
                     f"{results[label]['median_certified']} (strict) / {results[label]['median_certified_table7_1']} "
                     "(Table 7.1 convention) poisoned samples")

    suffix = "" if methods is None else "_" + "+".join(methods)
    png = out / f"certified_accuracy{suffix}.png"
    _plot(results, png, images)
    (out / f"summary{suffix}.json").write_text(json.dumps(results, indent=1) + "\n")
    return (lines + ["", "Certified with:", "", "```bash", *commands, "```", "",
                     f"![deterministic certified accuracy]({out.name}/{png.name})"])


def _summary(d: dict[str, np.ndarray], unit: str, train_s: float, certify_s: float) -> dict:
    correct = d["correct"] == 1
    med = median_certified_robustness(d["radius"], correct)
    return {"unit": unit, "images": int(len(correct)), "clean_accuracy": float(correct.mean()),
            "median_certified": None if med is None else round(med, 4), "train_s": round(train_s, 2),
            "certify_s_per_input": float(np.mean(d["time"])), "cli_s": round(certify_s, 2),
            "radii": d["radius"].tolist(), "correct": correct.tolist()}


def _plot(results: dict[str, dict], path: Path, images: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, max(1, len(results)))
    rows = -(-max(1, len(results)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows + 0.4), squeeze=False)
    axes = axes.flatten()
    for ax in axes[len(results):]:
        ax.axis("off")
    for ax, (label, r) in zip(axes, results.items()):
        radii, correct = np.array(r["radii"]), np.array(r["correct"])
        top = max(radii.max(), 1e-9)
        continuous = label.startswith(("DSSN", "variable"))
        grid = np.linspace(0, top * 1.05, 200) if continuous else np.arange(0, top + 2)
        curve = certified_accuracy(radii, correct, grid)
        legend = f"{r['images']} images, clean acc {r['clean_accuracy']:.2f}"
        ax.plot(grid, curve, label=legend) if continuous else ax.step(grid, curve, where="post", label=legend)
        ax.legend(fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.set_ylabel("certified accuracy")
        ax.set_xlabel(r["unit"])
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Deterministic certificates, digits test split ({images} held-out images, exact)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlcert.demo.certify_deterministic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="writes <out>/deterministic/")
    parser.add_argument("--quick", action="store_true", help="6 epochs, 60 test images, k = 10")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of dssn,variable-lambda,deterministic-l0,column,dpa "
                             "(default: all; a subset writes its own figure/summary names)")
    args = parser.parse_args(argv)
    methods = None if args.methods is None else [m.strip() for m in args.methods.split(",")]
    known = [m for m, *_ in METHODS.values()] + ["dpa"]
    if methods is not None and any(m not in known for m in methods):
        parser.error(f"--methods must be a subset of {known}, got {args.methods!r}")
    for line in run(args.out, args.quick, methods):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
