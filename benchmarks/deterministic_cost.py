"""Cost of the deterministic certifiers: base-model passes per input (counted by a wrapper) vs the theoretical
count, and wall time per certified input vs one forward pass of the same base model (batch of 1), side by side.

    python benchmarks/deterministic_cost.py [--inputs 4] [--quick]

Timings are the best of ``--repeats`` runs (the machine may be shared). Theoretical passes: DSSN
N = floor(2 lambda q); variable-Lambda B = budget * alpha; deterministic l0 alpha; column smoothing w (one per
band); block smoothing h*w; DPA/SS-DPA k (one per partition model).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from rlcert.certify.core.classifier import BaseClassifier
from rlcert.certify.deterministic.dssn import DSSN
from rlcert.certify.deterministic.lambda_design import PUBLISHED_WEIGHTS, LambdaDesign
from rlcert.certify.deterministic.patch import BlockSmoothing, ColumnSmoothing
from rlcert.certify.deterministic.variable_lambda import DeterministicL0, VariableLambda
from rlcert.certify.poisoning.dpa import DPA, PartitionEnsemble


class CountingModel(nn.Module):
    """Wraps a model and counts the rows (base evaluations) it is called on."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.model(x)


def small_cnn(in_channels: int, side: int, num_classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(32 * ((side + 1) // 2) ** 2, 64), nn.ReLU(),
                         nn.Linear(64, num_classes))


def one_forward_s(model: nn.Module, x1: torch.Tensor, reps: int = 50) -> float:
    with torch.no_grad():
        model(x1)
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x1)
    return (time.perf_counter() - t0) / reps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=4, help="inputs certified per method")
    parser.add_argument("--quick", action="store_true", help="smaller settings")
    parser.add_argument("--repeats", type=int, default=3, help="timings are the best of this many runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n = args.inputs
    side = 16 if args.quick else 32
    q = 255
    img = torch.randint(0, q + 1, (n, 3, side, side)).float() / q
    rows = []

    def run(label, certifier, model, x, expected, model_input):
        counter = CountingModel(model)
        clf = BaseClassifier(counter, 10)
        times = []
        for _ in range(args.repeats):  # best of repeats: the machine is shared
            counter.rows = 0
            t0 = time.perf_counter()
            certs = certifier.certify(clf, x)
            times.append((time.perf_counter() - t0) / len(x))
        per_input = min(times)
        fwd = min(one_forward_s(model, model_input) for _ in range(args.repeats))
        passes = counter.rows / len(x)
        assert len(certs) == len(x)
        rows.append((label, passes, expected, per_input, fwd))

    lam = 0.25 if args.quick else 0.5
    dssn = DSSN(lam=lam, q=q, batch_size=512)
    run(f"DSSN lambda={lam} q=255", dssn, small_cnn(3, side), img, dssn.n_splits, img[:1])
    budget_alpha = 1 if args.quick else 2
    vl = VariableLambda(LambdaDesign(255, 1000, PUBLISHED_WEIGHTS["1/2"]), p=0.5, alpha=budget_alpha, batch_size=500)
    run(f"variable-Lambda p=1/2 alpha={budget_alpha}", vl, small_cnn(6, side), img, vl.budget,
        torch.cat([img[:1], img[:1]], 1))
    l0 = DeterministicL0(alpha=20, q=q)
    run("deterministic l0 alpha=20", l0, small_cnn(6, side), img, 20, torch.cat([img[:1], img[:1]], 1))
    col = ColumnSmoothing(4, theta=0.3)
    run(f"column s=4 theta=0.3 ({side}x{side})", col, small_cnn(6, side), img, side, torch.cat([img[:1], img[:1]], 1))
    blk = BlockSmoothing(12, batch_size=1024)
    run(f"block s=12 ({side}x{side})", blk, small_cnn(6, side), img, side * side, torch.cat([img[:1], img[:1]], 1))

    k = 50
    members = [BaseClassifier(CountingModel(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))), 10)
               for _ in range(k)]
    xd = torch.rand(n, 64) * 16
    times = []
    for _ in range(args.repeats):
        for m in members:
            m.model.rows = 0
        t0 = time.perf_counter()
        DPA().certify(PartitionEnsemble(members, 10), xd)
        times.append((time.perf_counter() - t0) / n)
    per_input = min(times)
    passes = sum(m.model.rows for m in members) / n
    rows.append((f"DPA k={k} (64-d MLPs)", passes, k, per_input, one_forward_s(members[0].model.model, xd[:1])))

    print(f"{'method':38s} {'passes/input':>12s} {'theory':>7s} {'s/input':>9s} {'1 fwd (s)':>10s} {'ratio':>8s}")
    for label, passes, expected, per_input, fwd in rows:
        print(f"{label:38s} {passes:12.0f} {expected:7d} {per_input:9.4f} {fwd:10.2e} {per_input / fwd:8.1f}")
    bad = [r[0] for r in rows if r[1] != r[2]]
    print("passes match theory:", "yes" if not bad else f"NO ({bad})")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
