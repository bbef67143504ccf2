import gymnasium as gym
import numpy as np
import pytest

import rlcert  # noqa: F401
from rlcert.envs import ContinuousSeekEnv, continuous_seek_reward
from rlcert.envs.reference import straight_line_action


def test_dynamics_hand_computed():
    env = ContinuousSeekEnv(d=3, D=5.0)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["observation"], np.zeros(3, np.float32))
    obs, *_ = env.step(np.array([0.5, 2.0, -7.0]))  # action clipped to [-1, 1] per coordinate
    np.testing.assert_allclose(obs["observation"], [0.5, 1.0, -1.0])
    for _ in range(6):
        obs, *_ = env.step(np.array([1.0, 1.0, -1.0]))  # state clipped to [-D, D]
    np.testing.assert_allclose(obs["observation"], [5.0, 5.0, -5.0])
    np.testing.assert_array_equal(obs["achieved_goal"], obs["observation"])


def test_reward_threshold_is_linf():
    g = np.zeros((1, 2))
    assert continuous_seek_reward(np.array([[0.1, -0.1]]), g, 0.1)[0] == 0.0  # boundary included
    assert continuous_seek_reward(np.array([[0.1001, 0.0]]), g, 0.1)[0] == -1.0
    assert continuous_seek_reward(np.array([[0.09, 0.09]]), g, 0.1)[0] == 0.0  # l2 would be 0.127 > eps


def test_success_is_latched_and_truncation():
    env = ContinuousSeekEnv(d=4, max_steps=10)
    obs, _ = env.reset(seed=3)
    steps, info, truncated = 0, {}, False
    while info.get("is_success", 0.0) == 0.0:
        obs, r, term, truncated, info = env.step(straight_line_action(obs))
        steps += 1
    assert r == 0.0 and steps <= 5  # |g_i| <= 5 and steps of 1: at most 5 steps
    obs, r, term, truncated, info = env.step(np.ones(4))  # walk away from the goal
    assert r == -1.0 and info["is_success"] == 1.0
    while not truncated:
        obs, r, term, truncated, info = env.step(np.zeros(4))
        steps += 1
        assert not term
    assert steps + 1 == 10


def test_goal_distribution_uniform():
    env = ContinuousSeekEnv(d=5, D=5.0)
    goals = np.array([env.reset(seed=s)[0]["desired_goal"] for s in range(2000)])
    assert goals.min() >= -5 and goals.max() <= 5
    np.testing.assert_allclose(goals.mean(0), 0.0, atol=4 * 5 / np.sqrt(3 * 2000))
    np.testing.assert_allclose(goals.var(0), 100 / 12, rtol=0.1)


def test_make_by_id_with_kwargs():
    env = gym.make("rlcert/ContinuousSeek-v0", d=10, eps=0.2)
    assert env.observation_space["desired_goal"].shape == (10,)
    assert env.unwrapped.eps == 0.2


@pytest.mark.parametrize("kwargs, match", [({"d": 0}, "d must"), ({"d": 2.5}, "d must"), ({"D": -1}, "D must"),
                                           ({"eps": 0}, "eps must"), ({"max_steps": 0}, "max_steps must")])
def test_bad_kwargs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContinuousSeekEnv(**kwargs)


def test_bad_actions():
    env = ContinuousSeekEnv(d=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must have shape \(3,\)"):
        env.step(np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([0.0, np.nan, 0.0]))
