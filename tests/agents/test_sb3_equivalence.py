"""alpha = 0 is stock SB3 (bit-identical weights, same seed) through OUR loop; alpha > 0 changes the update."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DDPG, DQN, SAC, TD3, HerReplayBuffer

import rlcert  # noqa: F401
from rlcert.agents import ReenGAGEDDPG, ReenGAGEDQN, ReenGAGESAC, ReenGAGETD3

STEPS = 100
KW = dict(learning_starts=50, batch_size=32, buffer_size=1000, replay_buffer_class=HerReplayBuffer, seed=3)


def make(discrete: bool):
    if discrete:
        return gym.make("rlcert/BitFlipping-v0", n_bits=5)
    return gym.make("rlcert/ContinuousSeek-v0", d=3)


def train(cls, discrete=False, **kw):
    th.set_num_threads(1)
    extra = dict(learning_starts=50, train_freq=1, gradient_steps=1) if discrete else {}
    # A fresh policy_kwargs dict per model: SB3 mutates it (SAC adds use_sde).
    model = cls("MultiInputPolicy", make(discrete), policy_kwargs=dict(net_arch=[16, 16]), **{**KW, **extra, **kw})
    model.learn(STEPS)
    return model


def same_weights(m1, m2) -> bool:
    p1, p2 = m1.policy.state_dict(), m2.policy.state_dict()
    assert p1.keys() == p2.keys()
    return all(th.equal(p1[k], p2[k]) for k in p1)


@pytest.mark.parametrize("stock, ours, discrete", [(DDPG, ReenGAGEDDPG, False), (TD3, ReenGAGETD3, False),
                                                   (SAC, ReenGAGESAC, False), (DQN, ReenGAGEDQN, True)])
def test_alpha_zero_is_bit_identical_to_stock(stock, ours, discrete, monkeypatch):
    from rlcert.agents.core import GradientMatching

    calls = []
    hook = GradientMatching.critic_loss_terms
    monkeypatch.setattr(GradientMatching, "critic_loss_terms", lambda *a, **k: calls.append(1) or hook(*a, **k))
    reference = train(stock, discrete)
    assert not calls
    assert same_weights(reference, train(ours, discrete, alpha=0.0))
    assert len(calls) == STEPS - 50  # our loop and hook ran once per update (not SB3's train())
    assert not same_weights(reference, train(ours, discrete, alpha=0.5))  # the test can fail


def test_save_load_round_trip(tmp_path):
    model = train(ReenGAGEDDPG, alpha=0.3)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    loaded = ReenGAGEDDPG.load(tmp_path / "model.zip", env=make(False))
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    assert loaded.alpha == 0.3 and loaded.reengage_mode == "sparse"
    assert same_weights(model, loaded)
    obs, _ = make(False).reset(seed=0)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    loaded.learn(60, reset_num_timesteps=False)  # continues training after load
    assert loaded.num_timesteps == STEPS + 60


@pytest.mark.parametrize("kw, match", [(dict(alpha=-1.0), "alpha"), (dict(reengage_mode="both"), "reengage_mode"),
                                       (dict(reengage_mode="dense"), "reward_fn"),
                                       (dict(goal_weighting="std"), "goal_weighting"),
                                       (dict(goal_reduction="avg"), "goal_reduction")])
def test_bad_options_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        ReenGAGEDDPG("MultiInputPolicy", make(False), **kw)


def test_dense_mode_and_goal_weighting_run():
    def reward_fn(ag, g):
        return -th.linalg.vector_norm(ag - g, dim=-1)
    model = train(ReenGAGEDDPG, alpha=0.2, reengage_mode="dense", reward_fn=reward_fn, goal_weighting="running_std")
    assert model.logger.name_to_value["train/reengage_mask_frac"] == 1.0
    assert model._goal_rms is not None and np.all(model._goal_rms.var > 0)


def test_partial_derivative_ablation_differs():
    total = train(ReenGAGEDDPG, alpha=0.5)
    partial = train(ReenGAGEDDPG, alpha=0.5, through_target_actor=False)
    assert not same_weights(total, partial)
