"""Demo section "Certifying agents": train agents plain and with smoothed training, then certify them.

Agents: DDPG + HER on ContinuousSeek d=2 (continuous actions) and DQN + HER on Bit-Flipping n=6 (discrete actions),
each trained plain and with the certification noise on its desired goal (``configs/continuous_seek_d2_smoothed.yaml``,
``configs/bit_flipping_dqn_her_smoothed.yaml``; plain = ``observation_noise: null``). Each is certified with
``rlcert certify-policy`` (goal perturbed, Gaussian noise of the config's sigma): per-step certificates at
visited observations and the policy-smoothing certificate of the expected return vs the total l2 budget.
Budgets: the full demo trains 4000 (ContinuousSeek) / 6000 (Bit-Flipping) steps and certifies 300 episodes
(docs/certify_policy.md reports the configs' full budgets, 500 episodes); ``quick``: 200 steps, 16 episodes (a smoke
run: the agents are untrained). Everything is written under ``<out>/certify_policy/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rlcert.certify.policy.cli import main as certify_policy
from rlcert.certify.policy.plot import plot_return_comparison
from rlcert.train import load_config, train

CONFIGS = Path(__file__).resolve().parent / "configs"  # links to the repo's configs/, real files in the wheel
AGENTS = [  # (label, config file, tag, sigma, --eps, training steps of the full demo)
    ("ContinuousSeek d=2, DDPG+HER", "continuous_seek_d2_smoothed.yaml", "continuous_seek", 0.1,
     "0,0.02,0.05,0.1,0.15,0.2,0.3", 4000),
    ("Bit-Flipping n=6, DQN+HER", "bit_flipping_dqn_her_smoothed.yaml", "bit_flipping", 0.25,
     "0,0.05,0.1,0.2,0.3,0.5,0.75", 6000),
]
QUICK = ["total_timesteps=200", "algo_kwargs.learning_starts=100", "algo_kwargs.batch_size=32", "eval.freq=100000",
         "eval.episodes=5", "checkpoint=false"]


def run(out: Path, quick: bool) -> list[str]:
    torch.set_num_threads(1)
    base = out / "certify_policy"
    base.mkdir(parents=True, exist_ok=True)
    budget = ["--episodes", "16", "--n", "200", "--steps", "3"] if quick else \
        ["--episodes", "300", "--n", "2000", "--steps", "8"]
    lines = ["Agents trained plain and with smoothed training (Gaussian noise on the desired goal), certified with "
             "`rlcert certify-policy` (goal perturbed). Certified return: policy smoothing (Kumar et al. 2022), "
             "DKW band at alpha = 0.05, total l2 budget eps over the episode.", "",
             "| agent | training | clean return | smoothed return | certified return at eps = " +
             " / ".join(a[4].split(",")[i] for a in AGENTS[:1] for i in (0, 3, 5)) + " (ContinuousSeek), "
             + " / ".join(AGENTS[1][4].split(",")[i] for i in (0, 3, 5)) + " (Bit-Flipping) | per-step |",
             "|---|---|---|---|---|---|"]
    panels: dict[str, dict[str, dict]] = {}
    for label, cfg_file, tag, sigma, eps, steps in AGENTS:
        for variant in ("plain", "smoothed"):
            overrides = (QUICK if quick else [f"total_timesteps={steps}"]) + \
                (["observation_noise=null"] if variant == "plain" else [])
            config = load_config(CONFIGS / cfg_file, overrides, log_dir=str(base / "train"))
            config["name"] = f"{tag}_{variant}"
            _, run_dir = train(config, resume=True, progress=False)  # a rerun resumes
            name = f"{tag}_{variant}"
            args = ["--model", str(run_dir / "model.zip"), "--perturb", "desired_goal", "--sigma", str(sigma),
                    "--eps", eps, "--out", str(base / f"{name}.tsv"), "--plot-dir", str(base / name),
                    "--no-progress", "--device", "cpu", *budget]
            if certify_policy(args) != 0:
                raise RuntimeError(f"certify-policy failed for {name}")
            summary = json.loads((base / f"{name}.tsv.json").read_text())
            rt, st = summary["return"], summary["steps"]
            panels.setdefault(label, {})[variant] = rt
            if "radius" in st:
                per_step = (f"smoothed action certified at {sum(r > 0 for r in st['radius'])}/{len(st['radius'])} "
                            f"observations, median l2 radius {sorted(st['radius'])[len(st['radius']) // 2]:.3f}")
            else:
                radii = sorted(o["ball_radius"] for o in st["per_observation"])
                med = radii[len(radii) // 2]
                per_step = (f"median l2 radius keeping the smoothed action within l2 {st['ball']} of the clean one: "
                            + (f"{med:.3f}" if med >= 0 else "none (not even at radius 0)")
                            + f"; {sum(r >= 0 for r in radii)}/{len(radii)} observations certified")
            cert = " / ".join(f"{rt['dkw'][i]:.2f}" for i in (0, 3, 5))
            lines.append(f"| {label} | {variant} | {rt['clean_mean']:.2f} | {rt['smoothed_mean']:.2f} | {cert} | "
                         f"{per_step} |")
    png = plot_return_comparison(panels, base / "certified_return_plain_vs_smoothed.png",
                                 "Certified expected return under an l2 observation attacker (goal perturbed)")
    lines += ["", f"![certified return]({png.relative_to(out)})", "",
              f"Per-agent plots: `{base.relative_to(out)}/<agent>/action_bounds.png` (or `action_radii.png`) and "
              "`certified_return.png`."]
    return lines
