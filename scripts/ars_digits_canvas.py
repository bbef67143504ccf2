"""ARS benchmark where masking matters: 8x8 digits at a random edge position of a k x k cluttered canvas.

A small-scale stand-in for the ARS paper's 20kBG/5BG "edges" benchmark (CIFAR-10 on 48x48 backgrounds): scikit-learn
digits (train/test split of ``rlcert``'s digits loader) are pasted at a uniformly random position along a
uniformly chosen edge of a k x k canvas whose background is procedural clutter (a smooth random field plus random
strokes and digit-like blobs of the same intensity as the digits), regenerated per image (train and test
backgrounds come from different random streams; training draws fresh canvases every epoch).

Three models at the same total noise sigma, trained end to end with their own noise (Adam):
  vanilla  Gaussian smoothing: CNN(x + sigma z);
  static   one learned input-independent mask w_s: CNN(w_s x + sigma ||w_s|| / sqrt(d) z);
  ars      two-step ARS, sigma1 = --sigma1-factor * sigma (fixed), mask net on m1 only, variance-consistent
           averaging, 1/sigma1^2 + 1/sigma2^2 = 1/sigma^2.
Certification: CERTIFY (n0, n, alpha) through ``AdaptiveCertifier``; l-infinity radius sigma Phi^-1(p_lower)/k
(d = k^2 pixels, one channel). Output: certified accuracy vs l-infinity radius (mean over seeds) per (k, sigma),
and clean accuracy (r = 0) mean +- std.

Each finished (k, sigma, method, seed) is saved at once under runs/ars_canvas/cells/ (rerun to resume; Ctrl-C stops
with one line). The default budget is small (CPU, one thread): see --help.

    python scripts/ars_digits_canvas.py --out runs/ars_canvas --ks 16 32 --sigmas 0.25 0.5 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlcert.certify.adaptive import (  # noqa: E402
    AdaptiveCertifier,
    ARSModel,
    StaticMaskModel,
    VanillaSmoothingModel,
)
from rlcert.certify.io import load_digits_split  # noqa: E402

METHODS = ("vanilla", "static", "ars")


# ---- data -------------------------------------------------------------------------------------------------
def clutter(k: int, rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    """A k x k background in [0, 1]: a blocky smooth field, 2-4 random strokes and 0-2 small digit fragments."""
    low = rng.uniform(0, 0.5, (max(2, k // 6), max(2, k // 6)))
    field = np.kron(low, np.ones((math.ceil(k / low.shape[0]), math.ceil(k / low.shape[1]))))[:k, :k]
    img = field * rng.uniform(0.3, 1.0)
    for _ in range(rng.integers(2, 5)):          # strokes
        r0, c0 = rng.integers(0, k, 2)
        dr, dc = rng.normal(size=2)
        n = rng.integers(3, k // 2 + 2)
        rr = np.clip((r0 + dr * np.arange(n)).astype(int), 0, k - 1)
        cc = np.clip((c0 + dc * np.arange(n)).astype(int), 0, k - 1)
        img[rr, cc] = np.maximum(img[rr, cc], rng.uniform(0.3, 0.8))
    for _ in range(rng.integers(0, 3)):          # 3x3 crops of random digits (distractors)
        d = digits[rng.integers(len(digits))][0]
        r0, c0 = rng.integers(0, 6, 2)
        pr, pc = rng.integers(0, k - 2, 2)
        img[pr:pr + 3, pc:pc + 3] = np.maximum(img[pr:pr + 3, pc:pc + 3], d[r0:r0 + 3, c0:c0 + 3])
    return img


def edge_position(k: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of an 8x8 patch touching a random edge at a uniform position along it."""
    edge, t = int(rng.integers(4)), int(rng.integers(0, k - 8 + 1))
    return [(0, t), (k - 8, t), (t, 0), (t, k - 8)][edge]


def make_canvas(x: np.ndarray, k: int, seed: int, pool: np.ndarray) -> np.ndarray:
    """x (N, 1, 8, 8) -> (N, 1, k, k): each digit on its own clutter background at a random edge position."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(x), 1, k, k), dtype=np.float32)
    for i in range(len(x)):
        bg = clutter(k, rng, pool)
        r, c = edge_position(k, rng)
        bg[r:r + 8, c:c + 8] = x[i, 0]       # the digit replaces the background under it
        out[i, 0] = bg
    return out


# ---- models -----------------------------------------------------------------------------------------------
def classifier_net(k: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(2),
                         nn.Flatten(), nn.Linear(128, 10))


def mask_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 8, 5, padding=4, dilation=2),
                         nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))


def build(method: str, k: int, sigma: float, sigma1_factor: float) -> nn.Module:
    if method == "vanilla":
        return VanillaSmoothingModel(classifier_net(k), sigma, 10)
    if method == "static":
        return StaticMaskModel(classifier_net(k), sigma, 10, (1, k, k), init_logit=2.0)
    return ARSModel(mask_net(), classifier_net(k), sigma, 10, sigma1=sigma1_factor * sigma)


def train(model: nn.Module, x8: np.ndarray, y: np.ndarray, k: int, epochs: int, seed: int, lr: float) -> None:
    """Adam with a cosine schedule; every epoch places the 8x8 digits x8 on fresh canvases (seeded)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    yt = torch.as_tensor(y)
    model.train()
    for epoch in range(epochs):
        xt = torch.as_tensor(make_canvas(x8, k, 10_000 * (seed + 1) + epoch, x8))
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            b = perm[i:i + 64]
            loss = nn.functional.cross_entropy(model(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()


def run_cell(k, sigma, method, seed, data, args) -> dict:
    (x_tr8, y_tr), (x_te, y_te) = data
    torch.manual_seed(1000 * seed + 7)
    model = build(method, k, sigma, args.sigma1_factor)
    t0 = time.perf_counter()
    train(model, x_tr8, y_tr, k, args.epochs, seed, args.lr)
    t_train = time.perf_counter() - t0
    cert = AdaptiveCertifier(n0=args.n0, n=args.n, alpha=args.alpha, batch=args.batch, seed=seed)
    t0 = time.perf_counter()
    certs = cert.certify(model, torch.as_tensor(x_te[: args.n_test]), seeds=list(range(args.n_test)))
    t_cert = time.perf_counter() - t0
    return {"k": k, "sigma": sigma, "method": method, "seed": seed, "train_s": t_train, "certify_s": t_cert,
            "sigmas": list(model.noise_sigmas()), "labels": [int(v) for v in y_te[: args.n_test]],
            "pred": [c.prediction for c in certs], "radius": [c.radius for c in certs]}


def mask_figure(k: int, sigma: float, args, out: Path) -> None:
    """Train one ARS model (seed 0) and draw, for 4 test canvases: x, m1, the mask w(m1) and x_hat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_tr8, y_tr = load_digits_split("train")
    x_te8, _ = load_digits_split("test")
    x_te = torch.as_tensor(make_canvas(x_te8[:4], k, 2, x_tr8))
    torch.manual_seed(7)
    model = build("ars", k, sigma, args.sigma1_factor)
    train(model, x_tr8, y_tr, k, args.epochs, 0, args.lr)
    seen = {}

    def hook(_m, inp, out_):
        seen["m1"], seen["w"] = inp[0].detach(), torch.sigmoid(out_).detach()

    model.mask_net.register_forward_hook(hook)
    captured = {}
    base_forward = model.base_net.forward
    model.base_net.forward = lambda z: (captured.__setitem__("xhat", z.detach()), base_forward(z))[1]
    with torch.no_grad():
        model(x_te, torch.Generator().manual_seed(0))
    fig, axes = plt.subplots(4, 4, figsize=(8, 8.4))
    for i in range(4):
        for j, (name, img) in enumerate((("x", x_te[i, 0]), ("m1 = x + s1 z1", seen["m1"][i, 0]),
                                          ("mask w(m1)", seen["w"][i, 0]), ("x_hat", captured["xhat"][i, 0]))):
            ax = axes[i, j]
            ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(f"ARS masks, k = {k}, sigma = {sigma:g} (sigma1 = {float(model.sigma1()):.2f}), "
                 f"{args.epochs} epochs", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "ars_canvas_masks.png", dpi=90)
    plt.close(fig)
    print(f"wrote {out / 'ars_canvas_masks.png'}")


def certified_accuracy(cell: dict, radii: np.ndarray) -> np.ndarray:
    ok = np.array(cell["pred"]) == np.array(cell["labels"])
    r = np.array(cell["radius"])
    return np.array([(ok & (r >= t)).mean() for t in radii])


def report(cells: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(c["k"], c["sigma"]) for c in cells})
    lines = ["| k | sigma | vanilla | static mask | ARS | seeds |", "|---|---|---|---|---|---|"]
    ks, ss = sorted({k for k, _ in keys}), sorted({s for _, s in keys})
    fig, axes = plt.subplots(len(ks), len(ss), figsize=(4.6 * len(ss), 3.6 * len(ks)), squeeze=False)
    for k, s in keys:
        ax = axes[ks.index(k)][ss.index(s)]
        here = [r for c in cells if (c["k"], c["sigma"]) == (k, s) for r in c["radius"]]
        rmax = 1.1 * max(max(here, default=0.0), 1e-6)
        radii = np.linspace(0, rmax, 60)
        row = [f"| {k} | {s:g} "]
        n_seeds = 0
        for method, c in zip(METHODS, ("C0", "C2", "C3")):
            sel = [cell for cell in cells if (cell["k"], cell["sigma"], cell["method"]) == (k, s, method)]
            if not sel:
                row.append("| - ")
                continue
            curves = np.array([certified_accuracy(cell, radii) for cell in sel])
            mean = curves.mean(0)
            ax.plot(radii, mean, color=c, label={"vanilla": "vanilla RS", "static": "static mask",
                                                   "ars": "ARS"}[method])
            if len(sel) > 1:
                ax.fill_between(radii, curves.min(0), curves.max(0), color=c, alpha=0.15)
            acc0 = curves[:, 0]
            row.append(f"| {100 * acc0.mean():.1f} ({100 * acc0.std():.1f}) ")
            n_seeds = max(n_seeds, len(sel))
        lines.append("".join(row) + f"| {n_seeds} |")
        ax.set_title(f"k = {k} (d = {k * k}), sigma = {s:g}")
        ax.set_xlabel("l-infinity radius")
        ax.set_ylabel("certified accuracy")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    fig.suptitle("Digits on cluttered k x k canvases (random edge position):\ncertified accuracy, mean over seeds "
                 "(band: min-max)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "ars_canvas_certified.png", dpi=100)
    plt.close(fig)
    (out / "table.md").write_text("clean accuracy (r = 0, CERTIFY), % mean (std over seeds)\n\n" + "\n".join(lines)
                                  + "\n")
    print("\n".join(lines))
    print(f"wrote {out / 'ars_canvas_certified.png'} and {out / 'table.md'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/ars_canvas"), help="output folder (under runs/)")
    p.add_argument("--ks", type=int, nargs="+", default=[16, 32], help="canvas sizes (>= 8; default 16 32)")
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.25, 0.5], help="total noise levels")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training / certification seeds")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="models to compare")
    p.add_argument("--sigma1-factor", type=float, default=2.0, help="ARS sigma1 = factor * sigma (> 1; default 2)")
    p.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    p.add_argument("--n-test", type=int, default=100, help="certified test images (default 100)")
    p.add_argument("--max-train", type=int, default=-1, help="use at most this many training digits (-1: all)")
    p.add_argument("--n0", type=int, default=20, help="selection samples (default 20)")
    p.add_argument("--n", type=int, default=500, help="estimation samples (default 500)")
    p.add_argument("--alpha", type=float, default=0.001, help="failure probability (default 0.001)")
    p.add_argument("--batch", type=int, default=500, help="pipeline runs per forward pass (default 500)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--mask-figure", action="store_true",
                   help="only train one ARS model at the first k and sigma and draw its masks (ars_canvas_masks.png)")
    args = p.parse_args(argv)
    if min(args.ks) < 8:
        raise SystemExit(f"--ks must all be >= 8 (the digit is 8x8), got {args.ks}")
    if min(args.sigmas) <= 0 or not args.sigma1_factor > 1:
        raise SystemExit("--sigmas must be > 0 and --sigma1-factor > 1")
    if min(args.epochs, args.n_test, args.n0, args.n, args.batch, args.threads) < 1:
        raise SystemExit("--epochs, --n-test, --n0, --n, --batch and --threads must be integers >= 1")
    torch.set_num_threads(args.threads)
    from tqdm.auto import tqdm

    cells_dir = args.out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    if args.mask_figure:
        mask_figure(args.ks[0], args.sigmas[0], args, args.out)
        return 0
    x_tr8, y_tr = load_digits_split("train")
    if args.max_train >= 1:
        x_tr8, y_tr = x_tr8[: args.max_train], y_tr[: args.max_train]
    x_te8, y_te = load_digits_split("test")
    todo = [(k, s, m, seed) for k in args.ks for s in args.sigmas for seed in args.seeds for m in args.methods]
    data_cache: dict[int, tuple] = {}
    try:
        for k, s, m, seed in tqdm(todo, desc="ars canvas", unit="model"):
            path = cells_dir / f"k{k}_s{s:g}_{m}_seed{seed}.json"
            if path.exists():
                continue
            if k not in data_cache:
                data_cache[k] = ((x_tr8, y_tr), (make_canvas(x_te8, k, 2, x_tr8), y_te))
            cell = run_cell(k, s, m, seed, data_cache[k], args)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cell))
            tmp.rename(path)
            acc = np.mean(np.array(cell["pred"]) == np.array(cell["labels"]))
            tqdm.write(f"k={k} sigma={s:g} {m} seed={seed}: clean acc {acc:.3f}, train {cell['train_s']:.0f}s, "
                       f"certify {cell['certify_s']:.0f}s")
    except KeyboardInterrupt:
        done = len(list(cells_dir.glob("*.json")))
        print(f"interrupted: {done} finished models kept in {cells_dir}; rerun to resume")
        return 130
    cells = [json.loads(f.read_text()) for f in sorted(cells_dir.glob("*.json"))]
    cells = [c for c in cells if c["k"] in args.ks and c["sigma"] in args.sigmas and c["method"] in args.methods]
    report(cells, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
