"""Train a DPA or SS-DPA ensemble on sklearn's 8x8 digits, one base model per partition, and certify it.

    python scripts/train_dpa.py --mode dpa --partitions 50 --out runs/dpa/dpa_k50            # train all + evaluate
    python scripts/train_dpa.py --mode dpa --partitions 50 --out runs/dpa/dpa_k50 --start 0 --stop 25 --no-eval
    python scripts/train_dpa.py --mode dpa --partitions 50 --out runs/dpa/dpa_k50 --start 25 --stop 50

Shardable by partition range (--start/--stop) and resumable: a finished partition file is written atomically and
skipped on re-runs. Base model i is trained with seed i on partition i only, sorted lexicographically, with its own
normalisation statistics (thesis 7.2.2). SS-DPA first fits a PCA embedding on all (unlabelled) training samples,
then trains a linear head per partition. Evaluation (once all k files exist) prints/saves clean accuracy, mean base
accuracy and the median certified robustness under both conventions (strict, and Table 7.1's "1 + strict").
Data: ``sklearn.datasets.load_digits`` (integer pixels 0..16; partitions hash/sort these integers); every 4th
sample is the test set. The saved models take images x = pixels/16 of shape (B, 1, 8, 8) (or (B, 64)), as the
certify CLI's digits data.
TODO after merge: switch to the certification core's digits loader.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from tqdm import tqdm

from rlcert.certify.ablation_models import PartitionMLP, PartitionModel
from rlcert.certify.dpa import PartitionEnsemble, certify_vote_matrix, dpa_partition, partition_members, ssdpa_partition
from rlcert.certify.votes import median_certified_robustness


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = load_digits()
    x, y = d.data.astype(np.int64), d.target.astype(np.int64)
    test = np.arange(len(x)) % 4 == 0
    return x[~test], y[~test], x[test], y[test]


def pca_projection(x: np.ndarray, dim: int) -> torch.Tensor:
    """Deterministic PCA basis (d, dim) of the unlabelled training samples (sign fixed: largest entry positive)."""
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc.astype(np.float64), full_matrices=False)
    basis = vt[:dim].T
    signs = np.sign(basis[np.abs(basis).argmax(0), np.arange(dim)])
    return torch.tensor(basis * signs, dtype=torch.float32)


def train_partition(x: np.ndarray, y: np.ndarray, index: int, k: int, mode: str, projection: torch.Tensor | None,
                    epochs: int, hidden: int) -> PartitionModel:
    torch.manual_seed(index)
    feats = torch.tensor(x, dtype=torch.float32)
    if projection is not None:
        feats = feats @ projection
    in_features = feats.shape[1]
    if len(x) == 0:  # empty partition: a deterministic model that always predicts class 0
        net = PartitionMLP(in_features, 10, hidden=0)
        for p in net.parameters():
            torch.nn.init.zeros_(p)
        return PartitionModel(net, torch.zeros(in_features), torch.ones(in_features), projection, index, k, 10, mode,
                              input_scale=16.0)
    mean = feats.mean(0)
    std = feats.std(0, unbiased=False).clamp_min(1.0)  # per-partition statistics (thesis footnote 5)
    z = (feats - mean) / std
    target = torch.tensor(y)
    net = PartitionMLP(in_features, 10, hidden=hidden)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(epochs):  # full batch, fixed order: a deterministic function of the (sorted) partition
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(z), target)
        loss.backward()
        opt.step()
    return PartitionModel(net, mean, std, projection, index, k, 10, mode, input_scale=16.0)


def evaluate(out: Path, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    ens = PartitionEnsemble.load(out)
    votes = ens.predict_all(torch.tensor(x_test, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16)
    pred, rho = certify_vote_matrix(votes, ens.num_classes)
    correct = pred == y_test
    summary = {
        "k": ens.k, "n_test": int(len(y_test)), "clean_accuracy": float(correct.mean()),
        "base_accuracy": float((votes == y_test[:, None]).mean()),
        "median_certified_strict": median_certified_robustness(rho, correct, "strict"),
        "median_certified_table7_1": median_certified_robustness(rho, correct, "table7.1"),
        "certified_accuracy": {int(r): float(np.mean(correct & (rho >= r))) for r in range(ens.k // 2 + 1)},
    }
    np.savez(out / "votes.npz", votes=votes, prediction=pred, rho=rho, label=y_test)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["dpa", "ssdpa"], default="dpa")
    parser.add_argument("--partitions", type=int, default=50, help="number of partitions k (>= 1)")
    parser.add_argument("--out", type=Path, required=True, help="folder for partition_*.pt and the summary")
    parser.add_argument("--start", type=int, default=0, help="first partition index to train (inclusive)")
    parser.add_argument("--stop", type=int, default=None, help="last partition index to train (exclusive; default k)")
    parser.add_argument("--epochs", type=int, default=200, help="full-batch Adam steps per base model")
    parser.add_argument("--hidden", type=int, default=64, help="DPA MLP hidden width (0 = linear); SS-DPA is linear")
    parser.add_argument("--pca-dim", type=int, default=10, help="SS-DPA embedding dimension")
    parser.add_argument("--no-eval", action="store_true", help="only train this shard")
    args = parser.parse_args(argv)
    k = args.partitions
    stop = k if args.stop is None else args.stop
    if k < 1:
        parser.error(f"--partitions must be >= 1, got {k}")
    if not (0 <= args.start <= stop <= k):
        parser.error(f"need 0 <= --start <= --stop <= k={k}, got {args.start}, {stop}")
    torch.set_num_threads(1)
    x_tr, y_tr, x_te, y_te = digits_split()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.mode == "dpa":
        ids, projection, hidden = dpa_partition(x_tr, k), None, args.hidden
    else:
        ids, projection, hidden = ssdpa_partition(x_tr, k), pca_projection(x_tr, args.pca_dim), 0
    for i in tqdm(range(args.start, stop), desc=f"{args.mode} k={k}", file=sys.stdout):
        path = args.out / f"partition_{i:05d}.pt"
        if path.exists():
            continue
        idx = partition_members(ids, i, x_tr, y_tr if args.mode == "dpa" else None)
        train_partition(x_tr[idx], y_tr[idx], i, k, args.mode, projection, args.epochs, hidden).save(path)
    if args.no_eval:
        return 0
    if len(list(args.out.glob("partition_*.pt"))) < k:
        print(f"{args.out}: not all {k} partitions trained yet; skipping evaluation")
        return 0
    summary = evaluate(args.out, x_te, y_te)
    print(json.dumps({key: v for key, v in summary.items() if key != "certified_accuracy"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
