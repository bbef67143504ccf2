"""Train the tiny digits CNN with noise augmentation and save its state dict.

    python scripts/train_digits.py --sigma 0.25 --epochs 30 --out runs/certify/digits_cnn_s0.25.pt

Then certify it:  python -m rlcert.certify --model rlcert.certify.models:digits_cnn --weights <out> --data digits ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from rlcert.certify.cli.data import load_digits_split
from rlcert.certify.models.digits import train_digits_cnn


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sigma", type=float, default=0.25, help="training-noise standard deviation (default 0.25)")
    p.add_argument("--noise", default="gaussian", choices=("gaussian", "laplace", "uniform", "ssn"))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="where to save the state dict (.pt)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    x, y = load_digits_split("train")
    model = train_digits_cnn(x, y, sigma=args.sigma, epochs=args.epochs, noise=args.noise, seed=args.seed)
    xt, yt = load_digits_split("test")
    with torch.no_grad():
        acc = float(np.mean(model(torch.as_tensor(xt)).argmax(1).numpy() == yt))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    print(f"clean test accuracy {acc:.3f}; saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
