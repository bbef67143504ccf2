"""Env steps/s of each rlcert environment vs a trivial gymnasium env, measured side by side in one run.

    python benchmarks/env_throughput.py [--steps 20000]

Actions are pre-sampled so that only ``step`` (and ``reset`` at episode ends) is timed. Each env is created with
``gymnasium.make`` (so the checker/order-enforcing wrappers are included, as users get them).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import rlcert  # noqa: F401


class TrivialEnv(gym.Env):
    """Does nothing: the floor of a gymnasium step (Box obs (4,), Box action (1,), 10-step episodes)."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1, 1, (4,), np.float32)
        self.action_space = spaces.Box(-1, 1, (1,), np.float32)
        self._obs = np.zeros(4, np.float32)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs.copy(), {}

    def step(self, action):
        self._t += 1
        return self._obs.copy(), 0.0, False, self._t >= 10, {}


def steps_per_second(env: gym.Env, steps: int) -> float:
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    env.reset(seed=0)
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    gym.register(id="TrivialBench-v0", entry_point=TrivialEnv)
    cases = [("Trivial", "TrivialBench-v0", {}), ("ContinuousSeek d=5", "rlcert/ContinuousSeek-v0", {"d": 5}),
             ("ContinuousSeek d=20", "rlcert/ContinuousSeek-v0", {"d": 20}), ("DriveSeek", "rlcert/DriveSeek-v0", {}),
             ("NoisySeek", "rlcert/NoisySeek-v0", {}), ("BitFlipping n=40", "rlcert/BitFlipping-v0", {"n_bits": 40})]
    base = None
    print(f"{'env':<22}{'steps/s':>12}{'ratio to trivial':>20}")
    for name, env_id, kwargs in cases:
        sps = steps_per_second(gym.make(env_id, **kwargs), args.steps)
        base = base or sps
        print(f"{name:<22}{sps:>12,.0f}{sps / base:>20.3f}")


if __name__ == "__main__":
    main()
