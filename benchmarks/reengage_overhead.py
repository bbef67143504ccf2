"""Gradient steps/s of stock SB3 DDPG+HER, ReenGAGE alpha=0 and ReenGAGE alpha>0, measured side by side.

ReenGAGE alpha>0 is timed with the default analytic critic goal-gradient (first-order graph) and with autograd's
double backward (``analytic_gradient = False``).

ContinuousSeek d=10, batch 256, 2x256 nets, HER (k=4, future), one torch thread. The replay buffer is filled by
``learn()`` with no training (learning_starts = fill), then ``train(steps, 256)`` is timed in interleaved rounds
(stock, alpha=0, alpha>0, repeated) and the median per-round rate is reported, so the ratios are robust to load
from other processes. Targets: alpha=0 >= 0.97x stock; alpha>0 update time <= 1.25x stock.

    python benchmarks/reengage_overhead.py [--steps 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import DDPG, HerReplayBuffer

import rlcert  # noqa: F401
from rlcert.agents import ReenGAGEDDPG


def build(cls, fill: int, **kw):
    model = cls("MultiInputPolicy", gym.make("rlcert/ContinuousSeek-v0", d=10), replay_buffer_class=HerReplayBuffer,
                replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
                policy_kwargs=dict(net_arch=[256, 256]), learning_starts=fill, batch_size=256, gamma=0.95,
                buffer_size=fill + 10, seed=0, **kw)
    model.learn(fill)  # collects transitions only (no gradient step before learning_starts)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="gradient steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--alpha", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    models = {"stock DDPG+HER": build(DDPG, 2000), "ReenGAGE alpha=0": build(ReenGAGEDDPG, 2000, alpha=0.0),
              f"ReenGAGE alpha={args.alpha}": build(ReenGAGEDDPG, 2000, alpha=args.alpha),
              "  (autograd grad_g Q)": build(ReenGAGEDDPG, 2000, alpha=args.alpha)}
    models["  (autograd grad_g Q)"].analytic_gradient = False  # the double-backward path, for comparison
    for m in models.values():
        m.train(20, 256)  # warm-up
    rates = {k: [] for k in models}
    for _ in range(args.rounds):
        for name, m in models.items():
            t0 = time.perf_counter()
            m.train(args.steps, 256)
            rates[name].append(args.steps / (time.perf_counter() - t0))
    med = {k: float(np.median(v)) for k, v in rates.items()}
    stock = med["stock DDPG+HER"]
    print(f"ContinuousSeek d=10, batch 256, 2x256, HER, {args.threads} thread(s), {args.rounds} rounds x "
          f"{args.steps} steps (median)")
    for name, r in med.items():
        print(f"  {name:<22} {r:8.1f} grad steps/s   speed ratio vs stock {r / stock:5.3f}   "
              f"update-time ratio {stock / r:5.3f}")
    names = list(med)
    print(f"alpha=0 speed ratio {med[names[1]] / stock:.3f} (target >= 0.97); "
          f"alpha>0 update-time ratio {stock / med[names[2]]:.3f} vs stock DDPG (target <= 1.25), "
          f"{med[names[1]] / med[names[2]]:.3f} vs our alpha=0 loop (DDPG with the same actor step)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
