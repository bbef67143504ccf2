"""How close exported ContinuousSeek policies get to their goals: progress the success rate cannot show yet.

The thesis' metric (success = the goal's eps-box ever reached) stays at 0 until a policy is precise in all d
coordinates at once. This script evaluates exported members (``model.zip``) with deterministic actions and reports,
per episode, the smallest l-inf distance to the goal over the episode's steps and the largest fraction of the d
coordinates within eps; per method the mean +- std over seeds of their episode means, and a one-sided Welch test
(the verdict rule's, :func:`rlcert.reproduce.verdict.welch_greater`) that a method is closer than a baseline.
A diagnostic only: the verdict of ``rlcert reproduce`` rests on the success rate.

    python scripts/goal_distance.py --d 20 --baseline ddpg_her \
        ddpg_her=runs/reproduce/fig8.2-d20/ddpg_her/seed*/model.zip \
        reengage_a0.2=runs/reproduce/fig8.2-d20/reengage_a0.2/seed*/model.zip

``METHOD@STEP=GLOB`` names models exported at a step (e.g. from copies of a fleet checkpoint); with ``--plot
out.png`` the closest distance is drawn against the steps, one line per method (mean +- std over seeds).

Evaluation episodes are seeded ``seed, seed + 1, ...`` (``--seed``), the same goals for every model.
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import rlcert.envs  # noqa: F401  (registers rlcert/ContinuousSeek-v0)
from rlcert.reproduce.verdict import welch_greater

Policy = Callable[[dict], np.ndarray]


def episode_progress(env: gym.Env, policy: Policy, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per episode (shape (episodes,) each): the smallest l-inf distance ||ag - g||_inf over the steps after each
    action, and the largest fraction of coordinates with |ag_i - g_i| <= eps (the env's tolerance)."""
    eps = float(env.unwrapped.eps)
    dist, frac = np.empty(episodes), np.empty(episodes)
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        best_d, best_f, done = np.inf, 0.0, False
        while not done:
            obs, _, term, trunc, _ = env.step(policy(obs))
            gap = np.abs(np.asarray(obs["achieved_goal"], float) - np.asarray(obs["desired_goal"], float))
            best_d, best_f = min(best_d, float(gap.max())), max(best_f, float((gap <= eps).mean()))
            done = term or trunc
        dist[ep], frac[ep] = best_d, best_f
    return dist, frac


def model_policy(path: str) -> Policy:
    from stable_baselines3 import DDPG  # the policy only: DDPG+HER and ReenGAGE members (a DDPG subclass) alike

    model = DDPG.load(path, device="cpu")
    return lambda obs: model.predict(obs, deterministic=True)[0]


def split_step(key: str) -> tuple[str, int] | None:
    """``METHOD@STEP`` -> (METHOD, STEP); None when the key has no integer step."""
    method, sep, step = key.rpartition("@")
    return (method, int(step)) if sep and step.isdigit() else None


def plot(per_seed: dict[str, tuple[np.ndarray, np.ndarray]], d: int, episodes: int, out: str) -> None:
    """Closest l-inf distance (mean +- std over seeds) against the step of each ``METHOD@STEP`` entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, list[tuple[int, np.ndarray]]] = {}
    for key, (dist, _) in per_seed.items():
        method, step = split_step(key)  # type: ignore[misc]  (main() checked every key)
        lines.setdefault(method, []).append((step, dist))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, pts in lines.items():
        pts.sort(key=lambda p: p[0])
        x = np.array([p[0] for p in pts])
        m, sd = np.array([p[1].mean() for p in pts]), np.array([p[1].std() for p in pts])
        ax.plot(x, m, marker="o", label=f"{method} ({len(pts[0][1])} seeds)")
        ax.fill_between(x, m - sd, m + sd, alpha=0.15)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("closest l-inf distance to the goal")
    ax.set_title(f"ContinuousSeek d = {d}: how close the policies get ({episodes} episodes per seed)\n"
                 "mean ± std over seeds; success needs <= eps = 0.1 in every coordinate")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="METHOD=GLOB", help="a method's exported models (one per seed)")
    parser.add_argument("--d", type=int, required=True, help="goal dimension of the runs (ContinuousSeek d)")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per model")
    parser.add_argument("--seed", type=int, default=20_000, help="first evaluation episode's reset seed")
    parser.add_argument("--baseline", default=None, help="METHOD (or METHOD@STEP) the others are compared with")
    parser.add_argument("--plot", default=None, metavar="PNG", help="closest distance against STEP of METHOD@STEP")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    methods: dict[str, list[str]] = {}
    for item in args.runs:
        key, sep, pattern = item.partition("=")
        files = sorted(glob.glob(pattern))
        if not sep or not files:
            parser.error(f"METHOD=GLOB: {item!r} names no model files")
        methods[key] = files
    bad = [k for k in methods if split_step(k) is None]
    if args.plot and bad:
        parser.error(f"--plot needs METHOD@STEP entries (STEP an integer), got {bad[0]!r}")
    if args.baseline is not None and args.baseline not in methods:
        parser.error(f"--baseline must be one of {', '.join(methods)}, got {args.baseline!r}")
    env = gym.make("rlcert/ContinuousSeek-v0", d=args.d)
    per_seed = {}
    for key, files in methods.items():
        rows = [episode_progress(env, model_policy(f), args.episodes, args.seed) for f in files]
        per_seed[key] = (np.array([r[0].mean() for r in rows]), np.array([r[1].mean() for r in rows]))
    if args.plot:
        plot(per_seed, args.d, args.episodes, args.plot)
    print(f"| method (d = {args.d}, {args.episodes} episodes per seed) | seeds | closest l-inf distance | "
          f"fraction of coordinates within eps |" + (" closer than baseline: one-sided Welch p |"
                                                     if args.baseline else ""))
    print("|---|---|---|---|" + ("---|" if args.baseline else ""))
    for key, (dist, frac) in per_seed.items():
        cells = [key, str(len(dist)), f"{dist.mean():.2f} ± {dist.std():.2f}", f"{frac.mean():.2f} ± {frac.std():.2f}"]
        if args.baseline:
            base = per_seed[args.baseline][0]
            cells.append("-" if key == args.baseline or len(dist) < 2 else f"{welch_greater(base, dist):.2g}")
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
