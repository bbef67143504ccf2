"""The results page of a Fig. 8.4 experiment on synthetic runs (returns, a reference policy, three claims), and
the reference policies' evaluation."""

from __future__ import annotations

import csv
from pathlib import Path

from rlcert.agents.callbacks import CSV_FIELDS
from rlcert.reproduce.experiments import EXPERIMENTS
from rlcert.reproduce.page import write_page
from rlcert.reproduce.run import evaluate_reference, method_config, plan


def write_curve(path: Path, steps: list[int], values: list[float]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "eval.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for t, v in zip(steps, values):
            w.writerow({"timesteps": t, "success_rate": "nan", "mean_return": v, "std_return": 0.0, "episodes": 100,
                        "metric": "return", "wall_time_s": 0.0})
    (path / "model.zip").write_bytes(b"")


def test_fig84_page_on_synthetic_curves(tmp_path):
    exp = EXPERIMENTS["fig8.4-noisyseek"]
    p = plan(exp, [0, 1, 2], 8000, "fp32", tmp_path, None, resume=False)
    steps = [0, 4000, 8000]
    for s in range(3):
        write_curve(p.exp_dir / "ddpg" / f"seed{s}", steps, [0.5, 2.0 + 0.1 * s, 3.0 + 0.2 * s])
        write_curve(p.exp_dir / "multi_reengage" / f"seed{s}", steps, [0.5, 8.0 + s, 20.0 + 0.5 * s])
        write_curve(p.exp_dir / "greedy" / f"seed{s}", [0, 8000], [11.0 + 0.3 * s] * 2)
    page = write_page(p, {"ddpg": 7200.0}).read_text()
    assert "**Verdict: not yet** with 3 seeds (thesis: 5) at 8000 env steps (thesis: 160000)" in page
    lines = [x for x in page.splitlines() if x.startswith("* **")]
    assert len(lines) == 3
    assert lines[0].startswith("* **reproduces**: Multi-ReenGAGE alpha=10 beats DDPG (DeepSets), at 8000 steps")
    assert lines[1].startswith("* **reproduces**: Multi-ReenGAGE alpha=10 beats greedy")
    assert lines[2].startswith("* **not yet**: DDPG (DeepSets) beats greedy")  # 3.2 < 11.3, budget cut
    assert "| greedy (nearest goal) (3 seeds)" not in page and "| greedy (nearest goal) | 11.30 ± 0.24 |" in page
    assert "| DDPG (DeepSets) | 0.50 ± 0.00 | 2.10 ± 0.08 | 3.20 ± 0.16 |" in page
    assert "| 2.0 h |" in page and "Still needed" in page and (p.exp_dir / f"{exp.name}.png").stat().st_size > 10_000


def test_reference_policies_reach_the_goal_where_they_are_optimal(tmp_path):
    """Straight-line ContinuousSeek (d = 5: at most 5 steps of 10) and first-differing-bit Bit-Flipping are
    optimal: every evaluation episode succeeds."""
    for exp_name, key in (("fig8.2-d5", "ddpg_her"), ("figG.1-n40", "dqn_her")):
        exp = EXPERIMENTS[exp_name]
        config = method_config(exp, exp.method(key), [0], 1000, "fp32", tmp_path)
        config["eval"]["episodes"] = 5
        evaluate_reference(config, 3, 1000, tmp_path / exp_name)
        with open(tmp_path / exp_name / "eval.csv") as f:
            rows = list(csv.DictReader(f))
        assert [int(r["timesteps"]) for r in rows] == [0, 1000]
        assert all(float(r["success_rate"]) == 1.0 and int(r["episodes"]) == 5 for r in rows)
