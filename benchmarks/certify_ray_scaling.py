"""Scaling of ``rlcert certify --ray``: one process vs 1 and 2 Ray workers on the same inputs.

    python benchmarks/certify_ray_scaling.py            # ~1.5 min on a quiet 2-core machine
    python benchmarks/certify_ray_scaling.py --quick    # seconds: checks that it runs

Certifies ``--inputs`` digits test inputs with the demo CNN (seeded weights; the throughput does not depend on
them) at n0 = 100, n = ``--n``, ``--batch`` samples per forward pass, one thread per process: once in this process
(no Ray), then with ``--ray --workers 1`` and ``--ray --workers 2`` on one local Ray instance started beforehand
(its start-up is reported separately; each run's actor start-up -- a fresh Python process importing torch and
building the model -- is inside its time). Checks that the three TSVs agree row for row (time column aside) and
prints a markdown table: wall seconds, inputs/s, speed-up over one worker and parallel efficiency
(speed-up / workers).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inputs", type=int, default=64)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="8 inputs at n = 2000")
    args = p.parse_args(argv)
    if args.quick:
        args.inputs, args.n = 8, 2000
    import torch

    from rlcert.certify.cli.certify import main as certify
    from rlcert.certify.distributed import import_ray, init_ray
    from rlcert.certify.models.digits import digits_cnn

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="ray_scaling_"))
    torch.manual_seed(0)
    torch.save(digits_cnn().state_dict(), tmp / "w.pt")
    base = ["--model", "rlcert.certify.models:digits_cnn", "--weights", str(tmp / "w.pt"), "--sigma", "0.25",
            "--n0", "100", "--n", str(args.n), "--batch", str(args.batch), "--max", str(args.inputs),
            "--threads", "1", "--no-progress"]
    ray = import_ray()
    t0 = time.perf_counter()
    init_ray(num_cpus=2)
    t_ray = time.perf_counter() - t0
    runs = {"one process (no Ray)": [], "ray, 1 worker": ["--ray", "--workers", "1"],
            "ray, 2 workers": ["--ray", "--workers", "2"]}
    times, rows = {}, {}
    try:
        for i, (label, extra) in enumerate(runs.items()):
            out = tmp / f"run{i}.tsv"
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                rc = certify(base + extra + ["--out", str(out)])
            times[label] = time.perf_counter() - t0
            if rc != 0:
                print(f"{label}: rlcert certify failed (exit {rc})", file=sys.stderr)
                return 1
            rows[label] = [line.split("\t")[:5] + line.split("\t")[6:] for line in out.read_text().splitlines()]
    finally:
        ray.shutdown()
    same = all(r == rows["one process (no Ray)"] for r in rows.values())
    print(f"\n{args.inputs} digits inputs, n0=100, n={args.n}, batch {args.batch}, one thread per process; local Ray "
          f"start-up {t_ray:.1f} s (not included); rows identical across runs: {same}\n")
    print("| run | wall s | inputs/s | speed-up vs 1 worker | efficiency |")
    print("|---|---|---|---|---|")
    one = times["ray, 1 worker"]
    for label, t in times.items():
        workers = {"ray, 1 worker": 1, "ray, 2 workers": 2}.get(label)
        su = f"{one / t:.2f}" if workers else ""
        eff = f"{one / t / workers:.2f}" if workers else ""
        print(f"| {label} | {t:.1f} | {args.inputs / t:.2f} | {su} | {eff} |")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
