"""Shared fixtures for the Multi-ReenGAGE tests (small networks, float64 where gradients are compared)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

import rlcert  # noqa: F401
from rlcert.envs import pack_goal_set

torch.set_num_threads(1)  # 2 shared cores: more threads are far slower under contention (spec §7)

SMALL = {"embed_dim": 5, "encoder_arch": [16, 16], "head_arch": [16]}


def goal_set_batch(batch: int = 4, n_max: int = 6, obs_dim: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random goal-set observations with 1..n_max-1 real goals per row (the rest padding), float64."""
    rng = np.random.default_rng(seed)
    dg = np.stack([pack_goal_set(rng.integers(-5, 6, size=(rng.integers(1, n_max), 2)), n_max) for _ in range(batch)])
    obs = rng.normal(size=(batch, obs_dim))
    ag = np.rint(obs[:, :2])
    return {"observation": torch.tensor(obs), "achieved_goal": torch.tensor(ag),
            "desired_goal": torch.tensor(dg, dtype=torch.float64)}


def noisy_env(n_max: int = 6) -> gym.Env:
    return gym.make("rlcert/NoisySeek-v0", n_max=n_max)
