"""Seeded rollouts (reproducible, resumable), smoothed training config, and the certify-policy CLI."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import rlcert  # noqa: F401
from rlcert.certify.policy import (
    MaskedNoise,
    ObservationNoiseWrapper,
    PolicyFunction,
    certify_return_cp,
    certify_return_dkw,
    make_certifier,
    rollout,
)


def _seek_policy(d: int = 2) -> PolicyFunction:
    env = gym.make("rlcert/ContinuousSeek-v0", d=d)
    return PolicyFunction(lambda o: torch.clamp(o["desired_goal"] - o["observation"], -1, 1),
                          env.observation_space, env.action_space, ["desired_goal"])


def test_episode_returns_do_not_depend_on_batching_or_order():
    pf = _seek_policy()
    noise = MaskedNoise(make_certifier("gaussian", 0.2), pf.layout)
    make = lambda: gym.make("rlcert/ContinuousSeek-v0", d=2)  # noqa: E731
    a = {e.idx: e.ret for e in rollout(pf, make, range(30), seed=4, noise=noise, num_envs=8)}
    b = {e.idx: e.ret for e in rollout(pf, make, [29, 3, 17, 0], seed=4, noise=noise, num_envs=1)}
    c = {e.idx: e.ret for e in rollout(pf, make, range(30), seed=5, noise=noise, num_envs=8)}
    assert all(a[i] == b[i] for i in b)
    assert a != c
    assert len(set(a.values())) > 2  # the noise matters: returns vary


class RandomLength(gym.Env):
    """Episodes of a seed-dependent length L in 1..6 with reward 1 per step (return = length = L)."""

    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.left = int(self.np_random.integers(1, 7))
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.left -= 1
        return np.zeros(2, np.float32), 1.0, self.left == 0, False, {}


def test_variable_length_episodes_refill_slots():
    from rlcert.certify.policy.episodes import env_seed

    pf = PolicyFunction(lambda o: torch.zeros(o["observation"].shape[0], dtype=torch.long),
                        RandomLength.observation_space, RandomLength.action_space, ["observation"])
    eps = rollout(pf, RandomLength, range(25), seed=3, num_envs=4)
    want = {}
    for i in range(25):
        env = RandomLength()
        env.reset(seed=env_seed(3, i))
        want[i] = env.left
    assert sorted(e.idx for e in eps) == list(range(25))
    assert all(e.length == want[e.idx] and e.ret == want[e.idx] for e in eps)
    assert len(set(want.values())) > 3


def test_constant_policy_certified_return_equals_its_true_return_at_eps_zero():
    """The zero action never leaves the origin: every return is -max_steps = r_min (goals are never within 0.1)."""
    env = gym.make("rlcert/ContinuousSeek-v0", d=2)
    pf = PolicyFunction(lambda o: torch.zeros(o["observation"].shape[0], 2), env.observation_space,
                        env.action_space, ["desired_goal"])
    noise = MaskedNoise(make_certifier("gaussian", 0.3), pf.layout)
    r = np.array([e.ret for e in rollout(pf, lambda: gym.make("rlcert/ContinuousSeek-v0", d=2), range(20),
                                         noise=noise, num_envs=5)])
    assert np.all(r == -10.0)
    assert certify_return_dkw(r, 0.0, 0.3, 0.05, r_min=-10) == -10.0
    assert certify_return_cp(r, [0.0, 1.0], 0.3, 0.05, r_min=-10, r_max=0).tolist() == [-10.0, -10.0]


def test_smoothed_training_config_wraps_the_training_env(tmp_path):
    from rlcert.train import train
    from rlcert.training import load_config, make_train_env

    cfg = {"name": "tiny", "algo": "DDPG", "env": "rlcert/ContinuousSeek-v0", "env_kwargs": {"d": 2},
           "total_timesteps": 120, "observation_noise": {"sigma": 0.1, "perturb": ["desired_goal"]},
           "algo_kwargs": {"replay_buffer_class": "HerReplayBuffer", "learning_starts": 100, "batch_size": 16,
                           "policy_kwargs": {"net_arch": [8]}},
           "eval": {"freq": 10_000, "episodes": 2}, "checkpoint": False}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    config = load_config(path, log_dir=str(tmp_path / "runs"))
    assert config["observation_noise"] == {"method": "gaussian", "sigma": 0.1, "perturb": ["desired_goal"]}
    env = make_train_env(config)
    assert isinstance(env, ObservationNoiseWrapper) and env.noise.sigma == 0.1
    model, run_dir = train(config, progress=False)
    assert (run_dir / "model.zip").exists()
    obs = model.replay_buffer.observations
    stored = obs["desired_goal"][:100, 0]
    assert np.all(stored != model.replay_buffer.next_observations["desired_goal"][:100, 0])  # fresh noise per step
    assert np.all(obs["observation"][:100, 0] == model.replay_buffer.observations["achieved_goal"][:100, 0])
    for bad, word in (({"sigma": -1}, "sigma"), ({"sigma": 0.1, "method": "uniform"}, "method"),
                      ({"sigma": 0.1, "perturb": ["goal"]}, "perturb"), ({"sigma": 0.1, "scale": 2}, "unknown")):
        path.write_text(yaml.safe_dump({**cfg, "observation_noise": bad}))
        with pytest.raises(ValueError, match=word):
            config = load_config(path)
            make_train_env(config)
    path.write_text(yaml.safe_dump({**cfg, "observation_noise": None}))
    assert not isinstance(make_train_env(load_config(path)), ObservationNoiseWrapper)


def _saved_model(tmp_path, kind: str):
    from stable_baselines3 import DDPG, DQN

    if kind == "seek":
        env_id, kw, algo = "rlcert/ContinuousSeek-v0", {"d": 2}, "DDPG"
        model = DDPG("MultiInputPolicy", gym.make(env_id, **kw), policy_kwargs={"net_arch": [8]}, seed=0)
    else:
        env_id, kw, algo = "rlcert/BitFlipping-v0", {"n_bits": 4}, "DQN"
        model = DQN("MultiInputPolicy", gym.make(env_id, **kw), policy_kwargs={"net_arch": [8]}, seed=0)
    run = tmp_path / kind / "seed0"
    run.mkdir(parents=True)
    model.save(run / "model.zip")
    (run / "config.yaml").write_text(yaml.safe_dump({"algo": algo, "env": env_id, "env_kwargs": kw}))
    return run / "model.zip"


def _rows(path):
    return path.read_text().splitlines()[1:]


def test_cli_continuous_writes_resumes_and_plots(tmp_path, capsys):
    from rlcert.certify.policy.cli import main

    model = _saved_model(tmp_path, "seek")
    out = tmp_path / "o" / "seek.tsv"
    args = ["--model", str(model), "--sigma", "0.2", "--episodes", "10", "--eps", "0,0.1,0.3", "--steps", "2",
            "--n", "200", "--num-envs", "4", "--out", str(out), "--plot-dir", str(tmp_path / "png"), "--no-progress"]
    assert main(args) == 0
    assert len(_rows(out)) == 20
    summary = json.loads(out.with_name("seek.tsv.json").read_text())
    ret = summary["return"]
    assert ret["r_min"] == -10 and ret["r_max"] == 0 and len(ret["dkw"]) == 3 and len(ret["cp"]) == 3
    assert ret["dkw"][0] <= ret["smoothed_mean"] and np.all(np.diff(ret["dkw"]) <= 0)
    po = summary["steps"]["per_observation"][0]
    assert len(po["lower"]) == 21 and np.all(np.array(po["lower"]) <= np.array(po["upper"]))
    assert (tmp_path / "png" / "action_bounds.png").exists() and (tmp_path / "png" / "certified_return.png").exists()
    before = out.read_text()
    assert main(args) == 0 and out.read_text() == before  # resumed: nothing re-run
    assert main([a if a != "10" else "14" for a in args]) == 0
    rows = _rows(out)
    assert len(rows) == 28 and rows[:20] == before.splitlines()[1:]
    changed = [a if a != "0.2" else "0.3" for a in args]
    assert main(changed) == 2
    assert "other settings" in capsys.readouterr().err


def test_cli_discrete_certifies_actions(tmp_path):
    from rlcert.certify.policy.cli import main

    model = _saved_model(tmp_path, "bits")
    out = tmp_path / "bits.tsv"
    assert main(["--model", str(model), "--sigma", "0.25", "--episodes", "6", "--steps", "3", "--n", "300",
                 "--out", str(out), "--plot-dir", str(tmp_path), "--no-progress"]) == 0
    st = json.loads(out.with_name("bits.tsv.json").read_text())["steps"]
    assert st["norm"] == "l2" and len(st["radius"]) == 3
    assert all(r >= 0 for r in st["radius"]) and (tmp_path / "action_radii.png").exists()
    assert main(["--model", str(model), "--sigma", "0.25", "--method", "laplace", "--episodes", "0", "--steps",
                 "2", "--n", "300", "--out", str(tmp_path / "l1.tsv"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "l1.tsv.json").read_text())["steps"]["norm"] == "l1"


@pytest.mark.parametrize("bad,word", [(["--sigma", "-1"], "--sigma"), (["--perturb", "goal"], "--perturb"),
                                      (["--episodes", "-3"], "--episodes"), (["--eps", "0,x"], "--eps"),
                                      (["--alpha", "2"], "--alpha"), (["--env-kwargs", "[1]"], "--env-kwargs"),
                                      (["--method", "uniform"], "--method")])
def test_cli_bad_input_is_one_line_naming_the_parameter(tmp_path, capsys, bad, word):
    from rlcert.certify.policy.cli import main

    model = _saved_model(tmp_path, "seek")
    out = tmp_path / "x.tsv"
    args = ["--model", str(model), "--sigma", "0.2", "--out", str(out), "--no-progress"]
    assert main(args + bad) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0]
    assert not out.exists()


def test_cli_interrupted_then_other_sigma_is_refused(tmp_path, monkeypatch, capsys):
    """Issue 20: interrupt a run at --sigma 0.2, rerun with --sigma 0.9: refused (one line naming sigma), the
    sigma-0.2 episodes are never mixed into a sigma-0.9 certificate."""
    import rlcert.certify.policy.episodes as episodes
    from rlcert.certify.policy.cli import main

    real = episodes.rollout

    def interrupted(*a, on_episode=None, **kw):
        seen = []

        def record(ep):
            on_episode(ep)
            seen.append(ep)
            if len(seen) == 3:
                raise KeyboardInterrupt
        return real(*a, on_episode=record, **kw)

    model = _saved_model(tmp_path, "seek")
    out = tmp_path / "seek.tsv"
    args = ["--model", str(model), "--sigma", "0.2", "--episodes", "8", "--steps", "0", "--num-envs", "2",
            "--out", str(out), "--no-progress"]
    monkeypatch.setattr(episodes, "rollout", interrupted)
    assert main(args) == 130
    assert len(_rows(out)) == 3
    monkeypatch.setattr(episodes, "rollout", real)
    capsys.readouterr()
    assert main([a if a != "0.2" else "0.9" for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sigma" in err[0]
    assert len(_rows(out)) == 3  # nothing appended
    assert main(args) == 0  # the same settings resume
    assert len(_rows(out)) == 16
