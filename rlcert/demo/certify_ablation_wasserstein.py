"""Randomized ablation and Wasserstein smoothing on the digits, next to their baselines (thesis Ch. 2 and Ch. 5).

    python -m rlcert.demo.certify_ablation_wasserstein --out runs/demo [--quick]

Data: the certification core's digits split (1397 training / 400 held-out test images, the CLI's ``--data digits``).
Base models: the digits CNN (``rlcert.certify.models.digits_cnn``, width 32, hidden 128) trained with the core's
``train_digits_cnn`` on each certifier's own noise object (``noise.augment``: the same object certification
samples from). Certification runs through the CLI (``python -m rlcert.certify --method ...``, one TSV per setting):

* l0 (pixels): randomized ablation (``--method ablation --k K``, NULL encoding, 2 input channels) next to the
  deterministic l0 certificate of the toolkit (``--method deterministic-l0``, alpha = 8 evaluations).
* Wasserstein (W1, l2 ground metric, normalised-mass units): Wasserstein smoothing (``--method wasserstein``,
  Laplace flow noise of std sigma) next to its Laplace pixel-noise baseline (``--noise-domain pixel``, Eq. 5.21).

Everything is written under ``<out>/ablation_wasserstein/`` (weights and TSVs are cached; a rerun only plots):
``certified_accuracy.png`` and ``summary.json``. ``run(out, quick)`` is the demo section.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rlcert.certify.cli.certify import build_parser
from rlcert.certify.cli.certify import main as certify_main
from rlcert.certify.cli.tsv import load_tsv
from rlcert.certify.core.metrics import certified_accuracy
from rlcert.certify.core.registry import get
from rlcert.certify.core.votes import median_certified_robustness
from rlcert.certify.io import load_digits_split
from rlcert.certify.models.digits import digits_cnn, train_digits_cnn
from rlcert.certify.randomized.ablation import RandomizedAblationCertifier
from rlcert.certify.randomized.wasserstein import WassersteinCertifier

SEED = 0
MODULE = "rlcert.demo.certify_ablation_wasserstein"


def digits_null_cnn() -> nn.Module:
    """CLI factory: digits CNN on 2-channel NULL-encoded inputs (randomized ablation)."""
    return digits_cnn(in_channels=2, width=32, hidden=128)


def digits_bounds_cnn() -> nn.Module:
    """CLI factory: digits CNN on 2-channel [upper, lower] inputs (deterministic l0)."""
    return digits_cnn(in_channels=2, width=32, hidden=128)


def digits_plain_cnn() -> nn.Module:
    """CLI factory: digits CNN on 1-channel images (Wasserstein / Laplace-pixel smoothing)."""
    return digits_cnn(in_channels=1, width=32, hidden=128)


# label -> (family, CLI --method, its flags, model factory name)
SETTINGS: dict[str, tuple[str, str, list[str], str]] = {
    "randomized ablation k=12": ("l0", "ablation", ["--k", "12"], "digits_null_cnn"),
    "randomized ablation k=16": ("l0", "ablation", ["--k", "16"], "digits_null_cnn"),
    "deterministic l0 (alpha=8)": ("l0", "deterministic-l0", ["--l0-alpha", "8", "--q", "16", "--l0-unit", "pixel"],
                                   "digits_bounds_cnn"),
    **{f"Wasserstein sigma={s}": ("w1", "wasserstein", ["--sigma", s], "digits_plain_cnn")
       for s in ("0.005", "0.01", "0.02")},
    **{f"Laplace pixels sigma={s}": ("w1", "wasserstein", ["--sigma", s, "--noise-domain", "pixel"], "digits_plain_cnn")
       for s in ("0.005", "0.01", "0.02")},
}
UNITS = {"l0": "l0 radius (pixels)", "w1": "W1 radius, l2 ground metric (normalised mass)"}
RADII = {"l0": [1, 2, 3], "w1": [0.005, 0.01, 0.015]}  # certified accuracy reported at these radii


def training_noise(cert) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """The training augmentation of a certifier: its noise object (ablation / flows: independent per image, which
    trains better than the thesis' batch-shared draw on this small data set) or its ``sample`` (deterministic l0)."""
    if isinstance(cert, (RandomizedAblationCertifier, WassersteinCertifier)):
        return lambda xb, g: cert.noise.augment(xb, g, same_for_batch=False)
    return lambda xb, g: cert.sample(xb, g)


@torch.no_grad()
def noisy_accuracy(model: nn.Module, noise: Callable, x: np.ndarray, y: np.ndarray) -> float:
    """Base-classifier accuracy on one noise draw per test image (the thesis' "base classifier accuracy")."""
    xb = noise(torch.as_tensor(x), torch.Generator().manual_seed(SEED + 1))
    return float((model(xb).argmax(1).numpy() == y).mean())


def run(out: Path, quick: bool) -> list[str]:
    """Demo section: train, certify through the CLI, plot; returns markdown lines for the demo report."""
    torch.set_num_threads(1)
    out = Path(out) / "ablation_wasserstein"
    out.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr = load_digits_split("train")
    x_te, y_te = load_digits_split("test")
    images, epochs, n0, n = (40, 4, 32, 200) if quick else (400, 40, 100, 2000)
    sampling = ["--n0", str(n0), "--n", str(n), "--alpha", "0.05", "--batch", "1000", "--seed", str(SEED)]
    results: dict[str, dict] = {}
    lines, commands = [], []
    for i, (label, (family, method, flags, factory)) in enumerate(SETTINGS.items()):
        print(f"[{i + 1}/{len(SETTINGS)}] {label}", flush=True)
        tag = f"{method}_{'_'.join(f.lstrip('-') for f in flags)}_e{epochs}"
        weights, tsv = out / f"{tag}.pt", out / f"{tag}_n{n}.tsv"
        argv = ["--model", f"{MODULE}:{factory}", "--weights", str(weights), "--data", "digits", "--method", method,
                *flags, *(sampling if family == "w1" or method == "ablation" else []), "--max", str(images),
                "--device", "cpu", "--out", str(tsv)]
        cert = get(method).from_arguments(build_parser(method).parse_args(argv))
        noise = training_noise(cert)
        t0 = time.perf_counter()
        model_fn = globals()[factory]
        if weights.exists():
            model = model_fn()
            model.load_state_dict(torch.load(weights, weights_only=True))
            model.eval()
        else:
            model = train_digits_cnn(x_tr, y_tr, epochs=epochs, noise=noise, log=None, seed=SEED, model_fn=model_fn)
            torch.save(model.state_dict(), weights)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        code = certify_main([*argv, "--no-progress"])
        if code == 130:  # Ctrl-C inside the CLI: finished rows are kept, the rerun resumes
            raise KeyboardInterrupt
        if code != 0:
            raise RuntimeError(f"python -m rlcert.certify {' '.join(argv)} failed (see stderr)")
        certify_s = time.perf_counter() - t0
        commands.append("python -m rlcert.certify " + " ".join(argv))
        d = load_tsv(tsv)
        correct = d["correct"] == 1
        med = median_certified_robustness(d["radius"], correct)
        results[label] = {
            "family": family, "unit": UNITS[family], "images": int(len(correct)),
            "clean_accuracy": float(correct.mean()),
            "base_accuracy_noisy": noisy_accuracy(model, noise, x_te[:images], y_te[:images]),
            "median_certified": None if med is None else float(med),
            "certified_accuracy": {str(r): float(certified_accuracy(d["radius"], correct, [r])[0])
                                   for r in RADII[family]},
            "train_s": round(train_s, 1), "certify_s": round(certify_s, 1),
            "radii": d["radius"].tolist(), "correct": correct.tolist()}
        r = results[label]
        ca = ", ".join(f"{k}: {v:.3f}" for k, v in r["certified_accuracy"].items())
        lines.append(f"- {label}: clean accuracy {r['clean_accuracy']:.3f}, base accuracy on noisy inputs "
                     f"{r['base_accuracy_noisy']:.3f}, median certified {'N/A' if med is None else f'{med:.4g}'}; "
                     f"certified accuracy at {ca}")
    _plot(results, out / "certified_accuracy.png", images, n0, n)
    (out / "summary.json").write_text(json.dumps({"seed": SEED, "epochs": epochs, "n0": n0, "n": n, "alpha": 0.05,
                                                  "results": results}, indent=1) + "\n")
    return (lines + ["", "Certified with:", "", "```bash", *commands, "```", "",
                     f"![ablation and Wasserstein certified accuracy]({out.name}/certified_accuracy.png)"])


def _plot(results: dict[str, dict], path: Path, images: int, n0: int, n: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, family, title in [(axes[0], "l0", "l0 (sparse) attacks"),
                              (axes[1], "w1", "Wasserstein attacks (W1, l2 ground metric)")]:
        fam = {k: v for k, v in results.items() if v["family"] == family}
        top = max([max(v["radii"]) for v in fam.values()] + [1e-9])
        for label, r in fam.items():
            radii, correct = np.array(r["radii"]), np.array(r["correct"])
            if family == "l0":
                grid = np.arange(0, top + 2)
                ax.step(grid, certified_accuracy(radii, correct, grid), where="post", label=label)
            else:  # colour = sigma, solid = Wasserstein (flow noise), dashed = Laplace pixel-noise baseline
                grid = np.linspace(0, top * 1.05, 300)
                sigmas = sorted({lab.split("sigma=")[1] for lab in fam}, key=float)
                colour = f"C{sigmas.index(label.split('sigma=')[1])}"
                style = "--" if label.startswith("Laplace") else "-"
                ax.plot(grid, certified_accuracy(radii, correct, grid), style, color=colour, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(UNITS[family])
        ax.set_ylabel("certified accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Digits test split ({images} held-out images); randomized: n0={n0}, n={n}, alpha=0.05; "
                 "deterministic l0: exact", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="writes <out>/ablation_wasserstein/")
    parser.add_argument("--quick", action="store_true", help="4 epochs, 40 test images, n = 200")
    args = parser.parse_args(argv)
    try:
        lines = run(args.out, args.quick)
    except KeyboardInterrupt:
        print(f"interrupted: finished weights and TSV rows are kept under {args.out / 'ablation_wasserstein'}; "
              "rerun to resume", flush=True)
        return 130
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
