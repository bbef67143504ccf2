import gymnasium as gym
import numpy as np
import pytest

import rlcert  # noqa: F401
from rlcert.envs import (
    DriveSeekEnv,
    NoisySeekEnv,
    goal_set_reward,
    greedy_action,
    item_rewards,
    pack_goal_set,
    sample_clustered_goals,
    split_goal_set,
)
from rlcert.envs.drive_seek import wrap
from rlcert.envs.noisy_seek import draw_cluster_layout


# ---- DriveSeek --------------------------------------------------------------------------------------------
def test_drive_seek_heading_and_speed():
    env = DriveSeekEnv()
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs["observation"], [0, 0, 0, 0, 0, 1])  # pos, rounded, sin, cos
    obs, *_ = env.step(np.array([0.3]))
    np.testing.assert_allclose(obs["observation"][:2], [np.cos(0.3), np.sin(0.3)], atol=1e-6)
    obs, *_ = env.step(np.array([5.0]))  # clipped to 0.5 rad
    expected = np.array([np.cos(0.3) + np.cos(0.8), np.sin(0.3) + np.sin(0.8)])
    np.testing.assert_allclose(obs["observation"][:2], expected, atol=1e-5)
    np.testing.assert_allclose(obs["observation"][4:], [np.sin(0.8), np.cos(0.8)], atol=1e-6)


def test_drive_seek_wraps_around_torus():
    env = DriveSeekEnv()
    env.reset(seed=0)
    xs = []
    for _ in range(22):
        obs, *_ = env.step(np.zeros(1))
        xs.append(obs["achieved_goal"][0])
    # straight along +x at speed 1: 1..10, then 11 -> -10 (torus width 21), ..., back to 0 after 21 steps
    assert xs[:10] == list(range(1, 11))
    assert xs[10] == -10 and xs[20] == 0 and xs[21] == 1
    np.testing.assert_allclose(wrap(np.array([10.5, -10.5, 31.0])), [-10.5, -10.5, -11.0 + 21])


def test_drive_seek_rounded_position_stays_on_grid():
    env = DriveSeekEnv()
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        obs, _, _, trunc, _ = env.step(rng.uniform(-0.5, 0.5, 1))
        ag = obs["achieved_goal"]
        assert np.all(np.abs(ag) <= 10) and np.all(ag == np.rint(ag))
        if trunc:
            env.reset()


def test_drive_seek_goal_sampler_statistics():
    env = DriveSeekEnv()
    counts = []
    for s in range(1500):
        env.reset(seed=s)
        g = env.goals
        assert len(np.unique(g, axis=0)) == len(g)
        assert np.all(np.abs(g) <= 10)
        counts.append(len(g))
    counts = np.array(counts)
    assert counts.min() >= 1 and counts.max() <= 200
    # n ~ U{1..200}: mean 100.5, sd 57.7
    assert abs(counts.mean() - 100.5) < 4 * 57.7 / np.sqrt(len(counts))


def test_drive_seek_reward_when_on_goal_and_not_consumed():
    env = DriveSeekEnv()
    env.reset(seed=0)
    env._goals = np.array([[1, 0], [2, 0]])
    env._goal_array = pack_goal_set(env._goals, env.n_max)
    rewards = [env.step(np.zeros(1))[1] for _ in range(3)]
    assert rewards == [1.0, 1.0, 0.0]
    env.reset(seed=0)
    env._goals = np.array([[1, 0]])
    env._goal_array = pack_goal_set(env._goals, env.n_max)
    obs, r, *_ , info = env.step(np.zeros(1))
    assert r == 1.0 and info["goals_reached"] == 1
    env._heading = np.pi  # drive back and forth over the same goal: still rewarded, count stays 1
    env.step(np.zeros(1))
    env._heading = 0.0
    obs, r, *_, info = env.step(np.zeros(1))
    assert r == 1.0 and info["goals_reached"] == 1 and info["is_success"] == 1.0


# ---- NoisySeek --------------------------------------------------------------------------------------------
def test_noisy_seek_noise_free_dynamics():
    env = NoisySeekEnv(noise_std=0.0)
    env.reset(seed=0)
    obs, *_ = env.step(np.array([3.0, 4.0]))  # scaled to the unit l2 ball
    np.testing.assert_allclose(obs["observation"], [0.6, 0.8, 1.0, 1.0], atol=1e-6)
    obs, *_ = env.step(np.array([0.1, -0.2]))  # inside the ball: unchanged
    np.testing.assert_allclose(obs["observation"][:2], [0.7, 0.6], atol=1e-6)


def test_noisy_seek_noise_is_standard_normal():
    env = NoisySeekEnv(max_steps=10_000)
    env.reset(seed=0)
    a = np.array([0.3, -0.4])
    prev, deltas = np.zeros(2), []
    for _ in range(4000):
        obs, *_ = env.step(a)
        pos = obs["observation"][:2].astype(np.float64)
        deltas.append(pos - prev - a)
        prev = env._pos.copy()
    d = np.array(deltas)
    np.testing.assert_allclose(d.mean(0), 0.0, atol=4 / np.sqrt(len(d)))
    np.testing.assert_allclose(np.cov(d.T), np.eye(2), atol=0.1)


def test_noisy_seek_cluster_layout_statistics():
    rng = np.random.default_rng(0)
    layouts = [draw_cluster_layout(rng) for _ in range(4000)]
    n_c = np.array([lay[0] for lay in layouts])
    n_draw = np.array([lay[1] for lay in layouts])
    # Geometric(0.15) on {1, 2, ...}: mean 1/p = 6.67, sd sqrt(1-p)/p = 6.15, P(n_c = 1) = 0.15
    assert n_c.min() == 1
    assert abs(n_c.mean() - 1 / 0.15) < 4 * 6.15 / np.sqrt(len(n_c))
    assert abs(np.mean(n_c == 1) - 0.15) < 4 * np.sqrt(0.15 * 0.85 / len(n_c))
    assert abs(n_draw.mean() - 100.5) < 4 * 57.7 / np.sqrt(len(n_draw))
    centres = np.concatenate([lay[2] for lay in layouts])
    assert abs(centres.std() - 10.0) < 0.3
    for lay in layouts[:50]:
        assert lay[3].shape == (lay[0],) and abs(lay[3].sum() - 1) < 1e-9


def test_noisy_seek_goals_distinct_integers_and_clustered():
    rng = np.random.default_rng(1)
    for _ in range(300):
        g = sample_clustered_goals(rng)
        assert 1 <= len(g) <= 200
        assert len(np.unique(g, axis=0)) == len(g)
        assert g.dtype.kind == "i"
    # one cluster: replaying the same generator gives the centre; goals scatter around it with sd ~ 2 per axis
    # (N(0, 2^2) + rounding; de-duplication removes repeats near the centre, which widens the spread a little)
    devs = []
    for seed in range(200):
        _, _, centres, _ = draw_cluster_layout(np.random.default_rng(seed), p_cluster=1.0)
        g = sample_clustered_goals(np.random.default_rng(seed), p_cluster=1.0)
        devs.append(g - centres[0])
    devs = np.concatenate(devs)
    assert np.all(np.abs(devs.mean(0)) < 0.15)
    assert np.all((devs.std(0) > 2.25) & (devs.std(0) < 2.6)), devs.std(0)  # measured 2.42


def test_greedy_policy_beats_random_on_noisy_seek():
    env = NoisySeekEnv()
    ret_greedy, ret_random = [], []
    rng = np.random.default_rng(0)
    for s in range(30):
        for policy, rets in ((greedy_action, ret_greedy), (lambda o: rng.uniform(-1, 1, 2), ret_random)):
            obs, _ = env.reset(seed=s)
            total, done = 0.0, False
            while not done:
                obs, r, term, trunc, _ = env.step(policy(obs))
                total += r
                done = term or trunc
            rets.append(total)
    assert np.mean(ret_greedy) > np.mean(ret_random) + 2


# ---- shared goal-set machinery ----------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["rlcert/DriveSeek-v0", "rlcert/NoisySeek-v0"])
def test_step_reward_equals_compute_reward_and_item_rewards(env_id):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    ags, dgs, rewards, items = [], [], [], []
    policy = greedy_action if "Noisy" in env_id else (lambda o: np.array([0.2]))
    for _ in range(200):
        obs, r, term, trunc, info = env.step(policy(obs))
        ags.append(obs["achieved_goal"])
        dgs.append(obs["desired_goal"])
        rewards.append(r)
        items.append(info["item_rewards"])
        if term or trunc:
            obs, _ = env.reset()
    ags, dgs = np.array(ags), np.array(dgs)
    batch = env.unwrapped.compute_reward(ags, dgs, {})
    assert batch.shape == (200,)
    np.testing.assert_array_equal(batch, rewards)
    it = env.unwrapped.item_rewards(ags, dgs)
    assert it.shape == (200, 200)
    np.testing.assert_array_equal(it, np.array(items))
    np.testing.assert_array_equal(it.sum(1), batch)
    assert sum(rewards) > 0  # the check above is not vacuous


def test_item_rewards_ignore_padding_rows():
    dg = pack_goal_set(np.array([[3, 4], [0, 1]]), n_max=5)  # padding rows are (0, 0, 0)
    gates, pts = split_goal_set(dg)
    np.testing.assert_array_equal(gates, [1, 1, 0, 0, 0])
    assert item_rewards(np.array([0.0, 0.0]), dg).sum() == 0  # (0,0) matches only padding
    np.testing.assert_array_equal(item_rewards(np.array([0.0, 1.0]), dg), [0, 1, 0, 0, 0])
    # batch broadcasting
    ag = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(goal_set_reward(ag, np.stack([dg] * 3)), [1, 0, 1])
    with pytest.raises(ValueError, match="number of goals"):
        pack_goal_set(np.zeros((6, 2)), n_max=5)


@pytest.mark.parametrize("cls, kwargs, match", [
    (DriveSeekEnv, {"n_max": 0}, "n_max"), (DriveSeekEnv, {"n_max": 442}, r"n_max must be an integer in \[1, 441\]"),
    (NoisySeekEnv, {"n_max": -3}, "n_max"), (NoisySeekEnv, {"noise_std": -1.0}, "noise_std"),
    (DriveSeekEnv, {"max_steps": 0}, "max_steps"), (DriveSeekEnv, {"render_mode": "human"}, "render_mode")])
def test_bad_kwargs(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_bad_actions():
    env = DriveSeekEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must have shape \(1,\)"):
        env.step(np.zeros(2))
    env = NoisySeekEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.inf, 0.0]))
