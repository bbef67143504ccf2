"""Thesis Fig. 8.4 on a step budget: DDPG vs Multi-ReenGAGE on NoisySeek and DriveSeek (and the greedy agent).

Defaults are Table G.4 (n_max 200, encoder 2 x 400 -> 20, heads 1 x 400, batch 256, lr 1e-3, gamma 0.95, tau
0.005, noise 0.1 / 0.05, shared encoder, plain replay buffer, 1000 steps before training) with the agents-v2
conventions: DeepSets pooling sum_i b_i^2 Enc / n_max, alpha = coefficient of the mean over the n_max gates
(thesis a = 5, 10, 20). Agents: ``ddpg`` (alpha 0, same networks), ``mrg_partial`` (target gate gradient through
Q' only, as in the published runs), ``mrg_total`` (through the target actor, the thesis' formula).
Only the number of environment steps (and the evaluation schedule) is cut.

Every (env, agent, seed) run writes ``<out>/<env>_<agent>_s<seed>.csv`` (timesteps, mean_return, std_return,
mean_goals_reached, success_rate, wall_s); the rows are flushed as they come and a run counts as finished once its
``.done`` marker exists, so the script can be interrupted and re-run: finished runs are skipped and an unfinished
run starts again. The greedy reference (NoisySeek) goes to ``greedy_<env>.csv``. ``--plot`` draws mean +- std.

    PYTHONPATH=. python scripts/multi_goal_experiment.py --out runs/multi_goal --steps 20000 --plot
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import NormalActionNoise
from tqdm import tqdm

import rlcert  # noqa: F401  (registers the environments)
from rlcert.agents.deepsets import DeepSetsTD3Policy
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG
from rlcert.envs import greedy_action

ENVS = {"noisy": ("rlcert/NoisySeek-v0", 0.1), "drive": ("rlcert/DriveSeek-v0", 0.05)}  # Table G.4 action noise
FIELDS = ["timesteps", "mean_return", "std_return", "mean_goals_reached", "success_rate", "wall_s"]


def evaluate(policy, env_id: str, env_kwargs: dict, episodes: int, seed0: int = 10_000) -> dict[str, float]:
    """Deterministic evaluation on the same goal sets every time (episode k uses reset seed seed0 + k)."""
    env = gym.make(env_id, **env_kwargs)
    returns, reached, success = [], [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed0 + k)
        total, done, info = 0.0, False, {}
        while not done:
            obs, r, term, trunc, info = env.step(policy(obs))
            total += r
            done = term or trunc
        returns.append(total)
        reached.append(info["goals_reached"])
        success.append(info["is_success"])
    return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
            "mean_goals_reached": float(np.mean(reached)), "success_rate": float(np.mean(success))}


class EvalToCsv(BaseCallback):
    """Evaluate every ``freq`` steps and append one flushed CSV row."""

    def __init__(self, writer, fh, env_id: str, env_kwargs: dict, freq: int, episodes: int) -> None:
        super().__init__()
        self.writer, self.fh, self.env_id, self.env_kwargs = writer, fh, env_id, env_kwargs
        self.freq, self.episodes, self.t0 = freq, episodes, time.perf_counter()

    def _write(self) -> None:
        row = evaluate(lambda o: self.model.predict(o, deterministic=True)[0], self.env_id, self.env_kwargs,
                       self.episodes)
        self.writer.writerow({"timesteps": self.num_timesteps, **row, "wall_s": time.perf_counter() - self.t0})
        self.fh.flush()

    def _on_training_start(self) -> None:
        self._write()

    def _on_step(self) -> bool:
        if self.num_timesteps % self.freq == 0:
            self._write()
        return True


def run_one(args: argparse.Namespace, env_name: str, agent: str, seed: int) -> None:
    path = args.out / f"{env_name}_{agent}_s{seed}.csv"
    done_marker = path.with_suffix(".done")
    if done_marker.exists():
        return
    env_id, sigma = ENVS[env_name]
    env_kwargs = {"n_max": args.n_max}
    env = gym.make(env_id, **env_kwargs)
    n_actions = env.action_space.shape[0]
    alpha = 0.0 if agent == "ddpg" else args.alpha
    torch.manual_seed(seed)
    model = MultiReenGAGEDDPG(
        DeepSetsTD3Policy, env, alpha=alpha, goal_reduction="mean", through_target_actor=agent == "mrg_total",
        learning_rate=args.lr, batch_size=args.batch, gamma=0.95, tau=0.005,
        learning_starts=args.learning_starts, buffer_size=args.steps,
        action_noise=NormalActionNoise(np.zeros(n_actions), sigma * np.ones(n_actions)), seed=seed,
        policy_kwargs={"embed_dim": 20, "encoder_arch": [args.width, args.width], "head_arch": [args.width],
                       "share_encoder": True, "pooling": args.pooling})
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        model.learn(args.steps, callback=EvalToCsv(writer, fh, env_id, env_kwargs, args.eval_freq,
                                                   args.eval_episodes))
    done_marker.write_text(json.dumps({"alpha": alpha, **{k: str(v) for k, v in vars(args).items()}}))


def run_greedy(args: argparse.Namespace) -> None:
    path = args.out / "greedy_noisy.csv"
    if path.exists():
        return
    row = evaluate(greedy_action, ENVS["noisy"][0], {"n_max": args.n_max}, args.greedy_episodes)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n")
    tmp.replace(path)


def plot(args: argparse.Namespace) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.envs), figsize=(5.5 * len(args.envs), 4), squeeze=False)
    for ax, env_name in zip(axes[0], args.envs):
        for agent, colour in (("ddpg", "tab:blue"), ("mrg_partial", "tab:red"), ("mrg_total", "tab:orange")):
            paths = sorted(args.out.glob(f"{env_name}_{agent}_s*.csv"))
            runs = [np.genfromtxt(p, delimiter=",", names=True) for p in paths if p.with_suffix(".done").exists()]
            if not runs:
                continue
            n = min(len(r) for r in runs)
            t = runs[0]["timesteps"][:n]
            y = np.stack([r["mean_return"][:n] for r in runs])
            label = {"ddpg": "DDPG", "mrg_partial": f"Multi-ReenGAGE alpha={args.alpha:g}, partial target grad.",
                     "mrg_total": f"Multi-ReenGAGE alpha={args.alpha:g}, total target grad."}[agent]
            ax.plot(t, y.mean(0), color=colour, label=f"{label}, {len(runs)} seeds")
            ax.fill_between(t, y.mean(0) - y.std(0), y.mean(0) + y.std(0), color=colour, alpha=0.2)
        greedy = args.out / f"greedy_{env_name}.csv"
        if greedy.exists():
            g = np.genfromtxt(greedy, delimiter=",", names=True)
            ax.axhline(float(g["mean_return"]), color="k", ls="--", label="greedy (nearest goal)")
        ax.set_title(f"{ENVS[env_name][0]} (n_max={args.n_max})")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("mean evaluation return (goal hits / episode)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out / "multi_goal_curves.png", dpi=110)
    print(f"wrote {args.out / 'multi_goal_curves.png'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/multi_goal_v2"))
    p.add_argument("--envs", nargs="+", default=["noisy", "drive"], choices=sorted(ENVS))
    p.add_argument("--agents", nargs="+", default=["ddpg", "mrg_partial", "mrg_total"],
                   choices=["ddpg", "mrg_partial", "mrg_total"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=20_000, help="environment steps per run (thesis: 160000)")
    p.add_argument("--n-max", type=int, default=200, help="goal-set size bound (thesis: 200)")
    p.add_argument("--width", type=int, default=400, help="hidden width of encoder and heads (thesis: 400)")
    p.add_argument("--batch", type=int, default=256, help="batch size (thesis: 256)")
    p.add_argument("--pooling", default="n_max", choices=["n_max", "sum"],
                   help="DeepSets pooling: sum / n_max (the authors', default) or the plain sum")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--learning-starts", type=int, default=1000)
    p.add_argument("--alpha", type=float, default=10.0,
                   help="coefficient of the mean over the n_max gates (thesis: 5, 10, 20; NoisySeek also 50, 100)")
    p.add_argument("--eval-freq", type=int, default=2000, help="thesis: 4000")
    p.add_argument("--eval-episodes", type=int, default=50, help="thesis: 100")
    p.add_argument("--greedy-episodes", type=int, default=200)
    p.add_argument("--plot", action="store_true", help="draw the curves after running")
    p.add_argument("--plot-only", action="store_true")
    p.add_argument("--greedy-only", action="store_true", help="only evaluate the greedy reference (NoisySeek)")
    args = p.parse_args(argv)
    for name in ("steps", "n_max", "width", "batch", "eval_freq", "eval_episodes"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if not args.plot_only:
        if "noisy" in args.envs:
            run_greedy(args)
        jobs = [] if args.greedy_only else [(e, a, s) for e in args.envs for s in args.seeds for a in args.agents]
        for env_name, agent, seed in tqdm(jobs, desc="runs"):
            run_one(args, env_name, agent, seed)
    if args.plot or args.plot_only:
        plot(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
