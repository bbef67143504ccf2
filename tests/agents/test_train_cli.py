"""``rlcert train`` / ``rlcert plot-curves``: config overrides, CSV log, checkpoints, resume, reload, plots."""

import csv

import gymnasium as gym
import pytest
import yaml

import rlcert  # noqa: F401
from rlcert import cli
from rlcert.agents import ReenGAGEDDPG
from rlcert.plots import load_curves
from rlcert.training import load_config

CONFIG = {
    "algo": "ReenGAGEDDPG", "policy": "MultiInputPolicy", "env": "rlcert/ContinuousSeek-v0", "env_kwargs": {"d": 2},
    "seed": 0, "total_timesteps": 400,
    "algo_kwargs": {"replay_buffer_class": "HerReplayBuffer",
                    "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
                    "action_noise": {"type": "normal", "sigma": 0.1}, "policy_kwargs": {"net_arch": [16, 16]},
                    "batch_size": 16, "learning_starts": 50, "alpha": 0.2, "gamma": 0.95, "goal_reduction": "mean"},
    "eval": {"freq": 200, "episodes": 3, "metric": "ever"},
}


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def rows(path):
    with open(path) as f:
        return [int(r["timesteps"]) for r in csv.DictReader(f)]


def test_train_resume_reload_and_plot(config_file, tmp_path):
    log = tmp_path / "runs"
    args = ["train", "--config", str(config_file), "--log-dir", str(log), "--no-progress", "--threads", "1"]
    assert cli.main(args + ["--seed", "1"]) == 0
    run = log / "tiny" / "seed1"
    assert rows(run / "eval.csv") == [0, 200, 400]
    assert (run / "checkpoints" / "latest_model.zip").exists() and (run / "tb").is_dir()
    model = ReenGAGEDDPG.load(run / "model.zip", env=gym.make("rlcert/ContinuousSeek-v0", d=2))
    assert model.num_timesteps == 400 and model.alpha == 0.2 and model.batch_size == 16
    # Resume to a larger budget: earlier rows are kept, training continues from the checkpoint.
    assert cli.main(args + ["--seed", "1", "--resume", "--set", "total_timesteps=600"]) == 0
    assert rows(run / "eval.csv") == [0, 200, 400, 600]
    buf = ReenGAGEDDPG.load(run / "checkpoints" / "latest_model.zip", env=gym.make("rlcert/ContinuousSeek-v0", d=2))
    buf.load_replay_buffer(run / "checkpoints" / "latest_replay_buffer.pkl")
    # The capped buffer (401 slots) was grown on resume, so nothing was overwritten (SB3 drops the checkpoint's
    # unfinished last episode on load: at most one episode of 10 steps is lost).
    rb = buf.replay_buffer
    assert rb.buffer_size == 601 and 590 <= rb.pos <= 600 and not rb.full
    env = gym.make("rlcert/ContinuousSeek-v0", d=2)
    assert ReenGAGEDDPG.load(run / "model.zip", env=env).num_timesteps == 600
    # A second seed, then the plot of mean +- std over both seeds.
    assert cli.main(args + ["--seed", "2"]) == 0
    steps, values, n = load_curves(log / "tiny")
    assert n == 2 and steps.tolist() == [0, 200, 400] and values.shape == (2, 3)
    out = tmp_path / "curves.png"
    assert cli.main(["plot-curves", str(log / "tiny"), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_overrides_and_validation(config_file):
    cfg = load_config(config_file, ["algo_kwargs.batch_size=256", "eval.metric=final"], seed=7)
    assert cfg["algo_kwargs"]["batch_size"] == 256 and cfg["eval"]["metric"] == "final" and cfg["seed"] == 7
    assert cfg["name"] == "tiny" and cfg["eval"]["episodes"] == 3
    with pytest.raises(ValueError, match="total_timesteps"):
        load_config(config_file, ["total_timesteps=-5"])
    with pytest.raises(ValueError, match="unknown config keys"):
        load_config(config_file, ["algo_kwarg.batch_size=3"])
    assert cli.main(["train", "--config", str(config_file), "--set", "algo=NoSuchAlgo", "--no-progress"]) == 2


def test_shipped_configs_load():
    from pathlib import Path

    configs = sorted(Path(__file__).resolve().parents[2].glob("configs/continuous_seek_*.yaml"))
    assert len(configs) >= 12
    for path in configs:
        cfg = load_config(path)
        if cfg["algo"].startswith("ReenGAGE"):
            assert cfg["algo_kwargs"]["alpha"] in (0.1, 0.2, 0.3)


@pytest.mark.parametrize("assignment, key", [
    ("algo_kwargs.learning_rate=abc", "algo_kwargs.learning_rate"),
    ("algo_kwargs.learnin_rate=0.001", "algo_kwargs.learnin_rate"),
    ("algo_kwargs.batch_size=0", "algo_kwargs.batch_size"),
    ("algo_kwargs.reengage_mode=bogus", "reengage_mode"),
    ("algo_kwargs.action_noise.type=pink", "algo_kwargs.action_noise"),
    ("env_kwargs.d=0", "d must be an integer >= 1, got 0"),
    ("env_kwargs.dd=3", "env_kwargs.dd"),
    ("env=rlcert/NoSuchEnv-v0", "NoSuchEnv"),
    ("eval.freq=0", "eval.freq"),
    ("eval.metric=median", "eval.metric"),
    ("n_envs=two", "n_envs"),
])
def test_bad_values_are_one_line_errors_and_write_nothing(config_file, tmp_path, capsys, assignment, key):
    log = tmp_path / "runs"
    rc = cli.main(["train", "--config", str(config_file), "--log-dir", str(log), "--no-progress", "--set", assignment])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and key in err and len(err.splitlines()) == 1, err
    assert not log.exists()


def test_existing_run_is_refused_without_resume(config_file, tmp_path, capsys):
    log = tmp_path / "runs"
    args = ["train", "--config", str(config_file), "--log-dir", str(log), "--no-progress", "--threads", "1",
            "--set", "total_timesteps=100", "--set", "eval.freq=50"]
    assert cli.main(args) == 0
    eval_csv = log / "tiny" / "seed0" / "eval.csv"
    before = eval_csv.read_bytes()
    capsys.readouterr()
    assert cli.main(args + ["--set", "total_timesteps=150"]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and len(err.strip().splitlines()) == 1
    assert eval_csv.read_bytes() == before  # nothing overwritten
    assert cli.main(args + ["--set", "total_timesteps=150", "--resume"]) == 0
    assert rows(eval_csv) == [0, 50, 100, 150]


def test_final_step_is_evaluated_when_not_a_multiple_of_the_period(config_file, tmp_path):
    log = tmp_path / "runs"
    assert cli.main(["train", "--config", str(config_file), "--log-dir", str(log), "--no-progress", "--threads", "1",
                     "--set", "total_timesteps=130", "--set", "eval.freq=50"]) == 0
    assert rows(log / "tiny" / "seed0" / "eval.csv") == [0, 50, 100, 130]
    # the checkpoint is the final model, so a resume to a larger budget continues from step 130
    ckpt = ReenGAGEDDPG.load(log / "tiny" / "seed0" / "checkpoints" / "latest_model.zip",
                             env=gym.make("rlcert/ContinuousSeek-v0", d=2))
    assert ckpt.num_timesteps == 130


def test_ctrl_c_checkpoints_the_current_step_and_resume_continues_from_it(config_file, tmp_path, capsys,
                                                                          monkeypatch):
    """Ctrl-C (SIGINT) at step 130, between the evaluations at 0 and 200: the checkpoint holds step 130 (not 0),
    the command ends with one line and exit 130, and --resume continues from 130; wall_time_s accumulates."""
    import json
    import os
    import signal

    from rlcert.agents.callbacks import EvalCheckpointCallback
    from rlcert.train import train

    real = EvalCheckpointCallback._on_step

    def ctrl_c_at_130(self):
        if self.num_timesteps == 130:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self)

    monkeypatch.setattr(EvalCheckpointCallback, "_on_step", ctrl_c_at_130)
    log = tmp_path / "log"
    args = ["train", "--config", str(config_file), "--log-dir", str(log), "--no-progress"]
    assert cli.main(args) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rlcert train: interrupted; the current step is checkpointed; continue with the same command plus "
                   "--resume"]
    run = log / "tiny" / "seed0"
    state = json.loads((run / "checkpoints" / "latest_state.json").read_text())
    assert state["num_timesteps"] == 130 and rows(run / "eval.csv") == [0]
    monkeypatch.setattr(EvalCheckpointCallback, "_on_step", real)
    model, _ = train(load_config(config_file, log_dir=str(log)), resume=True, progress=False)
    assert "from step 130" in capsys.readouterr().out and model.num_timesteps == 400
    assert rows(run / "eval.csv") == [0, 200, 400]
    with open(run / "eval.csv") as f:
        walls = [float(r["wall_time_s"]) for r in csv.DictReader(f)]
    assert walls[1] >= state["wall_time_s"]  # the resumed process goes on from the checkpoint's wall time
