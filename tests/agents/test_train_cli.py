"""``rlcert train`` / ``rlcert plot-curves``: config overrides, CSV log, checkpoints, resume, reload, plots."""

import csv

import gymnasium as gym
import pytest
import yaml

import rlcert  # noqa: F401
from rlcert import cli
from rlcert.agents import ReenGAGEDDPG
from rlcert.plots import load_curves
from rlcert.train import load_config

CONFIG = {
    "algo": "ReenGAGEDDPG", "policy": "MultiInputPolicy", "env": "rlcert/ContinuousSeek-v0", "env_kwargs": {"d": 2},
    "seed": 0, "total_timesteps": 400,
    "algo_kwargs": {"replay_buffer_class": "HerReplayBuffer",
                    "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
                    "action_noise": {"type": "normal", "sigma": 0.1}, "policy_kwargs": {"net_arch": [16, 16]},
                    "batch_size": 16, "learning_starts": 50, "alpha": 0.2, "gamma": 0.95},
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
    with pytest.raises(SystemExit):
        cli.main(["train", "--config", str(config_file), "--set", "algo=NoSuchAlgo", "--no-progress"])


def test_shipped_configs_load():
    from pathlib import Path

    configs = sorted(Path(__file__).resolve().parents[2].glob("configs/continuous_seek_*.yaml"))
    assert len(configs) >= 12
    for path in configs:
        cfg = load_config(path)
        if cfg["algo"].startswith("ReenGAGE"):
            assert cfg["algo_kwargs"]["alpha"] in (0.1, 0.2, 0.3)
