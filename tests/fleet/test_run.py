"""``rlcert train --seeds``: per-member CSVs and model.zip files, Ctrl-C + --resume == uninterrupted, export."""

from __future__ import annotations

import csv
import os
import signal

import numpy as np
import pytest
import torch as th
import yaml
from stable_baselines3 import DDPG, TD3

from rlcert.agents import ReenGAGEDDPG, ReenGAGESAC
from rlcert.envs.continuous_seek import ContinuousSeekEnv
from rlcert.fleet.config import read_config, unsupported_reason
from rlcert.fleet.export import export_member
from rlcert.fleet.run import checkpoint_path, parse_seeds, train_fleet
from rlcert.fleet.trainer import Fleet
from rlcert.train_cli import main
from rlcert.training import load_config


def rows(path):
    with open(path) as f:
        return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in csv.DictReader(f)]


def test_cli_seeds_writes_per_member_outputs(tiny, tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny(tmp_path)))
    assert main(["--config", str(cfg), "--seeds", "0-2", "--no-progress"]) == 0
    assert "fleet of 3" in capsys.readouterr().out
    for s in range(3):
        d = tmp_path / "runs" / "tiny" / f"seed{s}"
        assert [int(r["timesteps"]) for r in rows(d / "eval.csv")] == [0, 20, 40, 60]
        assert yaml.safe_load((d / "config.yaml").read_text())["seed"] == s
        assert load_config(d / "config.yaml")["seed"] == s  # a member's config is an ordinary config
        model = ReenGAGEDDPG.load(d / "model.zip")
        assert model.alpha == 0.2 and model.goal_reduction == "mean"


def test_cli_seeds_never_overwrites_without_resume(tiny, tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny(tmp_path)))
    assert main(["--config", str(cfg), "--seeds", "0-1", "--no-progress"]) == 0
    csv0 = tmp_path / "runs" / "tiny" / "seed0" / "eval.csv"
    before = csv0.read_bytes()
    capsys.readouterr()
    assert main(["--config", str(cfg), "--seeds", "0-1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a run" in err[0] and "--resume" in err[0]
    assert csv0.read_bytes() == before


def test_cli_rejects_bad_seeds(tiny, tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny(tmp_path)))
    assert main(["--config", str(cfg), "--seeds", "3-x"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "rlcert train: error: --seeds must look like '0-19' or '0,3,5-7', got '3-x'"]
    with pytest.raises(SystemExit):
        main(["--config", str(cfg), "--seeds", "0-2", "--seed", "1"])
    assert parse_seeds("0,3,5-7") == [0, 3, 5, 6, 7]
    with pytest.raises(ValueError, match="distinct"):
        parse_seeds("1,1")


def assert_same_runs(straight, resumed) -> None:
    """Each member's eval rows and exported weights equal those of the uninterrupted run, bit for bit."""
    for a, b in zip(straight, resumed, strict=True):
        assert rows(a / "eval.csv") == rows(b / "eval.csv")
        pa = ReenGAGEDDPG.load(a / "model.zip").policy.state_dict()
        pb = ReenGAGEDDPG.load(b / "model.zip").policy.state_dict()
        assert all(th.equal(pa[k], pb[k]) for k in pa)


def test_unsupported_configs_fall_back(tiny, tmp_path):
    assert unsupported_reason(tiny(tmp_path)) is None
    assert unsupported_reason({**tiny(tmp_path), "algo": "SAC"}) is None
    assert "algo" in unsupported_reason({**tiny(tmp_path), "algo": "PPO"})
    assert "precision" in unsupported_reason({**tiny(tmp_path), "precision": "fp16"})
    assert "dense" in unsupported_reason(tiny(tmp_path, reengage_mode="dense"))
    assert "env" in unsupported_reason({**tiny(tmp_path), "env": "rlcert/DriveSeek-v0"})
    assert "observation_noise" in unsupported_reason({**tiny(tmp_path), "observation_noise": {"sigma": 0.1}})


def test_interrupt_then_resume_equals_uninterrupted(tiny, tmp_path, monkeypatch, capsys):
    straight_cfg = tiny(tmp_path / "a", total=40)
    straight = train_fleet(straight_cfg, [0, 1], progress=False)
    cfg = tiny(tmp_path / "b", total=40)
    real_step = Fleet.step

    def interrupting_step(self):
        if self.num_timesteps == 30:
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(Fleet, "step", interrupting_step)
    with pytest.raises(KeyboardInterrupt):
        train_fleet(cfg, [0, 1], progress=False)
    monkeypatch.setattr(Fleet, "step", real_step)
    resumed = train_fleet(cfg, [0, 1], resume=True, progress=False)
    assert_same_runs(straight, resumed)


def test_ctrl_c_checkpoints_the_current_step_and_resume_equals_uninterrupted(tiny, tmp_path, monkeypatch):
    """A Ctrl-C (SIGINT) at step 25 (between evaluations at 20 and 30) checkpoints step 25; the resume continues
    from 25 (not 20) and ends with the uninterrupted run's rows and weights; wall_time_s accumulates."""
    straight = train_fleet(tiny(tmp_path / "a", total=40), [0, 1], progress=False)
    cfg = tiny(tmp_path / "b", total=40)
    real_step = Fleet.step

    def ctrl_c_at_25(self):
        real_step(self)
        if self.num_timesteps == 25:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Fleet, "step", ctrl_c_at_25)
    with pytest.raises(KeyboardInterrupt):
        train_fleet(cfg, [0, 1], progress=False)
    ckpt = checkpoint_path(cfg, [0, 1])
    assert th.load(ckpt, weights_only=False)["num_timesteps"] == 25
    monkeypatch.setattr(Fleet, "step", real_step)
    resumed = train_fleet(cfg, [0, 1], resume=True, progress=False)
    assert_same_runs(straight, resumed)
    walls = [float(r["wall_time_s"]) for r in csv.DictReader(open(resumed[0] / "eval.csv"))]
    assert walls == sorted(walls)


@pytest.mark.parametrize("algo,cls", [("ReenGAGEDDPG", ReenGAGEDDPG), ("DDPG", DDPG), ("ReenGAGESAC", ReenGAGESAC),
                                      ("TD3", TD3)])
def test_exported_member_loads_and_predicts_like_the_fleet(tiny, tmp_path, algo, cls):
    config = tiny(tmp_path, algo=algo, **({"action_noise": None} if "SAC" in algo else {}))
    settings, schedule, family, env_cls = read_config(config, 3)
    fleet = Fleet(settings, schedule, [4, 5, 6], env_cls, config["env_kwargs"], family)
    fleet.learn(40)
    env = ContinuousSeekEnv(d=3, max_steps=5)
    path = export_member(fleet.agent, 1, cls, env, tmp_path / "m1.zip")
    model = cls.load(path)
    rng = np.random.default_rng(0)
    obs = {k: rng.uniform(-5, 5, (7, 3)).astype(np.float32) for k in ("observation", "achieved_goal",
                                                                       "desired_goal")}
    ours = fleet.agent.act({k: th.as_tensor(v)[None].expand(3, 7, 3) for k, v in obs.items()})[1].numpy()
    theirs, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(theirs, ours, atol=1e-6)
    other = fleet.agent.act({k: th.as_tensor(v)[None].expand(3, 7, 3) for k, v in obs.items()})[0].numpy()
    assert np.abs(other - theirs).max() > 1e-3  # a different member predicts differently


def test_cli_seeds_runs_unsupported_configs_one_after_another(tiny, tmp_path, capsys):
    config = tiny(tmp_path, algo="DDPG", total=30, learning_starts=10,
                  action_noise={"type": "ornstein_uhlenbeck", "sigma": 0.1})
    config["eval"] = {"freq": 15, "episodes": 2, "metric": "ever"}
    cfg = tmp_path / "sac.yaml"
    cfg.write_text(yaml.safe_dump(config))
    assert main(["--config", str(cfg), "--seeds", "0,1", "--no-progress"]) == 0
    assert "one after another" in capsys.readouterr().out
    for s in (0, 1):
        d = tmp_path / "runs" / "tiny" / f"seed{s}"
        assert [int(r["timesteps"]) for r in rows(d / "eval.csv")] == [0, 15, 30]
        assert (d / "model.zip").exists()


def test_cli_seeds_trains_sac_as_a_fleet(tiny, tmp_path, capsys):
    config = tiny(tmp_path, algo="ReenGAGESAC", total=30, action_noise=None)
    cfg = tmp_path / "sac.yaml"
    cfg.write_text(yaml.safe_dump(config))
    assert main(["--config", str(cfg), "--seeds", "0-1", "--no-progress", "--set", "precision=bf16"]) == 0
    assert "fleet of 2" in capsys.readouterr().out
    for s in (0, 1):
        d = tmp_path / "runs" / "tiny" / f"seed{s}"
        assert [int(r["timesteps"]) for r in rows(d / "eval.csv")] == [0, 20, 30]
        assert ReenGAGESAC.load(d / "model.zip").alpha == 0.2


def test_final_step_evaluated_and_rates_are_exact_fractions(tiny, tmp_path):
    config = tiny(tmp_path, total=50)
    config["eval"] = {"freq": 20, "episodes": 3, "metric": "ever"}
    run_dirs = train_fleet(config, [0, 1], progress=False, export=False)
    for d in run_dirs:
        got = rows(d / "eval.csv")
        assert [int(r["timesteps"]) for r in got] == [0, 20, 40, 50]
        for r in got:  # k / 3 written as Python's nearest double of the fraction, no float32 noise
            assert float(r["success_rate"]) in {0.0, 1 / 3, 2 / 3, 1.0} and r["success_rate"] in {
                repr(k / 3) for k in range(4)}


def test_resume_without_checkpoint_starts_from_scratch(tiny, tmp_path, capsys):
    config = tiny(tmp_path, total=20)
    run_dirs = train_fleet(config, [0, 1], resume=True, progress=False, export=False)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "from scratch" in out[0]
    assert [int(r["timesteps"]) for r in rows(run_dirs[0] / "eval.csv")] == [0, 20]
