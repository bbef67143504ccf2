"""sweep-report on a hand-made sweep folder: AUC by hand, mean +- std over seeds, ranking within each method
(method_keys make separate rows), the Table G.2-style table, figures."""

import csv
import json
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from rlcert.sweep.report import area_under_curve, main

FIELDS = ["timesteps", "success_rate", "mean_return", "std_return", "episodes", "metric", "wall_time_s"]


def test_area_under_curve_by_hand():
    # trapezoids: 100 * (0 + .5) / 2 + 200 * (.5 + 1) / 2 = 175, over a span of 300 steps
    assert area_under_curve(np.array([0, 100, 300]), np.array([0.0, 0.5, 1.0])) == pytest.approx(175 / 300)
    two = area_under_curve(np.array([0, 100, 300]), np.array([[0.0, 0.5, 1.0], [1.0, 1.0, 1.0]]))
    assert two == pytest.approx([175 / 300, 1.0])
    assert area_under_curve(np.array([50]), np.array([0.3])) == pytest.approx(0.3)


def make_sweep(root, curves, settings, method_keys=()):
    """curves: {(setting, seed): {step: success}}; settings: {setting: (method, params)}."""
    swept = list(dict.fromkeys(k for _, p in settings.values() for k in p))
    manifest = {"name": "hand", "kind": "grid", "swept_keys": swept, "method_keys": list(method_keys),
                "metric": "success_rate", "methods": {},
                "settings": {sid: {"method": m, "params": p, "seeds": sorted({s for (x, s) in curves if x == sid})}
                             for sid, (m, p) in settings.items()}, "trials": []}
    root.mkdir(parents=True)
    (root / "sweep.json").write_text(json.dumps(manifest))
    for (sid, seed), curve in curves.items():
        run = root / "trials" / sid / f"seed{seed}"
        run.mkdir(parents=True)
        with open(run / "eval.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            for step, v in curve.items():
                w.writerow({"timesteps": step, "success_rate": v, "mean_return": -10 + 10 * v, "std_return": 0,
                            "episodes": 10, "metric": "ever", "wall_time_s": 1})


def test_report_ranks_by_auc_and_writes_table_and_figures(tmp_path):
    lr, alpha = "algo_kwargs.learning_rate", "algo_kwargs.alpha"
    settings = {"H-fast": ("HER", {lr: 0.001}), "H-slow": ("HER", {lr: 0.0005}),
                "R1-a": ("ReenGAGE", {lr: 0.001, alpha: 0.1}), "R1-b": ("ReenGAGE", {lr: 0.0005, alpha: 0.1}),
                "R2-a": ("ReenGAGE", {lr: 0.001, alpha: 0.2})}
    curves = {
        # H-fast: AUCs 0.5 and 0.7 (constant curves) -> mean 0.6, std 0.1. A third, unaligned step (150) on seed 0
        # only is dropped by the alignment on common steps.
        ("H-fast", 0): {0: 0.5, 150: 0.0, 200: 0.5}, ("H-fast", 1): {0: 0.7, 200: 0.7},
        # H-slow: ramps 0 -> 1: AUC 0.5 on both seeds, but final value 1.0 (higher final, lower AUC than H-fast)
        ("H-slow", 0): {0: 0.0, 200: 1.0}, ("H-slow", 1): {0: 0.0, 200: 1.0},
        ("R1-a", 0): {0: 0.1, 200: 0.1}, ("R1-b", 0): {0: 0.3, 200: 0.3}, ("R2-a", 0): {0: 0.9, 200: 0.9},
    }
    sweep = tmp_path / "hand"
    make_sweep(sweep, curves, settings, method_keys=[alpha])
    assert main([str(sweep)]) == 0
    out = sweep / "report"
    rows = list(csv.DictReader(open(out / "settings.csv")))
    by = {r["setting"]: r for r in rows}
    assert float(by["H-fast"]["auc_mean"]) == pytest.approx(0.6)
    assert float(by["H-fast"]["auc_std"]) == pytest.approx(0.1)
    assert by["H-fast"]["rank"] == "1" and by["H-slow"]["rank"] == "2"  # ranked by AUC, not by final value
    assert float(by["H-slow"]["final_mean"]) == 1.0 and by["H-fast"]["last_step"] == "200"
    # alpha is a method key: "ReenGAGE alpha=0.1" and "ReenGAGE alpha=0.2" are ranked separately
    assert by["R1-b"]["method"] == "ReenGAGE alpha=0.1" and by["R1-b"]["rank"] == "1" and by["R1-a"]["rank"] == "2"
    assert by["R2-a"]["method"] == "ReenGAGE alpha=0.2" and by["R2-a"]["rank"] == "1"
    report = (out / "report.md").read_text()
    best = report.split("### Every setting")[0]
    assert "| HER | 0.001 | 0.600 ± 0.100 | 0.600 ± 0.100 | 2 |" in best
    assert "| ReenGAGE alpha=0.1 | 0.0005 | 0.300 ± 0.000 |" in best and "| ReenGAGE alpha=0.2 | 0.001 |" in best
    assert "0.0005 | 0.500" not in best  # H-slow is not a best setting
    for png in [out / "best_curves.png", *[out / "settings" / f"{s}.png" for s in settings]]:
        h, w = matplotlib.image.imread(png).shape[:2]
        assert w >= 600 and h >= 400
    assert (sweep / "results.csv").exists() and len(list(csv.DictReader(open(sweep / "results.csv")))) == 15


def test_report_of_a_folder_that_is_not_a_sweep(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "sweep.json" in err and len(err.splitlines()) == 1


def test_sweep_modules_do_not_import_ray():
    code = "import sys, rlcert.sweep.cli, rlcert.sweep.report, rlcert.sweep.runner; print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"
