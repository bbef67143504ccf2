"""Properties every rlcert environment must have: registration, checkers, seeding, rendering, vectorised rewards."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import rlcert
from rlcert.envs import ENV_IDS

SMALL = {"rlcert/ContinuousSeek-v0": {"d": 3}, "rlcert/BitFlipping-v0": {"n_bits": 6}}


def test_register_envs_and_ids():
    gym.register_envs(rlcert)
    for env_id in ENV_IDS:
        assert env_id in gym.registry


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_gymnasium_check_env(env_id):
    gym_check_env(gym.make(env_id, **SMALL.get(env_id, {})).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_sb3_check_env(env_id):
    sb3_check_env(gym.make(env_id, **SMALL.get(env_id, {})).unwrapped, warn=True)


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_seeding_reproducible(env_id):
    def trajectory(seed):
        env = gym.make(env_id)
        env.action_space.seed(123)
        obs, _ = env.reset(seed=seed)
        out = [np.concatenate([v.ravel() for v in obs.values()])]
        for _ in range(15):
            obs, r, term, trunc, _ = env.step(env.action_space.sample())
            out.append(np.concatenate([v.ravel() for v in obs.values()] + [[r]]))
            if term or trunc:
                obs, _ = env.reset()
        return np.concatenate(out)

    a, b, c = trajectory(7), trajectory(7), trajectory(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_step_reward_matches_compute_reward_on_random_batches(env_id):
    env = gym.make(env_id, **SMALL.get(env_id, {}))
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    ags, dgs, rs = [], [], []
    for _ in range(100):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        ags.append(obs["achieved_goal"])
        dgs.append(obs["desired_goal"])
        rs.append(r)
        if term or trunc:
            obs, _ = env.reset()
    out = env.unwrapped.compute_reward(np.array(ags), np.array(dgs), {})
    assert out.shape == (100,)
    np.testing.assert_array_equal(out, rs)
    # relabelled goals (as HER does): reward of achieving one's own goal is the top reward
    top = env.unwrapped.compute_reward(np.array(ags), np.array(ags), {}) if dgs[0].shape == ags[0].shape else None
    if top is not None:
        assert np.all(top == 0.0)


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_render_rgb_array(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.min() < 255  # something is drawn
    plain = gym.make(env_id)
    plain.reset(seed=0)
    assert plain.render() is None


def test_observations_are_float32():
    for env_id in ENV_IDS:
        obs, _ = gym.make(env_id).reset(seed=0)
        assert all(v.dtype == np.float32 for v in obs.values()), env_id
