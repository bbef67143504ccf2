"""Fault injection (issue 20): every long command is killed (SIGKILL) and interrupted (SIGINT = Ctrl-C) at seeded
random moments, then resumed; the final outputs equal an uninterrupted run's (bit for bit where the run is
deterministic, the same rows otherwise), nothing is duplicated, and a rerun with changed settings is refused in one
line. Ctrl-C ends with one line and exit code 130.

A moment is "after the k-th result row, plus a random delay" (k and the delay drawn from a seeded generator), so a
kill lands anywhere: between rows, mid-evaluation, mid-checkpoint. The commands run as subprocesses (tiny budgets);
the reference and final runs run in this process. ``rlcert sweep`` is covered the same way in
tests/sweep/test_run.py (SIGKILL mid-sweep, sequential and on Ray, and SIGINT sequential).
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from rlcert import cli

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def complete_rows(path: Path) -> int:
    """Complete data lines (header excluded) of a table being written."""
    if not path.exists():
        return 0
    text = path.read_text()
    return max(0, text.count("\n") - 1)


def interrupt(argv: list[str], rows: Path, more: int, delay: float, sig: int, cwd: Path,
              timeout: float = 180) -> tuple[int, str, str]:
    """Run ``rlcert ARGV`` in a subprocess; once ``rows`` has ``more`` complete rows more than at the start, wait
    ``delay`` s and send ``sig``. Returns (return code, stdout, stderr). Fails if the command ends first."""
    at_row = complete_rows(rows) + more
    # SIGINT back to its default in the child (a test run started in the background inherits SIG_IGN)
    proc = subprocess.Popen([sys.executable, "-m", "rlcert.cli", *argv], cwd=cwd, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        t0 = time.time()
        while complete_rows(rows) < at_row:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"{argv[0]} ended (rc {proc.returncode}) before row {at_row}: {err[-2000:]}")
            assert time.time() - t0 < timeout, f"{argv[0]} made no progress"
            time.sleep(0.02)
        time.sleep(delay)
        assert proc.poll() is None, f"{argv[0]} finished before the signal; give it a larger budget"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def check_ctrl_c(rc: int, err: str, prog: str) -> None:
    assert rc == 130, err[-2000:]
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: interrupted; "), err[-2000:]


def moments(seed: int, rows: int, kills: int) -> list[tuple[int, float]]:
    """``kills`` (new rows, delay in s) pairs: each run is signalled once it has added 1..rows / (2 kills) rows
    (together at most half the ``rows`` of a whole run, so every signal lands mid-run even on a fast machine) plus
    a delay in [0, 0.05)."""
    rng = random.Random(seed)
    return [(rng.randint(1, max(1, rows // (2 * kills))), rng.uniform(0.0, 0.05)) for _ in range(kills)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def one_error_line(capsys, *words: str) -> None:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and all(w in lines[0] for w in words), lines


# ---- rlcert train ------------------------------------------------------------------------------------------------

TRAIN = {"name": "tiny", "algo": "ReenGAGEDDPG", "env": "rlcert/ContinuousSeek-v0", "env_kwargs": {"d": 2},
         "total_timesteps": 600, "eval": {"freq": 50, "episodes": 2, "metric": "ever"},
         "algo_kwargs": {"replay_buffer_class": "HerReplayBuffer",
                         "replay_buffer_kwargs": {"n_sampled_goal": 2, "goal_selection_strategy": "future"},
                         "policy_kwargs": {"net_arch": [8]}, "batch_size": 8, "learning_starts": 20, "alpha": 0.2,
                         "goal_reduction": "mean"}}


def test_train_killed_and_interrupted_resumes_to_the_same_rows(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TRAIN))
    args = ["train", "--config", str(cfg), "--no-progress", "--threads", "1"]
    assert cli.main([*args, "--log-dir", str(tmp_path / "ref")]) == 0
    ref = read_csv(tmp_path / "ref" / "tiny" / "seed0" / "eval.csv")
    run = tmp_path / "runs" / "tiny" / "seed0"
    args += ["--log-dir", str(tmp_path / "runs")]
    (k1, d1), (k2, d2), (k3, d3) = moments(20, len(ref), 3)
    # Ctrl-C: one line, exit 130, the current step checkpointed (at or after the last evaluation)
    rc, _, err = interrupt(args, run / "eval.csv", k1, d1, signal.SIGINT, tmp_path)
    check_ctrl_c(rc, err, "rlcert train")
    state = json.loads((run / "checkpoints" / "latest_state.json").read_text())
    last_row = int(read_csv(run / "eval.csv")[-1]["timesteps"])
    assert state["num_timesteps"] >= last_row
    # SIGKILL twice (the first resumes from the Ctrl-C checkpoint's step, not from the last evaluation)
    rc, out, _ = interrupt([*args, "--resume"], run / "eval.csv", k2, d2, signal.SIGKILL, tmp_path)
    assert rc == -signal.SIGKILL and f"from step {state['num_timesteps']}\n" in out
    rc, _, _ = interrupt([*args, "--resume"], run / "eval.csv", k3, d3, signal.SIGKILL, tmp_path)
    assert rc == -signal.SIGKILL
    assert cli.main([*args, "--resume"]) == 0
    rows = read_csv(run / "eval.csv")
    assert [r["timesteps"] for r in rows] == [r["timesteps"] for r in ref]  # every evaluation once
    walls = [float(r["wall_time_s"]) for r in rows]
    assert walls == sorted(walls)  # wall_time_s accumulates over the resumes
    assert (run / "model.zip").exists() and not list(run.rglob("*.tmp*"))
    capsys.readouterr()
    assert cli.main([*args, "--resume", "--set", "algo_kwargs.learning_rate=0.01"]) == 2
    one_error_line(capsys, "other settings", "algo_kwargs")


# ---- rlcert train --seeds (fleet: deterministic, so bit for bit) --------------------------------------------------

FLEET = {"name": "tiny", "algo": "DDPG", "env": "rlcert/ContinuousSeek-v0", "env_kwargs": {"d": 3, "max_steps": 5},
         "total_timesteps": 600, "eval": {"freq": 20, "episodes": 4, "metric": "ever"},
         "algo_kwargs": {"replay_buffer_class": "HerReplayBuffer",
                         "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
                         "action_noise": {"type": "normal", "sigma": 0.1}, "policy_kwargs": {"net_arch": [16, 16]},
                         "learning_rate": 1e-3, "batch_size": 8, "learning_starts": 25, "gamma": 0.95, "tau": 0.05,
                         "train_freq": 1, "gradient_steps": 1}}


def test_train_seeds_killed_and_interrupted_equals_uninterrupted(tmp_path, capsys):
    from stable_baselines3 import DDPG

    cfg = tmp_path / "fleet.yaml"
    cfg.write_text(yaml.safe_dump(FLEET))
    args = ["train", "--config", str(cfg), "--seeds", "0-1", "--no-progress", "--threads", "1"]
    assert cli.main([*args, "--log-dir", str(tmp_path / "ref")]) == 0
    log = tmp_path / "runs"
    args += ["--log-dir", str(log)]
    n_rows = len(read_csv(tmp_path / "ref" / "tiny" / "seed0" / "eval.csv"))
    (k1, d1), (k2, d2), (k3, d3) = moments(21, n_rows, 3)
    rc, out, err = interrupt(args, log / "tiny" / "seed1" / "eval.csv", k1, d1, signal.SIGINT, tmp_path)
    check_ctrl_c(rc, err, "rlcert train")
    assert "together (fleet of 2)" in out
    for k, d in ((k2, d2), (k3, d3)):
        rc, _, _ = interrupt([*args, "--resume"], log / "tiny" / "seed1" / "eval.csv", k, d, signal.SIGKILL,
                             tmp_path)
        assert rc == -signal.SIGKILL
    assert cli.main([*args, "--resume"]) == 0
    for s in (0, 1):
        a, b = tmp_path / "ref" / "tiny" / f"seed{s}", log / "tiny" / f"seed{s}"
        drop = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]  # noqa: E731
        assert drop(read_csv(a / "eval.csv")) == drop(read_csv(b / "eval.csv"))
        pa, pb = DDPG.load(a / "model.zip").policy.state_dict(), DDPG.load(b / "model.zip").policy.state_dict()
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    capsys.readouterr()
    assert cli.main([*args, "--resume", "--set", "algo_kwargs.learning_rate=0.01"]) == 2
    one_error_line(capsys, "other settings", "algo_kwargs")


# ---- rlcert certify (per-input seeds: bit for bit) ----------------------------------------------------------------

class Slow(nn.Module):
    """A 2-class model on (B, 4) rows; a few matrix products per call so that certification takes a while."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 256, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(x @ self.w)
        for _ in range(8):
            h = torch.tanh(h @ self.w.T @ self.w / 256)
        s = h.sum(1)
        return torch.stack([s, -s], 1)


def test_certify_killed_and_interrupted_equals_uninterrupted(tmp_path, capsys):
    model, data = tmp_path / "slow.pt", tmp_path / "rows.npz"
    torch.jit.script(Slow()).save(str(model))
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.normal(size=(60, 4)).astype(np.float32), y=(rng.random(60) < 0.5).astype(np.int64))
    args = ["certify", "--model", str(model), "--data", str(data), "--method", "gaussian", "--sigma", "0.5",
            "--n0", "20", "--n", "4000", "--batch", "500", "--inputs-per-call", "1", "--device", "cpu",
            "--threads", "1", "--no-progress"]
    ref, out = tmp_path / "ref.tsv", tmp_path / "out.tsv"
    assert cli.main([*args, "--out", str(ref)]) == 0
    args += ["--out", str(out)]
    (k1, d1), (k2, d2), (k3, d3) = moments(22, 60, 3)
    rc, _, err = interrupt(args, out, k1, d1, signal.SIGINT, tmp_path)
    check_ctrl_c(rc, err, "rlcert certify")
    for k, d in ((k2, d2), (k3, d3)):
        rc, _, _ = interrupt(args, out, k, d, signal.SIGKILL, tmp_path)
        assert rc == -signal.SIGKILL
    assert cli.main(args) == 0

    def without_time(path: Path) -> list[list[str]]:
        return [line.split("\t")[:5] + line.split("\t")[6:] for line in path.read_text().splitlines()]

    assert without_time(out) == without_time(ref)  # same rows, same order, nothing duplicated
    capsys.readouterr()
    assert cli.main([*[a if a != "0.5" else "0.25" for a in args]]) == 2
    one_error_line(capsys, "other settings", "sigma")
    assert without_time(out) == without_time(ref)


# ---- rlcert certify-policy (per-episode seeds: the same certificate) ----------------------------------------------

def test_certify_policy_killed_and_interrupted_equals_uninterrupted(tmp_path, capsys):
    import gymnasium as gym
    from stable_baselines3 import DDPG

    env_kw = {"d": 2, "max_steps": 100}
    run = tmp_path / "agent" / "seed0"
    run.mkdir(parents=True)
    DDPG("MultiInputPolicy", gym.make("rlcert/ContinuousSeek-v0", **env_kw), policy_kwargs={"net_arch": [64, 64]},
         seed=0).save(run / "model.zip")
    (run / "config.yaml").write_text(yaml.safe_dump({"algo": "DDPG", "env": "rlcert/ContinuousSeek-v0",
                                                     "env_kwargs": env_kw}))
    args = ["certify-policy", "--model", str(run / "model.zip"), "--sigma", "0.2", "--episodes", "30", "--steps",
            "0", "--num-envs", "1", "--eps", "0,0.1", "--device", "cpu", "--no-progress"]
    ref, out = tmp_path / "ref.tsv", tmp_path / "out.tsv"
    assert cli.main([*args, "--out", str(ref)]) == 0
    args += ["--out", str(out)]
    (k1, d1), (k2, d2), (k3, d3) = moments(23, 60, 3)
    rc, _, err = interrupt(args, out, k1, d1, signal.SIGINT, tmp_path)
    check_ctrl_c(rc, err, "rlcert certify-policy")
    for k, d in ((k2, d2), (k3, d3)):
        rc, _, _ = interrupt(args, out, k, d, signal.SIGKILL, tmp_path)
        assert rc == -signal.SIGKILL
    assert cli.main(args) == 0
    rows, ref_rows = out.read_text().splitlines(), ref.read_text().splitlines()
    assert len(rows) == len(set(rows)) == 61 and sorted(rows) == sorted(ref_rows)  # nothing duplicated or lost
    summary, ref_summary = (json.loads(Path(f"{p}.json").read_text()) for p in (out, ref))
    assert summary["return"] == ref_summary["return"]  # the same certificate
    capsys.readouterr()
    assert cli.main([a if a != "0.2" else "0.9" for a in args]) == 2
    one_error_line(capsys, "other settings", "sigma")
