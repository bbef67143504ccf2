"""Measure the CPU cost of training for a config: CPU-seconds per 1000 environment steps *with* updates.

Builds the agent from a ``rlcert train`` config (with ``--set`` overrides), fills the replay buffer for
``learning_starts`` steps, then times ``--steps`` further steps (one update per step) with
``time.process_time`` (CPU time of this process, so a busy machine does not inflate it). Nothing is written
except the one line printed (and optionally appended to ``--csv``).

    python scripts/experiment_cost.py --config configs/continuous_seek_d10_reengage.yaml --steps 300
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch as th

from rlcert.train import train
from rlcert.training import load_config


def measure(config_path: str, overrides: list[str], steps: int) -> dict[str, float | str]:
    """CPU-seconds per 1000 training steps (after learning_starts) and wall seconds, for one config."""
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(config_path, overrides, seed=0, log_dir=tmp)
        starts = int(config["algo_kwargs"].get("learning_starts", 100))
        config["total_timesteps"] = starts + 20  # fill the buffer and do a few updates (warm-up)
        config["eval"] = {**config["eval"], "freq": 10**9}
        config["checkpoint"] = False
        config["torch_threads"] = 1
        model, _ = train(config, progress=False)
        c0, w0 = time.process_time(), time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {"config": Path(config_path).stem, "overrides": " ".join(overrides), "steps": steps,
            "cpu_s_per_1k": 1000 * cpu / steps, "wall_s_per_1k": 1000 * wall / steps}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--steps", type=int, default=300, help="timed training steps (>= 1)")
    p.add_argument("--csv", type=Path, default=None, help="append the result to this CSV")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps must be >= 1, got {args.steps}")
    th.set_num_threads(1)
    row = measure(args.config, args.set, args.steps)
    print(f"{row['config']} [{row['overrides']}]: {row['cpu_s_per_1k']:.1f} CPU-s / 1k steps "
          f"({row['wall_s_per_1k']:.1f} wall-s)")
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        new = not args.csv.exists()
        with args.csv.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
