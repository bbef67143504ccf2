"""Demo section: Multi-ReenGAGE vs DDPG (same DeepSets networks) on a small DriveSeek, plus one rendered episode."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.noise import NormalActionNoise

from rlcert.agents.deepsets import DeepSetsTD3Policy
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG


def _evaluate(model: MultiReenGAGEDDPG, env: gym.Env, episodes: int) -> float:
    total = 0.0
    for k in range(episodes):
        obs, _ = env.reset(seed=10_000 + k)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(model.predict(obs, deterministic=True)[0])
            total += r
            done = term or trunc
    return total / episodes


def run(out: Path, quick: bool) -> list[str]:
    """Train DDPG (alpha = 0) and Multi-ReenGAGE (alpha = 10 / n_max) briefly; report returns, save a frame."""
    torch.set_num_threads(1)
    n_max, steps = 50, (600 if quick else 5000)
    env = gym.make("rlcert/DriveSeek-v0", n_max=n_max)
    lines = [f"DriveSeek with n_max = {n_max}, DeepSets 2x64 encoder, {steps} steps, 1 seed (a smoke run, not a "
             "result: see docs/results/multi_goal.md).", "", "| agent | mean return (20 episodes) |", "|---|---|"]
    model = None
    for name, alpha in (("DDPG", 0.0), ("Multi-ReenGAGE", 10.0 / n_max)):
        model = MultiReenGAGEDDPG(
            DeepSetsTD3Policy, env, alpha=alpha, batch_size=64, gamma=0.95, learning_rate=1e-3,
            learning_starts=300 if quick else 1000, buffer_size=steps, seed=0,
            action_noise=NormalActionNoise(np.zeros(1), 0.05 * np.ones(1)),
            policy_kwargs={"encoder_arch": [64, 64], "head_arch": [64]})
        model.learn(steps)
        lines.append(f"| {name} | {_evaluate(model, gym.make('rlcert/DriveSeek-v0', n_max=n_max), 20):.2f} |")
    render_env = gym.make("rlcert/DriveSeek-v0", n_max=n_max, render_mode="rgb_array")
    obs, _ = render_env.reset(seed=10_000)
    for _ in range(40):
        obs, *_ = render_env.step(model.predict(obs, deterministic=True)[0])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = out / "multi_reengage_episode.png"
    plt.imsave(path, render_env.render())
    lines += ["", f"![Multi-ReenGAGE episode]({path.name})"]
    return lines
