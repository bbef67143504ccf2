"""Demo section: train ReenGAGE (DDPG + HER) briefly on ContinuousSeek, evaluate, plot its learning curve."""

from __future__ import annotations

import csv
from pathlib import Path

import torch as th

from rlcert.plots import plot_curves
from rlcert.train import load_config, train

CONFIG = """
name: demo_reengage_d2
algo: ReenGAGEDDPG
env: rlcert/ContinuousSeek-v0
env_kwargs: {d: 2}
seed: 0
total_timesteps: 3000
algo_kwargs:
  replay_buffer_class: HerReplayBuffer
  replay_buffer_kwargs: {n_sampled_goal: 4, goal_selection_strategy: future}
  action_noise: {type: normal, sigma: 0.1}
  policy_kwargs: {net_arch: [64, 64]}
  learning_rate: 0.001
  batch_size: 64
  learning_starts: 200
  gamma: 0.95
  alpha: 0.2
eval: {freq: 500, episodes: 50, metric: ever}
"""


def run(out: Path, quick: bool) -> list[str]:
    th.set_num_threads(1)
    cfg_path = out / "demo_reengage_d2.yaml"
    cfg_path.write_text(CONFIG)
    steps = 1000 if quick else 3000
    config = load_config(cfg_path, [f"total_timesteps={steps}"], log_dir=str(out / "agents"))
    model, run_dir = train(config, progress=True)
    png = plot_curves([run_dir.parent], out / "agents_curve.png", title="ReenGAGE (alpha=0.2) on ContinuousSeek d=2")
    with open(run_dir / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    return [
        f"ReenGAGE-DDPG + HER (alpha = 0.2, sparse mode) on ContinuousSeek d=2 for {steps} env steps "
        f"(`rlcert train --config {cfg_path} --set total_timesteps={steps}` reproduces it; "
        f"model saved to `{run_dir / 'model.zip'}`).", "",
        "| env steps | success rate (ever reached, 50 episodes) | mean return |", "|---|---|---|",
        *[f"| {r['timesteps']} | {float(r['success_rate']):.2f} | {float(r['mean_return']):.2f} |" for r in rows],
        "", f"![learning curve]({png.name})",
    ]
