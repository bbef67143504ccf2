"""Demo section: roll out the reference policy of each environment, save frames and summary statistics."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from rlcert.envs.reference import REFERENCE_POLICIES  # noqa: E402


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
    episodes = 20 if quick else 200
    lines = [f"Reference policies, {episodes} episodes each (success = goal ever reached; "
             "goal-set envs: return = goal-steps per episode).", "",
             "| env | policy | success | mean return | distinct goals reached |", "|---|---|---|---|---|"]
    frames = {}
    for env_id, policy in tqdm(REFERENCE_POLICIES.items(), desc="env rollouts"):
        stats, frame = rollout(env_id, episodes)
        frames[env_id] = frame
        name = env_id.split("/")[1]
        plt.imsave(out / f"env_{name}.png", frame)
        lines.append(f"| {name} | {policy.__name__} | {stats['success']:.2f} | {stats['return']:.2f} | "
                     f"{stats['goals_reached']:.1f} |")
    fig, axes = plt.subplots(1, len(frames), figsize=(4 * len(frames), 4.4))
    for ax, (env_id, frame) in zip(axes, frames.items()):
        ax.imshow(frame, interpolation="nearest")
        ax.set_title(env_id.split("/")[1])
        ax.axis("off")
    fig.suptitle("reference rollouts: cyan = goal never reached, blue = reached, magenta = visited non-goal cell")
    fig.tight_layout()
    fig.savefig(out / "envs.png", dpi=90)
    plt.close(fig)
    lines += ["", "![environments](envs.png)"]
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
