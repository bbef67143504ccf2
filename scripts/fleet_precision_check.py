"""Does bf16 change learning? Each experiment trains the same seeds as one fleet in fp32 and in bf16
(``precision``), then compares the success rates at fixed steps.

    python scripts/fleet_precision_check.py                       # 10 seeds, the issue 18 settings (quiet machine)
    python scripts/fleet_precision_check.py --seeds 0-1 --steps 60 --tiny   # a check that it runs

Test: per experiment and evaluation step, the seeds' success rates in fp32 and in bf16 (two independent samples of
10: the runs diverge after the first update) are compared by Welch's two-sided t-test; "within seed spread" means
|mean_bf16 - mean_fp32| <= the larger of the two standard deviations. Writes ``{out}/precision_check.md`` (the
table) and ``{out}/precision_check.png`` (mean +- std curves, fp32 vs bf16). Experiments are rows of
:data:`EXPERIMENTS`; one the fleet cannot run (yet) is reported as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name: (config, total steps, evaluation frequency, overrides)
EXPERIMENTS = {
    "ContinuousSeek d=10 DDPG+HER": ("configs/continuous_seek_d10_ddpg_her.yaml", 10_000, 1000, []),
    "ContinuousSeek d=10 ReenGAGE": ("configs/continuous_seek_d10_reengage.yaml", 6_000, 1000,
                                     ["algo_kwargs.goal_reduction=mean"]),
    # n = 20, not 40: at budgets a check can afford, n = 40 learns nothing in either precision (0 vs 0 says nothing)
    "Bit-Flipping n=20 DQN+HER": ("configs/bit_flipping_n20_dqn_her.yaml", 40_000, 4000, []),
}
TINY = ["algo_kwargs.learning_starts=45", "algo_kwargs.batch_size=16", "eval.episodes=5"]


def read_rates(run_dir: Path) -> dict[int, float]:
    with open(run_dir / "eval.csv") as f:
        return {int(r["timesteps"]): float(r["success_rate"]) for r in csv.DictReader(f)}


def welch_p(a: list[float], b: list[float]) -> float:
    from scipy.stats import ttest_ind

    if len(a) < 2 or len(b) < 2 or (statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0):
        return float("nan") if a != b else 1.0
    return float(ttest_ind(a, b, equal_var=False).pvalue)


def main() -> int:
    from rlcert.fleet.config import unsupported_reason
    from rlcert.fleet.run import parse_seeds, train_fleet
    from rlcert.training import load_config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0-9")
    p.add_argument("--only", nargs="+", choices=list(EXPERIMENTS), help="run these experiments only")
    p.add_argument("--steps", type=int, help="override every experiment's total steps (eval every steps / 2)")
    p.add_argument("--tiny", action="store_true", help="tiny batches and warm-up (a check that the script runs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/precision_check")
    args = p.parse_args()
    seeds = parse_seeds(args.seeds)
    if args.steps is not None and args.steps < 2:
        p.error("--steps must be >= 2")
    out = Path(args.out)
    rows, curves = [], {}
    for name in args.only or list(EXPERIMENTS):
        path, steps, freq, overrides = EXPERIMENTS[name]
        if args.steps is not None:
            steps, freq = args.steps, max(1, args.steps // 2)
        sets = [*overrides, f"total_timesteps={steps}", f"eval.freq={freq}", f"torch_threads={args.threads}",
                *(TINY if args.tiny else [])]
        config = load_config(ROOT / path, sets, log_dir=str(out / "fp32"))
        reason = unsupported_reason(config)
        if reason is not None:
            print(f"{name}: skipped (the fleet does not support {reason})")
            rows.append(f"| {name} | skipped: the fleet does not support {reason} | | | | |")
            continue
        rates = {}
        for precision in ("fp32", "bf16"):
            cfg = load_config(ROOT / path, [*sets, f"precision={precision}"], log_dir=str(out / precision))
            print(f"{name}, {precision}: {len(seeds)} seeds, {steps} steps", flush=True)
            dirs = train_fleet(cfg, seeds, resume=True, progress=False, export=False)
            rates[precision] = [read_rates(d) for d in dirs]
        curves[name] = rates
        for step in sorted(rates["fp32"][0]):
            if step == 0:
                continue
            a = [r[step] for r in rates["fp32"]]
            b = [r[step] for r in rates["bf16"]]
            spread = max(statistics.pstdev(a), statistics.pstdev(b))
            within = abs(statistics.mean(b) - statistics.mean(a)) <= spread
            rows.append(f"| {name} | {step} | {statistics.mean(a):.2f} +- {statistics.pstdev(a):.2f} | "
                        f"{statistics.mean(b):.2f} +- {statistics.pstdev(b):.2f} | {welch_p(a, b):.2f} | "
                        f"{'yes' if within else 'NO'} |")
    out.mkdir(parents=True, exist_ok=True)
    table = ["| experiment | step | fp32 success (mean +- std) | bf16 success | Welch p | within seed spread |",
             "|---|---|---|---|---|---|", *rows]
    text = (f"seeds {args.seeds} ({len(seeds)} per precision), success 'ever' over the evaluation episodes; "
            "Welch's two-sided t-test; within seed spread: |difference of means| <= max std\n\n" + "\n".join(table))
    (out / "precision_check.md").write_text(text + "\n")
    print(text)
    if curves:
        plot(curves, out / "precision_check.png")
    return 0


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
    for ax, (name, rates) in zip(axes[0], curves.items(), strict=True):
        for precision, color in (("fp32", "tab:blue"), ("bf16", "tab:orange")):
            steps = sorted(rates[precision][0])
            values = np.array([[r[s] for s in steps] for r in rates[precision]])
            mean, std = values.mean(0), values.std(0)
            ax.plot(steps, mean, color=color, label=f"{precision} ({len(values)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)
        ax.set_title(name)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("success rate (mean +- std)")
        ax.set_ylim(-0.05, 1.05)
        ax.legend()
    fig.suptitle("fleet: bf16 vs fp32 matmuls")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
