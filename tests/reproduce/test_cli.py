"""``rlcert reproduce``: --list, bad input refused in one line before anything is written, a tiny end-to-end run
that writes the page and figure, a second invocation that redoes nothing, a SIGKILL mid-run then --resume equal
to an uninterrupted run."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch as th
from PIL import Image

from rlcert.agents import ReenGAGEDDPG
from rlcert.reproduce.cli import main
from rlcert.reproduce.experiments import EXPERIMENTS, estimate_time, load_costs

ROOT = Path(__file__).resolve().parents[2]


def same_params(a: Path, b: Path) -> bool:
    """The two exported members' policies (actor and critic networks) are bit-identical."""
    pa, pb = ReenGAGEDDPG.load(a).policy.state_dict(), ReenGAGEDDPG.load(b).policy.state_dict()
    return pa.keys() == pb.keys() and all(th.equal(pa[k], pb[k]) for k in pa)


def rows(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in csv.DictReader(f)]


def test_list_names_every_experiment_with_its_estimate(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name, exp in EXPERIMENTS.items():
        assert f"\n{name}: " in "\n" + out
        assert exp.finding in out
        for m in exp.methods:
            assert f"- {m.key}: " in out
    for required in ("fig8.2-d5", "fig8.2-d10", "fig8.2-d20", "tableG.3-d10", "figG.1-n40", "fig8.4-driveseek",
                     "fig8.4-noisyseek", "fig8.3-handreach"):
        assert required in EXPERIMENTS
    assert out.count("estimated CPU") == len(EXPERIMENTS) and "GPU unmeasured" in out


def test_registered_as_an_rlcert_command(capsys):
    from rlcert import cli

    assert cli.main(["--help"]) == 0 and "  reproduce " in capsys.readouterr().out
    assert cli.main(["reproduce", "--list"]) == 0 and "fig8.2-d20: " in capsys.readouterr().out


def test_estimate_is_steps_over_rate():
    exp, costs = EXPERIMENTS["fig8.3-handreach"], load_costs()  # sequential SB3 rates: still estimates
    est = estimate_time(exp, 5, 1_600_000, costs)
    want = sum(5 * 1_600_000 / costs[m.cost].cpu for m in exp.methods)
    assert est.cpu_s == pytest.approx(want) and est.gpu_s is None and est.estimate
    half = estimate_time(exp, 5, 1_600_000, costs, done_steps={m.key: 4_000_000 for m in exp.methods})
    assert half.cpu_s == pytest.approx(want / 2)


def test_every_method_config_loads():
    from rlcert.reproduce.experiments import CONFIGS
    from rlcert.reproduce.run import method_config

    for exp in EXPERIMENTS.values():
        for m in exp.methods:
            config = method_config(exp, m, [0], 1000, "fp32", Path("unused"))
            assert config["name"] == m.key and config["total_timesteps"] == 1000
            assert (CONFIGS / m.config).is_file()
    assert EXPERIMENTS["fig8.2-d20"].method("reengage_a0.3").set == ("algo_kwargs.alpha=0.3",)


@pytest.mark.parametrize("argv, words", [
    (["fig9.9"], ["EXPERIMENT", "fig9.9", "fig8.2-d20"]),
    (["smoke", "--seeds", "3-x"], ["--seeds"]),
    (["smoke", "--seeds", "1,1"], ["--seeds", "distinct"]),
    (["smoke", "--steps", "0"], ["--steps", ">= 1"]),
    (["smoke", "--precision", "fp16"], ["--precision", "fp32, bf16"]),
    (["smoke", "--threads", "0"], ["--threads", ">= 1"]),
    (["smoke", "--methods", "alpha9"], ["--methods", "alpha9", "alpha0, alpha0.2"]),
    (["smoke", "--methods", "alpha0,alpha0"], ["--methods", "distinct"]),
    (["smoke", "--methods", ","], ["--methods", "distinct"]),
    ([], ["EXPERIMENT", "--list"]),
])
def test_bad_input_is_one_line_before_anything_is_written(argv, words, tmp_path, capsys):
    log = tmp_path / "runs"
    assert main([*argv, "--log-dir", str(log), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("rlcert reproduce: error:")
    for w in words:
        assert w in err
    assert not log.exists()


def test_tiny_run_writes_page_and_figure_then_redoes_nothing(tmp_path, capsys):
    log, res = tmp_path / "runs", tmp_path / "results"
    argv = ["smoke", "--steps", "200", "--log-dir", str(log), "--results-dir", str(res), "--no-progress"]
    assert main(argv) == 0
    page = (res / "smoke.md").read_text()
    assert "**Verdict: " in page and "| method | 0 | 100 | 200 |" in page and "one-sided Welch" in page
    assert "with 2 seeds (thesis: 2) at 200 env steps" in page and "Still needed" in page
    img = np.asarray(Image.open(res / "smoke.png").convert("L"))
    assert img.shape[0] > 200 and img.std() > 10
    for m in ("alpha0", "alpha0.2"):
        for s in (0, 1):
            assert [int(r["timesteps"]) for r in rows(log / "smoke" / m / f"seed{s}" / "eval.csv")] == [0, 100, 200]
    capsys.readouterr()
    # the same folder again: refused without --resume (one line), nothing retrained with it
    assert main(argv) == 2 and "--resume" in capsys.readouterr().err
    stamp = {p: p.stat().st_mtime_ns for p in (log / "smoke").rglob("*") if p.is_file() and p.suffix != ".json"
             and p.suffix != ".md" and p.suffix != ".png"}
    assert main([*argv, "--resume"]) == 0
    out = capsys.readouterr().out
    assert out.count("all 2 seeds done at 200 steps (kept)") == 2
    assert stamp == {p: p.stat().st_mtime_ns for p in stamp}
    # other precision than the folder's: refused in one line
    assert main([*argv, "--resume", "--precision", "bf16"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "precision" in err and "fp32" in err


def _command(log: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rlcert.cli", "reproduce", "smoke", "--steps", str(steps), "--log-dir", str(log),
            "--no-progress", *extra]


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    """The second method is killed (SIGKILL) after its first checkpoints; --resume finishes it with the same CSVs
    as an uninterrupted run, and the first method (finished before the kill) is not redone."""
    steps = 1200
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    subprocess.run(_command(ref, steps), cwd=ROOT, env=env, check=True, capture_output=True, timeout=900)

    proc = subprocess.Popen(_command(cut, steps), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    csv1 = cut / "smoke" / "alpha0.2" / "seed1" / "eval.csv"
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None:
        if csv1.exists() and len(rows(csv1)) >= 3:  # >= 2 evaluations (and checkpoints) after step 0
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = int(rows(csv1)[-1]["timesteps"])
    assert 0 < killed_at < steps
    first = cut / "smoke" / "alpha0" / "seed0"
    stamp = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}

    done = subprocess.run(_command(cut, steps, "--resume"), cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True, timeout=900)
    assert "alpha0: all 2 seeds done" in done.stdout and "resuming 2 members from step" in done.stdout
    assert stamp == {p.name: p.stat().st_mtime_ns for p in first.iterdir()}  # finished method not redone
    for m in ("alpha0", "alpha0.2"):
        for s in (0, 1):
            a, b = ref / "smoke" / m / f"seed{s}" / "eval.csv", cut / "smoke" / m / f"seed{s}" / "eval.csv"
            assert rows(a) == rows(b) and len(rows(a)) == steps // 100 + 1
            assert same_params(a.parent / "model.zip", b.parent / "model.zip")
    assert (cut / "smoke" / "smoke.md").exists()


def test_more_steps_later_continue_the_runs(tmp_path, capsys):
    """--steps 200, then --resume --steps 400: the runs continue from step 200 and end as a direct 400-step run."""
    once, twice = tmp_path / "once", tmp_path / "twice"
    assert main(["smoke", "--steps", "400", "--log-dir", str(once), "--no-progress"]) == 0
    assert main(["smoke", "--steps", "200", "--log-dir", str(twice), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["smoke", "--steps", "400", "--log-dir", str(twice), "--no-progress", "--resume"]) == 0
    assert capsys.readouterr().out.count("resuming 2 members from step 200") == 2
    for m in ("alpha0", "alpha0.2"):
        for s in (0, 1):
            a, b = once / "smoke" / m / f"seed{s}", twice / "smoke" / m / f"seed{s}"
            assert rows(a / "eval.csv") == rows(b / "eval.csv")
            assert same_params(a / "model.zip", b / "model.zip")
    assert not same_params(once / "smoke" / "alpha0" / "seed0" / "model.zip",
                           once / "smoke" / "alpha0" / "seed1" / "model.zip")  # the check can tell runs apart


def test_two_invocations_with_disjoint_methods_at_once_equal_one_run(tmp_path):
    """Two processes at once on one folder (--methods alpha0 / --methods alpha0.2 --resume): the same CSVs and
    networks as one invocation; only the invocation that finishes last writes the page, with both CPU times."""
    steps = 300
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(_command(one, steps), cwd=ROOT, env=env, check=True, capture_output=True, timeout=900)
    first = subprocess.Popen(_command(two, steps, "--methods", "alpha0"), cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = two / "smoke" / "reproduce.json"
    deadline = time.time() + 300
    while not state.exists() and time.time() < deadline:
        time.sleep(0.02)
    second = subprocess.Popen(_command(two, steps, "--methods", "alpha0.2", "--resume"), cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = [p.communicate(timeout=900) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    written = [out for out, _ in outs if "done: " in out]
    waiting = [out for out, _ in outs if "results page not written yet" in out]
    assert len(written) + len(waiting) == 2 and written, outs  # the later one writes it (both may, if at once)
    for m in ("alpha0", "alpha0.2"):
        for s in (0, 1):
            a, b = one / "smoke" / m / f"seed{s}", two / "smoke" / m / f"seed{s}"
            assert rows(a / "eval.csv") == rows(b / "eval.csv")
            assert same_params(a / "model.zip", b / "model.zip")
    cpu = json.loads(state.read_text())["cpu_s"]
    assert set(cpu) == {"alpha0", "alpha0.2"} and min(cpu.values()) > 0
    page = (two / "smoke" / "smoke.md").read_text()
    assert "--methods" not in page and "**Verdict: " in page


def test_methods_subset_waits_for_the_others_before_writing_the_page(tmp_path, capsys):
    log = tmp_path / "runs"
    base = ["smoke", "--steps", "200", "--log-dir", str(log), "--no-progress"]
    assert main([*base, "--methods", "alpha0.2"]) == 0
    out = capsys.readouterr().out
    assert "results page not written yet: alpha0 not done at 200 steps" in out and "--methods alpha0 " in out
    assert not (log / "smoke" / "smoke.md").exists() and not (log / "smoke" / "alpha0").exists()
    assert main([*base, "--methods", "alpha0", "--resume"]) == 0
    assert "done: " in capsys.readouterr().out and (log / "smoke" / "smoke.md").exists()


def test_more_seeds_later_keep_the_finished_ones_and_equal_one_run(tmp_path, capsys):
    once, twice = tmp_path / "once", tmp_path / "twice"
    base = ["smoke", "--steps", "200", "--no-progress"]
    assert main([*base, "--seeds", "0-2", "--log-dir", str(once)]) == 0
    assert main([*base, "--seeds", "0", "--log-dir", str(twice)]) == 0
    stamp = {p: p.stat().st_mtime_ns for p in (twice / "smoke").rglob("seed0/*")}
    capsys.readouterr()
    assert main([*base, "--seeds", "0-2", "--log-dir", str(twice), "--resume"]) == 0
    assert capsys.readouterr().out.count("training seeds [1, 2] together") == 2
    assert stamp == {p: p.stat().st_mtime_ns for p in stamp}
    for m in ("alpha0", "alpha0.2"):
        for s in (0, 1, 2):
            a, b = once / "smoke" / m / f"seed{s}", twice / "smoke" / m / f"seed{s}"
            assert rows(a / "eval.csv") == rows(b / "eval.csv")
            assert same_params(a / "model.zip", b / "model.zip")
    assert "with 3 seeds" in (twice / "smoke" / "smoke.md").read_text()


def test_page_only_rebuilds_the_page_from_csvs_alone(tmp_path, capsys):
    log, res = tmp_path / "runs", tmp_path / "res"
    argv = ["smoke", "--steps", "200", "--log-dir", str(log), "--results-dir", str(res), "--no-progress"]
    assert main(argv) == 0
    page = (res / "smoke.md").read_text()
    for p in (log / "smoke").rglob("*"):
        if p.is_file() and p.name not in ("eval.csv", "reproduce.json"):
            p.unlink()  # only the CSVs (and CPU times) travel with a published page
    (res / "smoke.md").unlink()
    capsys.readouterr()
    assert main([*argv, "--page-only"]) == 0
    rebuilt, trained_by = (res / "smoke.md").read_text(), "\nrlcert reproduce " + " ".join(argv[:-1]) + "\n"
    assert trained_by in page and "\nrlcert reproduce smoke --steps 200\n" in rebuilt  # a command that trains such runs
    assert rebuilt.replace("\nrlcert reproduce smoke --steps 200\n", trained_by) == page  # else the same page
    assert not any((log / "smoke").rglob("*.zip"))  # nothing trained
    assert main([argv[0], "--steps", "300", *argv[3:], "--page-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--page-only" in err and "--steps 300" in err


def test_killed_after_the_last_checkpoint_before_the_export_finishes_on_resume(tmp_path, capsys):
    """The final step's checkpoint is written, the process dies before model.zip: --resume with the same --steps
    exports the members without training (the checkpoint's buffer fits a buffer sized for exactly those steps)."""
    log = tmp_path / "runs"
    argv = ["smoke", "--steps", "200", "--log-dir", str(log), "--no-progress"]
    assert main(argv) == 0
    models = sorted((log / "smoke").rglob("model.zip"))
    before = {p: p.read_bytes() for p in models}
    csvs = {p: p.read_text() for p in (log / "smoke").rglob("eval.csv")}
    for p in models:
        p.unlink()
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.count("resuming 2 members from step 200") == 2
    assert {p: p.read_text() for p in csvs} == csvs  # nothing trained, nothing evaluated again
    for p in models:
        assert same_params(p, p)  # loads
    assert sorted((log / "smoke").rglob("model.zip")) == models and len(before) == 4


def test_a_folder_with_settings_only_is_not_taken(tmp_path):
    """A folder holding only an experiment's settings and its lock (no run wrote a file) is free: the same command
    without --resume starts rather than asking for --resume."""
    from rlcert.reproduce.run import plan, run_experiment

    p = plan(EXPERIMENTS["smoke"], [0, 1], 100, "fp32", tmp_path, None, resume=False, methods=["alpha0"])
    run_experiment(p, progress=False)
    shutil.rmtree(p.exp_dir / "alpha0")  # as if stopped before its first file
    assert sorted(x.name for x in p.exp_dir.iterdir()) == [".reproduce.lock", "reproduce.json"]
    assert main(["smoke", "--steps", "100", "--log-dir", str(tmp_path), "--no-progress"]) == 0
