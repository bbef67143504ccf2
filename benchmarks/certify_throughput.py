"""CERTIFY samples/s vs the raw forward pass of the same model at the same batch, in fp32 and bf16.

    python benchmarks/certify_throughput.py                  # full run (~4 min on one quiet core), markdown table
    python benchmarks/certify_throughput.py --quick          # seconds: checks that everything runs

Models: ``vgg`` (the VGG-style CIFAR CNN, 64-128-256 channels, 3x32x32), ``digits`` (the demo CNN, 1x8x8),
``mlp`` (a policy-size MLP, 32 -> 256 -> 256 -> 256 -> 8). Settings: CPU fp32 and bf16, each also with
channels-last for the CNNs, and the same on CUDA when present. For each setting and model, two measurements: the raw
forward pass ``model(x)`` on a fixed batch (at that precision/layout, under ``torch.inference_mode``) and
``GaussianCertifier.certify`` (n0 selection + n estimation samples per input, ``batch`` samples per forward pass,
through ``BaseClassifier(precision=..., channels_last=...)``). **Every measurement runs in its own subprocess**
(one CPU thread, a warm-up call, then calls until ``--seconds`` have passed); the rounds interleave all
measurements, and the table shows the median samples/s with [min, max] over the rounds, and the ratios

* certify / raw (same setting): the overhead of sampling, counting and statistics (1.0 = none);
* certify / raw fp32 (the issue's targets: bf16 >= 1.7 for the VGG CNN, >= 3 for MLPs; fp32 >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# name -> (input shape, batch, certify (inputs, n0, n)) per device type; the sample counts are multiples of batch
MODELS = {
    "vgg": ((3, 32, 32), {"cpu": (128, (1, 128, 384)), "cuda": (1024, (4, 1024, 7168))}),
    "digits": ((1, 8, 8), {"cpu": (1000, (4, 100, 9900)), "cuda": (10_000, (8, 10_000, 90_000))}),
    "mlp": ((32,), {"cpu": (1000, (4, 100, 9900)), "cuda": (10_000, (8, 10_000, 90_000))}),
}
TARGETS = {"vgg": 1.7, "mlp": 3.0, "digits": None}  # bf16 certify / raw fp32 forward
FP32_TARGET = 0.9


def build(name: str):
    from rlcert.certify.models.digits import digits_cnn
    from rlcert.certify.models.vgg import mlp, vgg_cifar

    return {"vgg": vgg_cifar, "digits": digits_cnn, "mlp": lambda: mlp(32, 256, 3, 8)}[name]()


def measure(spec: dict) -> float:
    """One measurement (in this process): samples/s of ``spec['kind']`` (raw or certify)."""
    import torch

    from rlcert.certify import BaseClassifier, GaussianCertifier
    from rlcert.certify.core.precision import autocast, prepare_model, to_channels_last

    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    shape, per_device = MODELS[spec["model"]]
    batch, (inputs, n0, n) = per_device[device.type]
    model = build(spec["model"]).to(device).eval()
    prec, cl = spec["precision"], spec["channels_last"]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if spec["kind"] == "raw":
        prepare_model(model, cl)
        xb = torch.rand((batch, *shape), device=device)
        xb = to_channels_last(xb) if cl else xb
        per_call = inputs * (n0 + n)  # the same samples as one CERTIFY call, in full batches

        def call() -> None:
            with torch.inference_mode(), autocast(device, prec):
                for _ in range(per_call // batch):
                    model(xb).argmax(1)
    else:
        clf = BaseClassifier(model, 10 if spec["model"] != "mlp" else 8, device=device, precision=prec,
                             channels_last=cl)
        cert = GaussianCertifier(sigma=0.25, n0=n0, n=n, batch=batch)
        x = torch.rand((inputs, *shape), device=device)
        per_call = inputs * (n0 + n)

        def call() -> None:
            cert.certify(clf, x)

    call()  # warm-up
    sync()
    done, t0 = 0, time.perf_counter()
    while True:
        call()
        sync()
        done += per_call
        elapsed = time.perf_counter() - t0
        if elapsed >= spec["seconds"]:
            return done / elapsed


def settings(devices: list[str], models: list[str]) -> list[tuple[str, str, str, bool]]:
    """(device, model, precision, channels_last) rows of the table."""
    rows = []
    for device in devices:
        for m in models:
            rows.append((device, m, "fp32", False))
            if len(MODELS[m][0]) == 3:
                rows.append((device, m, "fp32", True))
            rows.append((device, m, "bf16", False))
            if len(MODELS[m][0]) == 3:
                rows.append((device, m, "bf16", True))
    return rows


def fmt(vals: list[float]) -> str:
    return f"{statistics.median(vals):,.0f} [{min(vals):,.0f}, {max(vals):,.0f}]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--seconds", type=float, default=1.0, help="timed seconds per measurement (default 1.0)")
    p.add_argument("--device", default="all", choices=("all", "cpu", "cuda"))
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--quick", action="store_true", help="1 round of 0.05 s, digits and mlp: checks it runs")
    p.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # internal: one measurement, JSON spec
    args = p.parse_args(argv)
    if args.measure is not None:
        print(json.dumps({"samples_per_s": measure(json.loads(args.measure))}))
        return 0
    if args.quick:
        args.rounds, args.seconds = 1, 0.05
        args.models = [m for m in args.models if m != "vgg"] or ["digits"]
    if args.rounds < 1 or args.seconds <= 0:
        p.error(f"--rounds must be >= 1 and --seconds > 0, got {args.rounds}, {args.seconds}")
    import torch

    devices = [] if args.device == "cuda" else ["cpu"]
    if args.device in ("all", "cuda"):
        if torch.cuda.is_available():
            devices.append("cuda")
        else:
            print("cuda: not available, CUDA rows skipped")
    rows = settings(devices, args.models)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, (str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH"))))}
    results: dict[tuple, list[float]] = {}
    for r in range(args.rounds):
        for row in rows:  # interleaved: every measurement once per round
            for kind in ("raw", "certify"):
                spec = dict(zip(("device", "model", "precision", "channels_last"), row), kind=kind,
                            seconds=args.seconds)
                out = subprocess.run([sys.executable, __file__, "--measure", json.dumps(spec)], env=env,
                                     capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    print(out.stderr, file=sys.stderr)
                    return 1
                results.setdefault((*row, kind), []).append(json.loads(out.stdout.splitlines()[-1])["samples_per_s"])
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"\ntorch {torch.__version__}, 1 thread, each measurement its own subprocess, median [min, max] of "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s; samples/s\n")
    print("| device | model | batch | precision | raw forward | certify | certify / raw | certify / raw fp32 "
          "| target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        device, m, prec, cl = row
        raw, cert = results[(*row, "raw")], results[(*row, "certify")]
        raw32 = statistics.median(results[(device, m, "fp32", False, "raw")])
        ratio32 = statistics.median(cert) / raw32
        target = (FP32_TARGET if not cl else None) if prec == "fp32" else TARGETS[m]
        verdict = "" if target is None else f">= {target:g}: {'met' if ratio32 >= target else 'missed'}"
        print(f"| {device} | {m} | {MODELS[m][1][device][0]} | {prec}{' channels-last' if cl else ''} | {fmt(raw)} "
              f"| {fmt(cert)} | {statistics.median(cert) / statistics.median(raw):.2f} | {ratio32:.2f} "
              f"| {verdict} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
