"""GPU check, certification part: CERTIFY samples/s / raw forward samples/s on CUDA, fp32 and bf16.

    python benchmarks/gpu_certify_check.py [--rounds 3] [--seconds 1.0] [--no-compile]

For each model (``vgg``: the VGG-style CIFAR CNN, 3x32x32; ``digits``: the demo CNN, 1x8x8; ``mlp``: a
policy-size MLP, 32 -> 256 x3 -> 8), precision (fp32, bf16 autocast) and execution (``eager``; ``compiled``:
``torch.compile(mode="reduce-overhead")``, i.e. CUDA graphs, for both the raw forward and the base classifier of
CERTIFY), measures the raw forward ``model(x).argmax(1)`` on a fixed batch and ``GaussianCertifier.certify`` at
the same batch (every forward pass full), interleaved over ``--rounds`` rounds; prints a markdown table with
median samples/s [min, max] and the ratio certify / raw (target >= 0.95 in each precision) and certify / raw fp32
eager. Without a CUDA device it prints one line and exits 0 (for ``benchmarks/gpu_check.sh``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# name -> (input shape, batch, (inputs, n0, n)) with n0 and n multiples of batch
MODELS = {"vgg": ((3, 32, 32), 2048, (4, 2048, 14336)),
          "digits": ((1, 8, 8), 20_000, (8, 20_000, 180_000)),
          "mlp": ((32,), 20_000, (8, 20_000, 180_000))}
TARGET = 0.95


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=1.0, help="timed seconds per measurement (default 1.0)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--no-compile", action="store_true", help="eager only")
    args = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu_certify_check: no CUDA device, certification GPU check skipped")
        return 0
    if args.rounds < 1 or args.seconds <= 0:
        p.error(f"--rounds must be >= 1 and --seconds > 0, got {args.rounds}, {args.seconds}")

    from rlcert.certify import BaseClassifier, GaussianCertifier
    from rlcert.certify.core.precision import autocast
    from rlcert.certify.models.digits import digits_cnn
    from rlcert.certify.models.vgg import mlp, vgg_cifar

    factories = {"vgg": vgg_cifar, "digits": digits_cnn, "mlp": lambda: mlp(32, 256, 3, 8)}
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    torch.backends.cudnn.allow_tf32 = False
    execs = ["eager"] + ([] if args.no_compile else ["compiled"])

    cases = {}  # (model, precision, exec) -> (raw call, certify call, samples per call)
    for name in args.models:
        shape, batch, (inputs, n0, n) = MODELS[name]
        torch.manual_seed(0)
        model = factories[name]().to(dev).eval()
        xb = torch.rand((batch, *shape), device=dev)
        x = torch.rand((inputs, *shape), device=dev)
        k = 8 if name == "mlp" else 10
        for ex in execs:
            fn = model if ex == "eager" else torch.compile(model, mode="reduce-overhead")
            for prec in ("fp32", "bf16"):
                clf = BaseClassifier(fn, k, device=dev, precision=prec)
                cert = GaussianCertifier(sigma=0.25, n0=n0, n=n, batch=batch)
                per_call = inputs * (n0 + n)

                def raw(fn=fn, prec=prec, xb=xb, reps=per_call // batch) -> None:
                    with torch.inference_mode(), autocast(dev, prec):
                        for _ in range(reps):
                            fn(xb).argmax(1)

                def certify(cert=cert, clf=clf, x=x) -> None:
                    cert.certify(clf, x)

                for f in (raw, certify, raw, certify):  # warm-up (and compilation, CUDA-graph capture)
                    f()
                torch.cuda.synchronize()
                cases[(name, prec, ex)] = (raw, certify, per_call)
        print(f"{name}: ready", file=sys.stderr, flush=True)

    def timed(f, per_call: int) -> float:
        torch.cuda.synchronize()
        done, t0 = 0, time.perf_counter()
        while True:
            f()
            torch.cuda.synchronize()
            done += per_call
            if time.perf_counter() - t0 >= args.seconds:
                return done / (time.perf_counter() - t0)

    rates: dict[tuple, list[float]] = {}
    for _ in range(args.rounds):
        for key, (raw, certify, per_call) in cases.items():
            rates.setdefault((*key, "raw"), []).append(timed(raw, per_call))
            rates.setdefault((*key, "certify"), []).append(timed(certify, per_call))

    def fmt(v: list[float]) -> str:
        return f"{statistics.median(v):,.0f} [{min(v):,.0f}, {max(v):,.0f}]"

    print(f"\n{torch.cuda.get_device_name(dev)}, torch {torch.__version__}; median [min, max] of {args.rounds} "
          f"interleaved rounds of {args.seconds:g} s; samples/s\n")
    print("| model | batch | precision | execution | raw forward | certify | certify / raw (>= 0.95) "
          "| certify / raw fp32 eager |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, prec, ex) in cases:
        raw, cert = rates[(name, prec, ex, "raw")], rates[(name, prec, ex, "certify")]
        ratio = statistics.median(cert) / statistics.median(raw)
        base = statistics.median(rates[(name, "fp32", "eager", "raw")])
        print(f"| {name} | {MODELS[name][1]} | {prec} | {ex} | {fmt(raw)} | {fmt(cert)} | {ratio:.2f} "
              f"{'met' if ratio >= TARGET else 'missed'} | {statistics.median(cert) / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
