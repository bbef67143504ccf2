"""Noisy samples/s through CERTIFY for randomized ablation and Wasserstein smoothing vs plain forward passes.

    python benchmarks/ablation_wasserstein_throughput.py [--batch 1000] [--rounds 5] [--device cpu|cuda|all]

Same protocol as ``benchmarks/certify_throughput.py``: for each device and model ("digits": the digits CNN on
8x8 inputs; "cifar": a small CNN on 32x32 inputs), rounds alternate between (a) ``model(x)`` on a fixed batch of
``batch`` inputs of the shape the base model sees (NULL-encoded 2C channels for ablation, C channels for
Wasserstein) and (b) ``certify`` on a few inputs (n0 = 100 + n samples each, ``batch`` samples per forward pass).
The median samples/s and their ratio are printed; the sampler alone (samples/s of ``perturb_`` into a buffer) is
printed too, so one can see whether it dominates. The core's Gaussian certifier is measured in the same rounds as a
reference for what the shared CERTIFY loop costs under the same machine load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from rlcert.certify.core.classifier import BaseClassifier
from rlcert.certify.models.digits import digits_cnn
from rlcert.certify.randomized.ablation import RandomizedAblationCertifier, encode_null
from rlcert.certify.randomized.gaussian import GaussianCertifier
from rlcert.certify.randomized.wasserstein import WassersteinCertifier


def cifar_cnn(in_channels: int = 3) -> nn.Module:
    """The small CIFAR-sized CNN of ``certify_throughput.py`` with ``in_channels`` inputs."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 8 * 8, 64), nn.ReLU(),
        nn.Linear(64, 10))


# name -> (factory(in_channels), input shape (C, H, W), estimation samples n, ablation k, Wasserstein sigma)
MODELS = {"digits": (lambda c: digits_cnn(in_channels=c), (1, 8, 8), 10_000, 12, 0.05),
          "cifar": (cifar_cnn, (3, 32, 32), 2_000, 75, 0.0002)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def bench(model_name: str, device: torch.device, batch: int, n: int | None, inputs: int, rounds: int) -> list[str]:
    factory, (c, h, w), default_n, k, sigma = MODELS[model_name]
    n = n or default_n
    x = torch.rand((inputs, c, h, w), device=device) + 0.01
    setups = {"ablation": (RandomizedAblationCertifier(k, n0=100, n=n, batch=batch), 2 * c),
              "wasserstein": (WassersteinCertifier(sigma, n0=100, n=n, batch=batch), c),
              "gaussian": (GaussianCertifier(0.25, n0=100, n=n, batch=batch), c)}  # the core's, for reference
    out = []
    for name, (cert, cin) in setups.items():
        model = factory(cin).to(device).eval()
        clf = BaseClassifier(model, 10, device=device)
        xb = torch.rand((batch, cin, h, w), device=device)
        per_call = inputs * (100 + n)
        raw_calls = max(1, per_call // batch)
        one = encode_null(x[:1])[0] if name == "ablation" else x[0]  # what perturb_ receives
        buf = torch.empty((batch, *one.shape), device=device)
        gen = torch.Generator(device=device).manual_seed(0)
        for _ in range(3):  # warm-up
            model(xb)
        cert.certify(clf, x[:1])
        rates: dict[str, list[float]] = {"raw": [], "certify": [], "sampler": []}
        for _ in range(rounds):
            sync(device)
            t = time.perf_counter()
            for _ in range(raw_calls):
                model(xb)
            sync(device)
            rates["raw"].append(raw_calls * batch / (time.perf_counter() - t))
            t = time.perf_counter()
            cert.certify(clf, x)  # host-side certificates: already synchronised
            rates["certify"].append(per_call / (time.perf_counter() - t))
            t = time.perf_counter()
            for _ in range(raw_calls):
                cert.perturb_(buf, one, gen)
            sync(device)
            rates["sampler"].append(raw_calls * batch / (time.perf_counter() - t))
        med = {key: statistics.median(v) for key, v in rates.items()}
        out.append(f"{device.type:>4} {model_name:>6} {name:<11} batch {batch:>5} n {n:>6}: raw forward "
                   f"{med['raw']:>9.0f}/s  CERTIFY {med['certify']:>9.0f}/s  ratio {med['certify'] / med['raw']:.3f}"
                   f"  (sampler alone {med['sampler']:>10.0f}/s)")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=1000, help="samples per forward pass (default 1000; GPU >= 10000)")
    p.add_argument("--n", type=int, default=None,
                   help="estimation samples per input (default: 10000 for digits, 2000 for cifar)")
    p.add_argument("--inputs", type=int, default=4, help="inputs per CERTIFY call (default 4)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians are reported (default 5)")
    p.add_argument("--device", default="all", choices=("all", "cpu", "cuda"), help="default all")
    p.add_argument("--models", nargs="+", default=["digits", "cifar"], choices=sorted(MODELS))
    args = p.parse_args(argv)
    for name in ("batch", "inputs", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be an integer >= 1, got {getattr(args, name)}")
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
            batch = args.batch if device.type == "cpu" else max(args.batch, 10_000)
            for line in bench(m, device, batch, args.n, args.inputs, args.rounds):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
