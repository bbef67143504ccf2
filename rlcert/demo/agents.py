"""Demo section "Agents": ReenGAGE vs DDPG+HER on ContinuousSeek, same networks, noise and budget.

``python -m rlcert.demo.agents [--out runs/demo] [--quick] [--d 8] [--steps 6000] [--seeds 0]`` runs this section alone
(it writes only under ``<out>/agents/``). Both agents use HER (k = 4, future), gamma 0.95, tau 0.005, action noise
0.03, 2 x 256 networks (Table G.1) and each its Table G.2 best batch / learning rate at d = 10 (DDPG+HER 256 /
5e-4, ReenGAGE 512 / 1e-3); ReenGAGE adds the goal-gradient term with the thesis' alpha = 0.2 (mean over batch and
goal coordinates). Success = the goal was reached at some step of the episode (50 test episodes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch as th

from rlcert.plots import load_curves, plot_curves
from rlcert.train import load_config, train

D, STEPS, QUICK_STEPS = 10, 8000, 600
# key: (algo, label, batch, learning rate) -- Table G.2, d = 10
AGENTS = {"ddpg_her": ("DDPG", "DDPG + HER", 256, 5e-4),
          "reengage": ("ReenGAGEDDPG", "ReenGAGE (alpha = 0.2) + HER", 512, 1e-3)}

CONFIG = """
name: {name}
algo: {algo}
env: rlcert/ContinuousSeek-v0
env_kwargs: {{d: {d}}}
seed: 0
total_timesteps: {steps}
algo_kwargs:
  replay_buffer_class: HerReplayBuffer
  replay_buffer_kwargs: {{n_sampled_goal: 4, goal_selection_strategy: future}}
  action_noise: {{type: normal, sigma: 0.03}}
  policy_kwargs: {{net_arch: [256, 256]}}
  learning_rate: {lr}
  batch_size: {batch}
  learning_starts: {start}
  gamma: 0.95
  tau: 0.005
{extra}eval: {{freq: {freq}, episodes: {episodes}, metric: ever}}
"""


def run(out: Path, quick: bool, d: int = D, steps: int | None = None, seeds: tuple[int, ...] = (0,)) -> list[str]:
    """Train DDPG+HER and ReenGAGE for ``steps`` env steps per seed; return the report's markdown lines."""
    th.set_num_threads(1)
    steps = steps or (QUICK_STEPS if quick else STEPS)
    freq = max(steps // (3 if quick else 8), 100)
    folder = out / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    run_dirs = []
    for key, (algo, _, batch, lr) in AGENTS.items():
        name = f"continuous_seek_d{d}_{key}"
        cfg_path = folder / f"{name}.yaml"
        extra = "  alpha: 0.2\n" if algo.startswith("ReenGAGE") else ""
        cfg_path.write_text(CONFIG.format(name=name, algo=algo, d=d, steps=steps, start=min(1000, steps // 3),
                                          extra=extra, freq=freq, batch=64 if quick else batch, lr=lr,
                                          episodes=10 if quick else 50))
        for seed in seeds:
            config = load_config(cfg_path, seed=seed, log_dir=str(folder / "runs"))
            train(config, resume=True, progress=True)  # a rerun resumes (or reuses) the run
        run_dirs.append(folder / "runs" / name)
    labels = [label for _, label, _, _ in AGENTS.values()]
    png = plot_curves(run_dirs, folder / "reengage_vs_ddpg.png", labels=labels,
                      title=f"ContinuousSeek d={d}: success rate (mean ± std over {len(seeds)} seed(s))")
    curves = [load_curves(r) for r in run_dirs]
    steps_axis = curves[0][0]
    lines = [f"ContinuousSeek d = {d}, {steps} env steps, seed(s) {list(seeds)}; DDPG+HER vs ReenGAGE-DDPG+HER "
             "(alpha = 0.2, thesis convention), each with its Table G.2 batch / learning rate, the rest shared "
             f"(configs in `{folder.name}/*.yaml`, runs with `rlcert train --config ...`). Thesis Fig. 8.2: "
             "ReenGAGE clearly ahead at d = 10.", "",
             "| env steps | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for i, t in enumerate(steps_axis):
        lines.append(f"| {t} | " + " | ".join(f"{np.mean(c[1][:, i]):.2f}" for c in curves) + " |")
    lines += ["", f"![ReenGAGE vs DDPG+HER](agents/{png.name})"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--d", type=int, default=D)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    if args.d < 1:
        parser.error(f"--d must be >= 1, got {args.d}")
    if args.steps is not None and args.steps < 300:
        parser.error(f"--steps must be >= 300, got {args.steps}")
    print("\n".join(run(args.out, args.quick, args.d, args.steps, tuple(args.seeds))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
