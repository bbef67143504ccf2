"""Tiny fleet configs for fast tests."""

from __future__ import annotations

import pytest


def tiny_config(tmp_path, algo: str = "ReenGAGEDDPG", total: int = 60, **algo_kwargs) -> dict:
    kw = {"replay_buffer_class": "HerReplayBuffer",
          "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
          "action_noise": {"type": "normal", "sigma": 0.1}, "policy_kwargs": {"net_arch": [16, 16]},
          "learning_rate": 1e-3, "batch_size": 8, "learning_starts": 25, "gamma": 0.95, "tau": 0.05,
          "train_freq": 1, "gradient_steps": 1}
    if algo.startswith("ReenGAGE"):
        kw.update({"alpha": 0.2, "goal_reduction": "mean"})
    kw.update(algo_kwargs)
    return {"name": "tiny", "algo": algo, "policy": "MultiInputPolicy", "env": "rlcert/ContinuousSeek-v0",
            "env_kwargs": {"d": 3, "max_steps": 5}, "n_envs": 1, "seed": 0, "total_timesteps": total,
            "algo_kwargs": kw, "eval": {"freq": 20, "episodes": 4, "metric": "ever"},
            "log_dir": str(tmp_path / "runs")}


@pytest.fixture
def tiny():
    return tiny_config
