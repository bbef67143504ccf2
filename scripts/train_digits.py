"""Train the tiny digits CNN with noise augmentation and save its state dict.

    python scripts/train_digits.py --noise gaussian --sigma 0.25 --epochs 30 --out runs/certify/digits_s0.25.pt

The augmentation is the certifier's own noise object (``rlcert.certify.randomized.noise.make_noise``: the same
class, parameters and sampler as ``--method NOISE --sigma SIGMA`` at certification). Then certify it:

    python -m rlcert.certify --model rlcert.certify.models:digits_cnn --weights runs/certify/digits_s0.25.pt \\
        --data digits --method gaussian --sigma 0.25 --n 1000 --max 20 --out runs/certify/gaussian.tsv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from rlcert.certify.io import load_digits_split
from rlcert.certify.models.digits import train_digits_cnn
from rlcert.certify.randomized.noise import NOISES, make_noise


def main(argv: list[str] | None = None) -> int:
    make_noise("gaussian", sigma=1.0)  # registers every noise class (fills NOISES for --noise's choices)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--noise", default="gaussian", choices=sorted(NOISES),
                   help="noise distribution (default gaussian), as the certifier's --method")
    p.add_argument("--sigma", type=float, default=0.25,
                   help="noise standard deviation per coordinate (default 0.25; 0 trains without noise)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation, batches and noise (default 0)")
    p.add_argument("--out", type=Path, required=True, help="where to save the state dict (.pt)")
    args = p.parse_args(argv)
    if args.sigma < 0 or args.epochs < 1:
        p.error(f"--sigma must be >= 0 and --epochs >= 1, got {args.sigma}, {args.epochs}")
    torch.set_num_threads(1)
    noise = make_noise(args.noise, sigma=args.sigma) if args.sigma > 0 else args.noise
    x, y = load_digits_split("train")
    model = train_digits_cnn(x, y, sigma=args.sigma, epochs=args.epochs, noise=noise, seed=args.seed)
    xt, yt = load_digits_split("test")
    with torch.no_grad():
        acc = float(np.mean(model(torch.as_tensor(xt)).argmax(1).numpy() == yt))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    print(f"clean test accuracy {acc:.3f}; saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
