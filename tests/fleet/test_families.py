"""``rlcert train --seeds`` routes every family's configs to the fleet (or says in one line why not); the DQN and
goal-set families write per-member CSVs and model.zip files that their agent classes load and that predict what
the fleet's members predict; defaults are the agent classes'."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch as th
import yaml

from rlcert.agents import ReenGAGEDQN
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG
from rlcert.envs import BitFlippingEnv, NoisySeekEnv
from rlcert.fleet.config import read_config, unsupported_reason
from rlcert.fleet.stacked import linears_of
from rlcert.fleet.trainer import Fleet
from rlcert.train_cli import main
from rlcert.training import load_config


def build_fleet(config: dict, seeds: list[int], overrides: list[dict] | None = None) -> Fleet:
    settings, schedule, family, env_cls = read_config(config, len(seeds), overrides)
    return Fleet(settings, schedule, seeds, env_cls, config.get("env_kwargs") or {}, family)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FLEET_CONFIGS = ["bit_flipping_n20_dqn_her", "bit_flipping_n40_reengage", "noisy_seek_multi_reengage",
                 "noisy_seek_ddpg", "drive_seek_multi_reengage", "drive_seek_ddpg", "continuous_seek_d10_reengage",
                 "drive_seek_multi_reengage_unshared"]
NOT_FLEET = {"drive_seek_cnn_multi_reengage": "CNN",
             "bit_flipping_dqn_her_smoothed": "observation_noise", "hand_reach_reengage": "HandReach",
             "noisy_seek_multi_reengage_sac": "SAC"}


@pytest.mark.parametrize("name", FLEET_CONFIGS)
def test_shipped_configs_run_as_fleets(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert unsupported_reason(config) is None
    fleet = build_fleet(config, [0, 1])
    assert fleet.n_members == 2


@pytest.mark.parametrize("name,word", sorted(NOT_FLEET.items()))
def test_other_configs_say_why_in_one_line(name, word):
    reason = unsupported_reason(load_config(CONFIGS / f"{name}.yaml"))
    assert reason is not None and word in reason and "\n" not in reason


def test_settings_are_the_agents():
    """Settings not in the config are the agent classes' defaults (read from a probe of the config's agent)."""
    config = load_config(CONFIGS / "bit_flipping_n40_reengage.yaml")
    del config["algo_kwargs"]["alpha"], config["algo_kwargs"]["softmax_tau"]
    settings = build_fleet(config, [0]).agent.cfg
    agent = ReenGAGEDQN("MultiInputPolicy", BitFlippingEnv(n_bits=4), buffer_size=10)
    assert settings.alpha == [agent.alpha] and settings.softmax_tau == agent.softmax_tau
    assert settings.net_arch == [256] and settings.target_update_interval == 640
    config = load_config(CONFIGS / "drive_seek_multi_reengage.yaml")
    del config["algo_kwargs"]["policy_kwargs"]
    s = build_fleet(config, [0, 1]).agent.cfg
    assert (s.embed_dim, s.encoder_arch, s.net_arch, s.n_max, s.pooling) == (20, [400, 400], [400], 200, "n_max")
    assert s.action_noise_sigma == [0.05, 0.05] and s.n_critics == 1 and s.policy_delay == 1


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_cli_trains_dqn_fleet_and_exports(tmp_path, capsys):
    sets = ["total_timesteps=64", "algo_kwargs.learning_starts=24", "algo_kwargs.batch_size=8",
            "algo_kwargs.train_freq=4", "eval.freq=32", "eval.episodes=4", "env_kwargs.n_bits=8",
            "algo_kwargs.policy_kwargs.net_arch=[32]"]
    args = ["--config", str(CONFIGS / "bit_flipping_n20_reengage.yaml"), "--seeds", "3-4", "--log-dir",
            str(tmp_path), "--no-progress"] + [a for s in sets for a in ("--set", s)]
    assert main(args) == 0
    assert "fleet of 2" in capsys.readouterr().out
    d = tmp_path / "bit_flipping_n20_reengage"
    config = load_config(d / "seed3" / "config.yaml")
    fleet = build_fleet(config, [3, 4])  # the fleet at the end: the last checkpoint + the step's training
    fleet.load_state_dict(th.load(next(d.glob("fleet_*.pt")), weights_only=False))
    fleet.finish_step()
    for k, s in enumerate([3, 4]):
        assert [int(r["timesteps"]) for r in rows(d / f"seed{s}" / "eval.csv")] == [0, 32, 64]
        model = ReenGAGEDQN.load(d / f"seed{s}" / "model.zip")
        assert model.alpha == 1.0 and model.softmax_tau == 0.5
        for (w, b), lin in zip(fleet.agent.q_net.layers(), linears_of(model.q_net), strict=True):
            assert th.equal(lin.weight, w[k].T) and th.equal(lin.bias, b[k, 0])
        env = BitFlippingEnv(n_bits=8)
        for seed in range(5):
            obs = env.reset(seed=seed)[0]
            batch = {key: th.as_tensor(v)[None, None].expand(2, 1, -1) for key, v in obs.items()}
            assert int(model.predict(obs, deterministic=True)[0]) == int(fleet.agent.act(batch)[k, 0, 0])


def test_goal_set_fleet_trains_and_exports(tmp_path):
    from rlcert.fleet.run import train_fleet

    sets = ["total_timesteps=50", "algo_kwargs.learning_starts=40", "algo_kwargs.batch_size=8", "eval.freq=25",
            "eval.episodes=3", "env_kwargs.n_max=12", "env_kwargs.max_steps=10",
            "algo_kwargs.policy_kwargs.encoder_arch=[16,16]", "algo_kwargs.policy_kwargs.head_arch=[16]"]
    config = load_config(CONFIGS / "noisy_seek_multi_reengage.yaml", sets, log_dir=str(tmp_path))
    overrides = [{"alpha": 0.0}, {"alpha": 5.0}]
    run_dirs = train_fleet(config, [0, 1], progress=False, member_overrides=overrides)
    for k, d in enumerate(run_dirs):
        assert [int(r["timesteps"]) for r in rows(d / "eval.csv")] == [0, 25, 50]
        model = MultiReenGAGEDDPG.load(d / "model.zip")
        assert model.alpha == [0.0, 5.0][k] and yaml.safe_load((d / "config.yaml").read_text())["seed"] == k
        obs = NoisySeekEnv(n_max=12).reset(seed=1)[0]
        action = model.predict(obs, deterministic=True)[0]
        fleet = build_fleet(config, [0, 1], overrides)  # the last checkpoint + the last step's training
        fleet.load_state_dict(th.load(next(d.parent.glob("fleet_*.pt")), weights_only=False))
        fleet.finish_step()
        batch = {key: th.as_tensor(v)[None, None].expand(2, 1, *np.shape(v)) for key, v in obs.items()}
        np.testing.assert_allclose(action, fleet.agent.act(batch)[k, 0].numpy(), atol=1e-6)


@pytest.mark.parametrize("name", ["bit_flipping_n40_reengage", "noisy_seek_multi_reengage"])
def test_bf16_update_is_close_to_fp32(name):
    """precision=bf16 (matmuls under autocast, fp32 master weights): one update from the same state and batch gives
    nearly the fp32 losses and gradients (cosine > 0.99); the parameters stay float32."""
    fleets = {}
    for prec in ("fp32", "bf16"):
        config = load_config(CONFIGS / f"{name}.yaml", ["algo_kwargs.learning_starts=60", "algo_kwargs.batch_size=64",
                                                        f"precision={prec}"])
        fleets[prec] = build_fleet(config, [0, 1])
    fleets["fp32"].learn(61)
    fleets["bf16"].load_state_dict(fleets["fp32"].state_dict())
    batch = fleets["fp32"].replay.sample(64, fleets["fp32"].generators, fleets["fp32"].env.compute_reward)
    out = {p: f.agent.update(batch, [th.Generator().manual_seed(1)] * 2) for p, f in fleets.items()}
    loss_key = "loss" if "loss" in out["fp32"] else "critic_loss"
    for key in (loss_key, *[k for k in out["fp32"] if "gradient" in k or "reengage" in k]):
        th.testing.assert_close(out["bf16"][key], out["fp32"][key], rtol=0.05, atol=1e-4)
    for name_opt, opt in fleets["fp32"].agent.optimizers().items():
        for m32, m16 in zip(opt.exp_avg, fleets["bf16"].agent.optimizers()[name_opt].exp_avg, strict=True):
            assert m16.dtype == th.float32
            assert float(th.nn.functional.cosine_similarity(m32.flatten(), m16.flatten(), dim=0)) > 0.99
