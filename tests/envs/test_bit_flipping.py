import numpy as np
import pytest

from rlcert.envs import BitFlippingEnv, bit_flipping_reward


def test_flip_and_reward():
    env = BitFlippingEnv(n_bits=4)
    obs, _ = env.reset(seed=0)
    state = obs["observation"].copy()
    obs, r, term, trunc, info = env.step(2)
    expected = state.copy()
    expected[2] = 1 - expected[2]
    np.testing.assert_array_equal(obs["observation"], expected)
    assert r == (0.0 if np.array_equal(expected, obs["desired_goal"]) else -1.0)
    assert bit_flipping_reward(np.array([1, 0, 1.0]), np.array([1, 0, 1.0])) == 0.0
    np.testing.assert_array_equal(bit_flipping_reward(np.array([[1, 0], [0, 0.0]]), np.array([[1, 0], [1, 0.0]])),
                                  [0.0, -1.0])


def test_optimal_policy_succeeds_and_success_latches():
    env = BitFlippingEnv(n_bits=6)
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        diff = np.flatnonzero(obs["achieved_goal"] != obs["desired_goal"])
        info = {"is_success": 0.0}
        for i in diff:
            obs, r, term, trunc, info = env.step(int(i))
        assert info["is_success"] == 1.0
        if len(diff) < 6:
            obs, r, term, trunc, info = env.step(0)  # leave the goal again: success stays latched
            assert r == -1.0 and info["is_success"] == 1.0


def test_episode_length_is_n_bits():
    env = BitFlippingEnv(n_bits=5)
    env.reset(seed=0)
    truncs = [env.step(0)[3] for _ in range(5)]
    assert truncs == [False] * 4 + [True]


def test_bad_input():
    with pytest.raises(ValueError, match="n_bits"):
        BitFlippingEnv(n_bits=0)
    env = BitFlippingEnv(n_bits=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"bit index in \[0, 2\]"):
        env.step(3)
    with pytest.raises(ValueError, match="one integer"):
        env.step(np.array([0, 1]))
