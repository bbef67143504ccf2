"""Noisy samples/s through CERTIFY vs plain forward passes of the same model at the same batch size.

    python benchmarks/certify_throughput.py [--batch 1000] [--rounds 5] [--device cpu|cuda|all]

For each device (CPU with one thread; CUDA too when available) and each model ("digits": the demo CNN on 1x8x8;
"cifar": a small 3x32x32 CNN), rounds alternate between (a) ``model(x)`` on a fixed batch of ``batch`` inputs and
(b) ``GaussianCertifier.certify`` / ``LaplaceCertifier.certify`` on a few inputs (n0 = 100 selection + n
estimation samples each, ``batch`` samples per forward pass). The median samples/s of each and their ratio are
printed. CERTIFY does strictly more work per sample (draw noise, add, argmax, count), so the ratio is < 1.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from rlcert.certify import BaseClassifier, GaussianCertifier, LaplaceCertifier
from rlcert.certify.models.digits import digits_cnn


def cifar_cnn() -> nn.Module:
    """A small CIFAR-sized CNN (~0.3M parameters) for the benchmark."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 8 * 8, 64), nn.ReLU(),
        nn.Linear(64, 10))


# name -> (factory, input shape, estimation samples n per input); CERTIFY calls use --inputs inputs of n0 + n each
MODELS = {"digits": (digits_cnn, (1, 8, 8), 10_000), "cifar": (cifar_cnn, (3, 32, 32), 2_000)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def bench(model_name: str, device: torch.device, batch: int, n: int | None, inputs: int, rounds: int) -> list[str]:
    factory, shape, default_n = MODELS[model_name]
    n = n or default_n
    model = factory().to(device).eval()
    clf = BaseClassifier(model, 10, device=device)
    xb = torch.rand((batch, *shape), device=device)
    x = torch.rand((inputs, *shape), device=device)
    certifiers = {"gaussian": GaussianCertifier(0.25, n0=100, n=n, batch=batch),
                  "laplace": LaplaceCertifier(sigma=0.25, n0=100, n=n, batch=batch)}
    per_call = inputs * (100 + n)
    raw_calls = max(1, per_call // batch)
    for _ in range(3):  # warm-up
        model(xb)
    certifiers["gaussian"].certify(clf, x[:1])
    rates: dict[str, list[float]] = {"raw": [], **{k: [] for k in certifiers}}
    for _ in range(rounds):
        sync(device)
        t = time.perf_counter()
        for _ in range(raw_calls):
            model(xb)
        sync(device)
        rates["raw"].append(raw_calls * batch / (time.perf_counter() - t))
        for name, cert in certifiers.items():
            t = time.perf_counter()
            cert.certify(clf, x)  # returns host-side certificates: already synchronised
            rates[name].append(per_call / (time.perf_counter() - t))
    med = {k: statistics.median(v) for k, v in rates.items()}
    out = [f"{device.type:>4} {model_name:>6} batch {batch:>5} n {n:>6}: raw forward {med['raw']:>10.0f} samples/s"]
    for name in certifiers:
        out.append(f"{'':>34}CERTIFY {name:<8} {med[name]:>10.0f} samples/s   ratio {med[name] / med['raw']:.3f}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--n", type=int, default=None,
                   help="estimation samples per input (default: 10000 for digits, 2000 for cifar)")
    p.add_argument("--inputs", type=int, default=4, help="inputs per CERTIFY call (default 4)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--device", default="all", choices=("all", "cpu", "cuda"))
    p.add_argument("--models", nargs="+", default=["digits", "cifar"], choices=sorted(MODELS))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        else:
            print("cuda: not available, skipped")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), n0=100, "
          f"{args.inputs} inputs per CERTIFY call, median of {args.rounds} interleaved rounds")
    for device in devices:
        for m in args.models:
            # the GPU needs bigger batches to be busy; CPU uses --batch as given
            batch = args.batch if device.type == "cpu" else max(args.batch, 10_000)
            for line in bench(m, device, batch, args.n, args.inputs, args.rounds):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
