"""Deterministic certifiers on sklearn's 8x8 digits: train tiny base models and certify the test split.

    python -m rlcert.certify.deterministic_demo --out runs/deterministic [--quick]

Digits are integers 0..16, so ``x = pixel/16`` lies exactly on the q = 16 grid the l1/lp certificates need.
Sections: DSSN (l1), variable-Lambda (l_{1/2}, MILP design), deterministic l0 (pixels), column smoothing (2x2..
patches, theta = 0.3) and DPA (poisoning). Each base model is trained on the certifier's own noise/ablation
(``certifier.sample``: one random outcome per image; column smoothing: one random band per batch, as in Ch.6).
Writes ``certified_accuracy.png`` and ``summary.json``; ``run(out, quick)`` is the demo section.
TODO after merge: use the certification core's digits loader and TSV writer.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from rlcert.certify.ablation_models import DigitsCNN
from rlcert.certify.classifier import BaseClassifier
from rlcert.certify.dpa import PartitionEnsemble, certify_vote_matrix, dpa_partition, partition_members
from rlcert.certify.dssn import DSSN
from rlcert.certify.lambda_design import milp_design, power_ecm
from rlcert.certify.patch import ColumnSmoothing, encode_null
from rlcert.certify.variable_lambda import DeterministicL0, VariableLambda
from rlcert.certify.votes import median_certified_robustness

Q = 16


def digits_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test); x (N, 1, 8, 8) = pixel/16 on the q = 16 grid; every 4th sample is test."""
    d = load_digits()
    x = torch.tensor(d.data.reshape(-1, 1, 8, 8), dtype=torch.float32) / Q
    y = torch.tensor(d.target, dtype=torch.long)
    test = torch.arange(len(x)) % 4 == 0
    return x[~test], y[~test], x[test], y[test]


def train_base(in_channels: int, noise: Callable[[torch.Tensor, torch.Generator], torch.Tensor], x: torch.Tensor,
               y: torch.Tensor, epochs: int, seed: int = 0) -> DigitsCNN:
    """Cross-entropy training of a DigitsCNN on ``noise(batch, generator)`` (Adam 1e-3, batch 64)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = DigitsCNN(in_channels)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(model(noise(x[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def column_noise(cert: ColumnSmoothing) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    def noise(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        masks = cert.masks(xb.shape[2], xb.shape[3])
        pos = int(torch.randint(len(masks), (1,), generator=gen))  # one band for the whole batch (Ch.6)
        return encode_null(xb) * masks[pos]
    return noise


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def certified_curve(radii: np.ndarray, correct: np.ndarray, grid: np.ndarray) -> list[float]:
    return [float(np.mean(correct & (radii >= r))) for r in grid]


def run(out: Path, quick: bool) -> list[str]:
    torch.set_num_threads(1)
    out = Path(out) / "deterministic"
    out.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr, x_te, y_te = digits_data()
    if quick:
        x_te, y_te = x_te[:60], y_te[:60]
    epochs = 3 if quick else 25
    results: dict[str, dict] = {}
    methods = {
        "DSSN l1 (lambda=1, N=32)": (DSSN(lam=1.0, q=Q), 1, "l1 radius"),
        "variable-Lambda l_1/2 (alpha=2, B=200)": (
            VariableLambda(milp_design(power_ecm(0.5), Q, 100, time_limit=20), p=0.5, alpha=2.0), 2, "l_1/2 radius"),
        "deterministic l0 (alpha=8 pixels)": (DeterministicL0(alpha=8, q=Q, unit="pixel"), 2, "pixels"),
        "column s=2, theta=0.3": (ColumnSmoothing(2, theta=0.3), 2, "patch side m"),
    }
    lines = []
    for label, (cert, channels, unit) in methods.items():
        t0 = time.perf_counter()
        noise = column_noise(cert) if isinstance(cert, ColumnSmoothing) else (lambda xb, g, c=cert: c.sample(xb, g))
        model = train_base(channels, noise, x_tr, y_tr, epochs)
        torch.save(model.state_dict(), out / f"{cert.name}.pt")
        t1 = time.perf_counter()
        certs = cert.certify(BaseClassifier(model, 10), x_te)
        t2 = time.perf_counter()
        radii = np.array([c.radius for c in certs])
        correct = np.array([c.prediction for c in certs]) == y_te.numpy()
        passes = int(certs[0].counts.sum()) if cert.name != "column" else 8
        results[label] = {"unit": unit, "radii": radii.tolist(), "correct": correct.tolist(),
                          "clean_accuracy": float(correct.mean()),
                          "median_certified": _round(median_certified_robustness(radii, correct)),
                          "train_s": t1 - t0, "certify_s_per_input": (t2 - t1) / len(x_te), "passes": passes}
        med = results[label]["median_certified"]
        lines.append(f"- {label}: clean accuracy {correct.mean():.3f}, median certified "
                     f"{'N/A' if med is None else med} ({unit}), {(t2 - t1) / len(x_te) * 1e3:.1f} ms/input")

    # DPA on the flat integer digits with a per-partition 1-NN-free tiny linear learner (deterministic, seed = i)
    t0 = time.perf_counter()
    k = 10 if quick else 30
    xtr_int = (x_tr.flatten(1) * Q).round().long().numpy()
    ids = dpa_partition(xtr_int, k)
    members = []
    for i in range(k):
        idx = partition_members(ids, i, xtr_int, y_tr.numpy())
        torch.manual_seed(i)
        net = torch.nn.Linear(64, 10)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        xi, yi = torch.tensor(xtr_int[idx], dtype=torch.float32) / Q, y_tr[idx]
        for _ in range(100 if quick else 300):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xi), yi).backward()
            opt.step()
        members.append(BaseClassifier(lambda z, net=net: net(z.flatten(1)), 10))
    votes = PartitionEnsemble(members, 10).predict_all(x_te)
    pred, rho = certify_vote_matrix(votes, 10)
    correct = pred == y_te.numpy()
    label = f"DPA k={k} (linear base models)"
    results[label] = {"unit": "poisoned samples", "radii": rho.astype(float).tolist(), "correct": correct.tolist(),
                      "clean_accuracy": float(correct.mean()),
                      "median_certified": median_certified_robustness(rho, correct),
                      "median_certified_table7_1": median_certified_robustness(rho, correct, "table7.1"),
                      "train_s": time.perf_counter() - t0, "passes": k}
    lines.append(f"- {label}: clean accuracy {correct.mean():.3f}, median certified "
                 f"{results[label]['median_certified']} (strict) / {results[label]['median_certified_table7_1']} "
                 "(Table 7.1 convention) poisoned samples")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6.4))
    axes = axes.flatten()
    for ax in axes[len(results):]:
        ax.axis("off")
    for ax, (label, r) in zip(axes, results.items()):
        radii, correct = np.array(r["radii"]), np.array(r["correct"])
        top = max(radii.max(), 1e-9)
        grid = np.linspace(0, top * 1.05, 200) if label.startswith(("DSSN", "variable")) else np.arange(0, top + 2)
        curve = certified_curve(radii, correct, grid)
        ax.step(grid, curve, where="post") if len(grid) < 50 else ax.plot(grid, curve)
        ax.set_title(label, fontsize=9)
        ax.set_ylabel("certified accuracy")
        ax.set_xlabel(r["unit"])
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Deterministic certificates, digits test split ({len(y_te)} images, exact)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "certified_accuracy.png", dpi=110)
    plt.close(fig)
    (out / "summary.json").write_text(json.dumps({k: {kk: v for kk, v in r.items() if kk not in ("radii", "correct")}
                                                  for k, r in results.items()}, indent=1) + "\n")
    return lines + ["", f"![deterministic certified accuracy]({out.name}/certified_accuracy.png)"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/deterministic"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    for line in run(args.out, args.quick):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
