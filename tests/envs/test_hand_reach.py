import numpy as np
import pytest

from rlcert.envs import make_hand_reach


def test_hand_reach_bookkeeping():
    env = make_hand_reach()
    obs, info = env.reset(seed=0)
    assert obs["achieved_goal"].shape == (15,) and obs["desired_goal"].shape == (15,)
    assert env.action_space.shape == (20,)
    env.action_space.seed(0)
    steps, done, ever = 0, False, 0.0
    while not done:
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        steps += 1
        ever = max(ever, info["is_success"])
        assert info["is_success_ever"] == ever
        done = term or trunc
    assert steps == 50 and info["is_success_final"] == info["is_success"]
    # the wrapper forwards the vectorised reward of the robotics env
    rew = env.compute_reward(np.stack([obs["achieved_goal"]] * 2), np.stack([obs["desired_goal"]] * 2), None)
    assert rew.shape == (2,) and rew[0] == r


def test_sb3_check_env_rejects_float32_reward():
    """Documented limitation: HandReach's step reward is numpy.float32, which SB3's check_env rejects."""
    from stable_baselines3.common.env_checker import check_env

    with pytest.raises(AssertionError, match="reward"):
        check_env(make_hand_reach().unwrapped, warn=False)
