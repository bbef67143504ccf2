"""Demo section "Multi-ReenGAGE": DDPG vs Multi-ReenGAGE (same DeepSets networks) on a small DriveSeek.

``python -m rlcert.demo.multi_goal [--out runs/demo] [--quick]`` runs it alone (it writes only under
``<out>/multi_goal/``). Defaults of the package (agents convention 2): alpha = 10 on the mean over batch and n_max
gates, pooled embedding divided by n_max, total target gate gradient. A smoke run at a CPU budget, not a result
(see docs/results/ for the experiments).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.noise import NormalActionNoise

from rlcert.agents.deepsets import DeepSetsTD3Policy
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG
from rlcert.envs.render import GOAL_SET_LEGEND, legend_handles

N_MAX, ALPHA = 50, 10.0


def evaluate(model: MultiReenGAGEDDPG, env: gym.Env, episodes: int) -> float:
    """Mean return (goals hit per episode) of the deterministic policy over ``episodes`` fixed-seed episodes."""
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
    """Train DDPG (alpha = 0) and Multi-ReenGAGE (alpha = 10) with evaluations along the way; plot and render."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    torch.set_num_threads(1)
    folder = out / "multi_goal"
    folder.mkdir(parents=True, exist_ok=True)
    steps, chunks, episodes = (600, 2, 5) if quick else (6000, 6, 20)
    eval_env = gym.make("rlcert/DriveSeek-v0", n_max=N_MAX)
    curves, models = {}, {}
    for name, alpha in (("DDPG", 0.0), (f"Multi-ReenGAGE (alpha = {ALPHA:g})", ALPHA)):
        model = MultiReenGAGEDDPG(
            DeepSetsTD3Policy, gym.make("rlcert/DriveSeek-v0", n_max=N_MAX), alpha=alpha, batch_size=64, gamma=0.95,
            learning_rate=1e-3, learning_starts=300 if quick else 1000, buffer_size=steps, seed=0,
            action_noise=NormalActionNoise(np.zeros(1), 0.05 * np.ones(1)),
            policy_kwargs={"encoder_arch": [64, 64], "head_arch": [64]})
        points = [(0, evaluate(model, eval_env, episodes))]
        for _ in range(chunks):
            model.learn(steps // chunks, reset_num_timesteps=False)
            points.append((model.num_timesteps, evaluate(model, eval_env, episodes)))
        curves[name], models[name] = points, model

    fig, (ax, ax_img) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1.15, 1]})
    for name, points in curves.items():
        ax.plot(*zip(*points), marker="o", label=name)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"mean return ({episodes} test episodes)")
    ax.set_title(f"DriveSeek n_max = {N_MAX}: goals hit per episode (1 seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    render_env = gym.make("rlcert/DriveSeek-v0", n_max=N_MAX, render_mode="rgb_array")
    obs, _ = render_env.reset(seed=10_000)
    model = models[next(n for n in curves if n.startswith("Multi"))]
    for _ in range(40):
        obs, *_ = render_env.step(model.predict(obs, deterministic=True)[0])
    ax_img.imshow(render_env.render())
    ax_img.set_title(f"{next(n for n in curves if n.startswith('Multi'))}: one test episode", fontsize=10)
    ax_img.legend(handles=legend_handles(GOAL_SET_LEGEND), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  fontsize=8, frameon=False)
    ax_img.set_xlabel("x")
    ax_img.set_ylabel("y")
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    fig.tight_layout()
    png = folder / "multi_reengage.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)

    lines = [f"DriveSeek with n_max = {N_MAX}, DeepSets 2x64 encoder, batch 64, {steps} steps, seed 0; package "
             "defaults (alpha on the mean over the n_max gates, pooling / n_max, total target gate gradient). "
             "A smoke run, not a result.", "",
             "| env steps | " + " | ".join(curves) + " |", "|---|" + "---|" * len(curves)]
    for i, (t, _) in enumerate(next(iter(curves.values()))):
        lines.append(f"| {t} | " + " | ".join(f"{pts[i][1]:.2f}" for pts in curves.values()) + " |")
    return [*lines, "", f"![Multi-ReenGAGE](multi_goal/{png.name})"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print("\n".join(run(args.out, args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
