"""Train a DPA or SS-DPA ensemble on sklearn's 8x8 digits, one base model per partition, and certify it.

    python scripts/train_dpa.py --mode dpa --partitions 50 --out runs/dpa/dpa_k50            # train all + evaluate
    python scripts/train_dpa.py --mode dpa --partitions 50 --out runs/dpa/dpa_k50 --start 0 --stop 25 --no-eval
    python scripts/train_dpa.py --mode dpa --partitions 50 --out runs/dpa/dpa_k50 --start 25 --stop 50

Shardable by partition range (--start/--stop) and resumable: a finished partition file is written atomically and
skipped on re-runs. Base model i is trained with seed i on partition i only, sorted lexicographically, with its own
normalisation statistics (thesis 7.2.2). SS-DPA first fits a PCA embedding on all (unlabelled) training samples,
then trains a linear head per partition. Evaluation (once all k files exist) prints/saves clean accuracy, mean base
accuracy and the median certified robustness under both conventions (strict, and Table 7.1's "1 + strict").
Data: the certification core's digits split (``rlcert.certify.io.load_digits_split``: 1397 train / 400 test,
the CLI's ``--data digits``); partitions hash/sort the integer pixels 0..16. The saved models take images
x = pixels/16 of shape (B, 1, 8, 8) (or (B, 64)); certify them with
``python -m rlcert.certify --method dpa --partitions-dir OUT --data digits --out dpa.tsv``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from rlcert.certify.core.metrics import certified_accuracy
from rlcert.certify.core.votes import median_certified_robustness
from rlcert.certify.io import load_digits_split
from rlcert.certify.poisoning.dpa import PartitionEnsemble, certify_vote_matrix, train_partitions


def evaluate(out: Path, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    ens = PartitionEnsemble.load(out)
    votes = ens.predict_all(torch.as_tensor(x_test))
    pred, rho = certify_vote_matrix(votes, ens.num_classes)
    correct = pred == y_test
    summary = {
        "k": ens.k, "n_test": int(len(y_test)), "clean_accuracy": float(correct.mean()),
        "base_accuracy": float((votes == y_test[:, None]).mean()),
        "median_certified_strict": median_certified_robustness(rho, correct, "strict"),
        "median_certified_table7_1": median_certified_robustness(rho, correct, "table7.1"),
        "certified_accuracy": dict(zip(range(ens.k // 2 + 1),
                                       certified_accuracy(rho, correct, np.arange(ens.k // 2 + 1)).tolist())),
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
    x_tr, y_tr = load_digits_split("train")
    x_te, y_te = load_digits_split("test")
    train_partitions(x_tr, y_tr, k, args.out, mode=args.mode, start=args.start, stop=stop, epochs=args.epochs,
                     hidden=args.hidden, pca_dim=args.pca_dim)
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
