"""bf16 vs fp32 certification: agreement of predictions and radii, and certified accuracy side by side.

    python scripts/precision_evidence.py --out docs/certify_precision.png            # ~5 min on one core
    python scripts/precision_evidence.py --quick --out /tmp/p.png                    # seconds (smoke test)

Two models, each certified twice with Gaussian CERTIFY (sigma 0.25, same seeds, so the noise is identical and
only the base model's precision differs): fp32, and bf16 autocast (channels-last):

* ``digits``: the demo CNN trained with Gaussian augmentation (sigma 0.25, ``--digits-epochs``) on the
  scikit-learn digits training split, certified on ``--digits-inputs`` test digits at n0 = 100, n = ``--digits-n``;
* ``vgg``: the VGG-style CIFAR-size CNN (64-128-256 channels, 3x32x32) **briefly trained on synthetic data**
  (no downloads: 10 classes, each a fixed random low-frequency colour pattern, plus pixel noise), certified on
  ``--vgg-inputs`` held-out synthetic images (weaker patterns than in training) at n0 = 50, n = ``--vgg-n``.

Prints, per model: prediction agreement (ABSTAIN counts as a prediction), the radius differences bf16 - fp32
(mean |d|, max |d|, quantiles) and clean accuracy of the base model in both precisions; writes one PNG: certified
accuracy curves (fp32 solid, bf16 dashed) and histograms of the radius differences.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from rlcert.certify import BaseClassifier, GaussianCertifier
from rlcert.certify.cli.data import load_digits_split
from rlcert.certify.core.metrics import certified_accuracy
from rlcert.certify.models.digits import digits_cnn, train_digits_cnn
from rlcert.certify.models.vgg import vgg_cifar

SIGMA = 0.25


def synthetic_cifar(n: int, seed: int, amplitude: tuple[float, float] = (0.3, 0.3),
                    classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """n images (3, 32, 32) in [0, 1]: class c is a fixed random 4x4 colour pattern (upsampled bilinearly) with a
    per-image amplitude drawn uniformly from ``amplitude`` around 0.5, plus N(0, 0.1^2) pixel noise; the patterns
    are the same for every seed. Training uses amplitude 0.3; the certified test images U[0.03, 0.3], so that
    sigma = 0.25 smoothing leaves borderline inputs."""
    g = torch.Generator().manual_seed(1234)
    patterns = torch.nn.functional.interpolate(torch.randn(classes, 3, 4, 4, generator=g), size=32,
                                               mode="bilinear", align_corners=False)
    patterns = patterns / patterns.abs().amax(dim=(1, 2, 3), keepdim=True)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(classes, (n,), generator=g)
    amp = amplitude[0] + (amplitude[1] - amplitude[0]) * torch.rand(n, 1, 1, 1, generator=g)
    x = (0.5 + amp * patterns[y] + 0.1 * torch.randn(n, 3, 32, 32, generator=g)).clamp(0, 1)
    return x.numpy().astype(np.float32), y.numpy()


def certify_both(model: torch.nn.Module, x: np.ndarray, n0: int, n: int, batch: int,
                 channels_last: bool) -> dict[str, dict[str, np.ndarray]]:
    cert = GaussianCertifier(sigma=SIGMA, n0=n0, n=n, batch=batch)
    out = {}
    for prec in ("fp32", "bf16"):
        clf = BaseClassifier(model, 10, precision=prec, channels_last=channels_last and prec == "bf16")
        t0 = time.perf_counter()
        certs = []
        for i in range(0, len(x), 8):
            certs += cert.certify(clf, torch.as_tensor(x[i:i + 8]), seeds=range(i, min(i + 8, len(x))))
        with torch.inference_mode():
            clean = clf.predict(torch.as_tensor(x)).numpy()
        out[prec] = {"predict": np.array([c.prediction for c in certs]), "radius": np.array([c.radius for c in certs]),
                     "counts": np.stack([c.counts for c in certs]),
                     "clean": clean, "seconds": time.perf_counter() - t0}
    return out


def summary(name: str, res: dict, y: np.ndarray) -> list[str]:
    a, b = res["fp32"], res["bf16"]
    d = b["radius"] - a["radius"]
    q = np.quantile(np.abs(d), [0.5, 0.9, 0.99])
    lines = [f"{name}: {len(y)} inputs",
             f"  clean base-model accuracy fp32 {np.mean(a['clean'] == y):.3f}, bf16 {np.mean(b['clean'] == y):.3f}; "
             f"clean label agreement {np.mean(a['clean'] == b['clean']):.4f}",
             f"  smoothed prediction agreement {np.mean(a['predict'] == b['predict']):.4f} "
             f"({int(np.sum(a['predict'] != b['predict']))} differ); certified accuracy at r=0: fp32 "
             f"{np.mean(a['predict'] == y):.3f}, bf16 {np.mean(b['predict'] == y):.3f}",
             f"  radius bf16 - fp32: mean {d.mean():+.5f}, mean |d| {np.abs(d).mean():.5f}, median/90%/99% |d| "
             f"{q[0]:.5f}/{q[1]:.5f}/{q[2]:.5f}, max |d| {np.abs(d).max():.5f}; identical radii "
             f"{np.mean(d == 0):.3f}",
             f"  estimation votes that moved to another class (same noise, >= this fraction of noisy samples "
             f"changed label): {np.abs(b['counts'] - a['counts']).sum() / 2 / a['counts'].sum():.2e}",
             f"  certify time fp32 {a['seconds']:.1f} s, bf16 {b['seconds']:.1f} s (loaded machine: indicative only)"]
    return lines


def plot(results: dict[str, tuple[dict, np.ndarray]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5.5 * len(results), 8), squeeze=False)
    for j, (name, (res, y)) in enumerate(results.items()):
        rmax = max(float(res[p]["radius"].max()) for p in res) * 1.05 or 1.0
        grid = np.linspace(0, rmax, 200)
        ax = axes[0, j]
        for prec, style in (("fp32", "-"), ("bf16", "--")):
            ok = res[prec]["predict"] == y
            ax.plot(grid, certified_accuracy(res[prec]["radius"], ok, grid), style, lw=2, label=f"{prec} base model")
        ax.set(title=f"{name}: certified accuracy (sigma={SIGMA})", xlabel="l2 radius", ylabel="certified accuracy",
               ylim=(0, 1))
        ax.legend()
        ax.grid(alpha=0.3)
        d = res["bf16"]["radius"] - res["fp32"]["radius"]
        ax = axes[1, j]
        span = max(float(np.abs(d).max()), 1e-4)
        ax.hist(d, bins=np.linspace(-span, span, 41), color="tab:purple", label=f"{len(d)} inputs")
        ax.set(title=f"{name}: radius difference bf16 - fp32", xlabel="radius difference", ylabel="inputs")
        ax.set_yscale("log")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--digits-epochs", type=int, default=20)
    p.add_argument("--digits-inputs", type=int, default=300)
    p.add_argument("--digits-n", type=int, default=1000)
    p.add_argument("--vgg-train", type=int, default=2000, help="synthetic training images (default 2000)")
    p.add_argument("--vgg-epochs", type=int, default=3)
    p.add_argument("--vgg-inputs", type=int, default=60)
    p.add_argument("--vgg-n", type=int, default=500)
    p.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.digits_epochs, args.digits_inputs, args.digits_n = 2, 16, 100
        args.vgg_train, args.vgg_epochs, args.vgg_inputs, args.vgg_n = 64, 1, 4, 50
    torch.set_num_threads(1)
    results: dict[str, tuple[dict, np.ndarray]] = {}

    x, y = load_digits_split("train")
    model = train_digits_cnn(x, y, sigma=SIGMA, epochs=args.digits_epochs, seed=0, log=None, model_fn=digits_cnn)
    xt, yt = load_digits_split("test")
    xt, yt = xt[:args.digits_inputs], yt[:args.digits_inputs]
    results["digits CNN"] = (certify_both(model, xt, 100, args.digits_n, 1000, channels_last=True), yt)

    x, y = synthetic_cifar(args.vgg_train, seed=0)
    model = train_digits_cnn(x, y, sigma=SIGMA, epochs=args.vgg_epochs, seed=0, log=None, model_fn=vgg_cifar,
                             lr=1e-3)
    xt, yt = synthetic_cifar(args.vgg_inputs, seed=1, amplitude=(0.03, 0.3))
    results["VGG CNN (synthetic 3x32x32)"] = (certify_both(model, xt, 50, args.vgg_n, 250, channels_last=True), yt)

    for name, (res, yy) in results.items():
        print("\n".join(summary(name, res, yy)))
    plot(results, args.out, f"Gaussian CERTIFY with fp32 vs bf16 (autocast, channels-last) base models, same noise\n"
                            f"digits n={args.digits_n}, VGG n={args.vgg_n}, alpha=0.001")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
