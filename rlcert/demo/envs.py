"""Demo section ``Environments``: roll out the reference policy of each environment, save titled frames with a
legend and summary statistics under ``{out}/envs/``. Run alone: ``python -m rlcert.demo.envs --out runs/demo_envs``."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from rlcert.envs.reference import REFERENCE_POLICIES  # noqa: E402
from rlcert.envs.render import FRAME_LEGENDS, frame_figure  # noqa: E402

FRAME_NOTES = {"ContinuousSeek": "2-D projection onto coordinates 0 and 1", "DriveSeek": "torus: wraps drawn as wraps",
               "NoisySeek": "noisy moves; greedy reference policy", "BitFlipping": "rows = time steps, last row = goal"}


def rollout(env_id: str, episodes: int, seed: int = 0, **kwargs) -> tuple[dict[str, float], np.ndarray]:
    """Run the reference policy; return mean success / return / goals reached and the first episode's frame."""
    env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    policy = REFERENCE_POLICIES[env_id]
    succ, ret, reached, frame = [], [], [], None
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            obs, r, term, trunc, info = env.step(policy(obs))
            total += r
            done = term or trunc
        succ.append(info["is_success"])
        ret.append(total)
        reached.append(info.get("goals_reached", np.nan))
        if frame is None:
            frame = env.render()
    env.close()
    return {"success": float(np.mean(succ)), "return": float(np.mean(ret)),
            "goals_reached": float(np.mean(reached))}, frame


def run(out: Path, quick: bool) -> list[str]:
    """Write ``{out}/envs/env_<name>.png`` (one titled frame per environment) and ``{out}/envs/envs.png``."""
    folder = Path(out) / "envs"
    folder.mkdir(parents=True, exist_ok=True)
    episodes = 20 if quick else 200
    lines = [f"Reference policies, {episodes} episodes each (success = goal ever reached; "
             "goal-set envs: return = goal-steps per episode).", "",
             "| env | policy | success | mean return | distinct goals reached |", "|---|---|---|---|---|"]
    frames = {}
    for env_id, policy in tqdm(REFERENCE_POLICIES.items(), desc="env rollouts"):
        stats, frame = rollout(env_id, episodes)
        name = env_id.split("/")[1]
        frames[name] = frame
        kind = name.split("-")[0]
        fig = frame_figure(frame, f"{name}: {policy.__name__}, episode 1\n({FRAME_NOTES.get(kind, '')})",
                           FRAME_LEGENDS.get(kind, []))
        fig.savefig(folder / f"env_{name}.png", dpi=110)
        plt.close(fig)
        lines.append(f"| {name} | {policy.__name__} | {stats['success']:.2f} | {stats['return']:.2f} | "
                     f"{stats['goals_reached']:.1f} |")
    fig, axes = plt.subplots(1, len(frames), figsize=(4.2 * len(frames), 5.0))
    for ax, (name, frame) in zip(axes, frames.items()):
        ax.imshow(frame, interpolation="nearest", aspect="equal")
        ax.set_title(f"{name}\n{FRAME_NOTES.get(name.split('-')[0], '')}", fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    from matplotlib.patches import Patch

    from rlcert.envs.render import GOAL_SET_LEGEND

    handles = [Patch(facecolor=tuple(c / 255 for c in colour), edgecolor="grey", label=label)
               for label, colour, _ in GOAL_SET_LEGEND]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=10, frameon=False)
    fig.suptitle("Reference-policy rollouts, first episode of each environment (legend: goal-set environments; "
                 "per-environment legends in env_<name>.png)", fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.savefig(folder / "envs.png", dpi=100)
    plt.close(fig)
    lines += ["", "![environments](envs/envs.png)"]
    try:
        from rlcert.envs.hand_reach import make_hand_reach

        env = make_hand_reach()
        obs, _ = env.reset(seed=0)
        done = False
        while not done:
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            done = term or trunc
        lines += ["", f"HandReach-v3 (random actions, 1 episode): final-step success {info['is_success_final']:.0f}, "
                  f"ever reached {info['is_success_ever']:.0f}."]
    except Exception as exc:  # mujoco missing or broken: report instead of failing the whole demo
        lines += ["", f"HandReach-v3 unavailable: {exc!r}"]
    return lines


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rlcert.demo.envs", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/demo_envs"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print("\n".join(run(args.out, args.quick)))
