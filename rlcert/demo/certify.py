"""Demo section "Certification": train the tiny digits CNN with noise, certify part of the test split, plot.

Full mode: Gaussian (l2) models at sigma 0.25 and 0.5, Laplace and uniform (l1) models at sigma 0.5 (same std),
150 test images, n0 = 100, n = 10,000, alpha = 0.001. Quick mode: Gaussian sigma 0.25 only, 40 images, n = 1,000.
Everything is written under ``<out>/certify/`` (weights, TSVs, ``certify_l2.png``, ``certify_l1.png``); TSVs
resume, so a rerun only plots. ``python -m rlcert.demo.certify --out runs/demo [--quick]`` runs the section alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rlcert.certify.cli.certify import main as certify_main
from rlcert.certify.cli.plot import plot_certified
from rlcert.certify.cli.tsv import load_tsv
from rlcert.certify.core.certificate import ABSTAIN
from rlcert.certify.core.classifier import BaseClassifier
from rlcert.certify.core.metrics import average_certified_radius, certified_accuracy
from rlcert.certify.io import load_digits_split
from rlcert.certify.models.digits import digits_cnn, train_digits_cnn
from rlcert.certify.randomized.gaussian import GaussianCertifier


def _model(folder: Path, noise: str, sigma: float, epochs: int) -> tuple[Path, float]:
    """Train (or reuse) a digits CNN; returns (weights path, clean test accuracy of the base model)."""
    path = folder / f"digits_cnn_{noise}_s{sigma}_e{epochs}.pt"
    model = digits_cnn()
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        x, y = load_digits_split("train")
        model = train_digits_cnn(x, y, sigma=sigma, epochs=epochs, noise=noise, log=None)
        torch.save(model.state_dict(), path)
    xt, yt = load_digits_split("test")
    with torch.no_grad():
        acc = float(np.mean(model.eval()(torch.as_tensor(xt)).argmax(1).numpy() == yt))
    return path, acc


def run(out: Path, quick: bool) -> list[str]:
    torch.set_num_threads(1)
    folder = Path(out) / "certify"
    folder.mkdir(parents=True, exist_ok=True)
    epochs, n, images = (8, 1000, 40) if quick else (30, 10_000, 150)
    l2 = [("gaussian", 0.25)] if quick else [("gaussian", 0.25), ("gaussian", 0.5)]
    l1 = [] if quick else [("laplace", 0.5), ("uniform", 0.5)]
    lines = [f"Tiny CNN ({sum(p.numel() for p in digits_cnn().parameters())} parameters) on scikit-learn digits "
             f"(8x8, pixels in [0, 1]), trained {epochs} epochs with noise augmentation at the certification "
             f"noise; {images} test images (every 2nd), n0 = 100, n = {n}, alpha = 0.001 (one-sided). "
             "`sigma` is the noise standard deviation (Laplace scale sigma/sqrt 2, uniform half-width sqrt(3) sigma).",
             "", "| method | norm | sigma | base clean acc | certified acc r=0 | r=0.25 | r=0.5 | r=1.0 | ACR |",
             "|---|---|---|---|---|---|---|---|---|"]
    tsvs: dict[str, list[tuple[Path, str]]] = {"l2": [], "l1": []}
    for method, sigma in l2 + l1:
        weights, acc = _model(folder, method, sigma, epochs)
        tsv = folder / f"{method}_s{sigma}_n{n}.tsv"
        rc = certify_main(["--model", "rlcert.certify.models:digits_cnn", "--weights", str(weights),
                           "--data", "digits", "--method", method, "--sigma", str(sigma), "--n0", "100",
                           "--n", str(n), "--alpha", "0.001", "--batch", "1000", "--skip", "2", "--max", str(images),
                           "--device", "cpu", "--out", str(tsv), "--no-progress"])
        if rc != 0:
            raise RuntimeError(f"certification failed for {method} sigma={sigma} (see stderr)")
        d = load_tsv(tsv)
        ca = certified_accuracy(d["radius"], d["correct"], [0.0, 0.25, 0.5, 1.0])
        norm = "l2" if method == "gaussian" else "l1"
        tsvs[norm].append((tsv, f"{method} sigma={sigma}"))
        lines.append(f"| {method} | {norm} | {sigma} | {acc:.3f} | " + " | ".join(f"{v:.3f}" for v in ca)
                     + f" | {average_certified_radius(d['radius'], d['correct']):.3f} |")
    lines.append("")
    for norm, items in tsvs.items():
        if not items:
            continue
        png = folder / f"certify_{norm}.png"
        plot_certified([p for p, _ in items], png, labels=[lab for _, lab in items],
                       title=f"digits CNN, {norm} certificates (n={n}, alpha=0.001)")
        lines.append(f"![certified accuracy vs {norm} radius]({folder.name}/{png.name})")
        lines.append("")
    # PREDICT (Cohen's two-sided test) with 100 samples on the same images
    weights, _ = _model(folder, "gaussian", 0.25, epochs)
    model = digits_cnn()
    model.load_state_dict(torch.load(weights, weights_only=True))
    xt, yt = load_digits_split("test")
    idx = np.arange(0, len(xt), 2)[:images]
    pred = GaussianCertifier(0.25, alpha=0.001).predict(BaseClassifier(model.eval(), 10), torch.as_tensor(xt[idx]),
                                                         n=100, seeds=list(idx))
    lines.append(f"PREDICT (two-sided test, n = 100, alpha = 0.001, Gaussian sigma = 0.25): accuracy "
                 f"{np.mean(pred == yt[idx]):.3f}, abstained {np.mean(pred == ABSTAIN):.3f}.")
    lines.append("")
    lines.append("Reproduce one curve: `python -m rlcert.certify --model rlcert.certify.models:digits_cnn "
                 f"--weights {folder / 'digits_cnn_gaussian_s0.25_e' }{epochs}.pt --data digits --sigma 0.25 "
                 f"--n {n} --skip 2 --max {images} --out gaussian.tsv --plot gaussian.png`")
    return lines


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rlcert.demo.certify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="writes <out>/certify/ only")
    parser.add_argument("--quick", action="store_true", help="Gaussian sigma 0.25 only, 40 images, n = 1000")
    args = parser.parse_args(argv)
    for line in run(args.out, args.quick):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
