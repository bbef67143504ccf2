"""Update-time ratio Multi-ReenGAGE / DDPG with the same DeepSets networks, measured side by side.

Both agents get the same replay buffer content; their ``train()`` calls are interleaved (A, B, A, B, ...) so that
load from other processes hits both alike. Thesis Table G.5 (GPU, whole runs): +39.6% DriveSeek, +60.0% NoisySeek.

    PYTHONPATH=. python benchmarks/multi_reengage_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import time

import gymnasium as gym
import numpy as np
import torch

import rlcert  # noqa: F401
from rlcert.agents.deepsets import DeepSetsTD3Policy
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG


def measure(env_id: str, n_max: int, width: int, batch: int, updates: int, repeats: int) -> tuple[float, float]:
    env = gym.make(env_id, n_max=n_max)
    kw = dict(learning_starts=2000, buffer_size=2000, batch_size=batch, seed=0,
              policy_kwargs={"encoder_arch": [width, width], "head_arch": [width]})
    base = MultiReenGAGEDDPG(DeepSetsTD3Policy, env, alpha=0.0, **kw).learn(2000)
    mrg = MultiReenGAGEDDPG(DeepSetsTD3Policy, env, alpha=10.0, **kw)  # thesis value (mean over the n_max gates)
    mrg.replay_buffer = copy.deepcopy(base.replay_buffer)
    mrg.learn(0)  # sets up the logger
    times = {"ddpg": [], "mrg": []}
    for r in range(repeats):
        for name, model in (("ddpg", base), ("mrg", mrg)):
            # Same batches for both agents: the encoder skips padding goals, so an update's cost depends on how
            # many real goals the sampled batch holds (SB3's buffers sample with the global numpy RNG).
            np.random.seed(r)
            t0 = time.perf_counter()
            model.train(updates, batch)
            times[name].append((time.perf_counter() - t0) / updates)
    return float(np.median(times["ddpg"])), float(np.median(times["mrg"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="reduced sizes only")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    configs = [("reduced (experiment)", 50, 64, 64, 40, 5)]
    if not args.quick:
        configs.insert(0, ("Table G.4 (n_max 200, 2x400, batch 256)", 200, 400, 256, 4, 3))
    print(f"{'env':22s} {'config':42s} {'DDPG s/upd':>10s} {'M-RG s/upd':>10s} {'ratio':>6s}")
    for env_id in ("rlcert/NoisySeek-v0", "rlcert/DriveSeek-v0"):
        for label, n_max, width, batch, updates, repeats in configs:
            t_base, t_mrg = measure(env_id, n_max, width, batch, updates, repeats)
            print(f"{env_id:22s} {label:42s} {t_base:10.4f} {t_mrg:10.4f} {t_mrg / t_base:6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
