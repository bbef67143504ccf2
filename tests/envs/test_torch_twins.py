"""The torch twins (rlcert.envs.torch_vector) run the gymnasium envs' own rules: on the same start state, goals,
actions (and NoisySeek noise) they give identical observations, rewards, truncations and success latches over long
random rollouts, and their reset distributions equal the gymnasium envs' (two-sample tests; seeds cannot align)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from scipy import stats

from rlcert.envs import BitFlippingEnv, ContinuousSeekEnv, DriveSeekEnv, NoisySeekEnv, greedy_action
from rlcert.envs.drive_seek import greedy_drive_action
from rlcert.envs.goal_set import split_goal_set
from rlcert.envs.torch_vector import TorchBitFlipping, TorchContinuousSeek, TorchDriveSeek, TorchNoisySeek

KEYS = ("observation", "achieved_goal", "desired_goal")


def gens(n: int, seed: int = 0) -> list[th.Generator]:
    return [th.Generator().manual_seed(seed + i) for i in range(n)]


def assert_same_step(tout, gouts) -> None:
    """The twin's step output equals the gymnasium envs' (one per copy), bit for bit."""
    tobs, treward, ttrunc, tsucc = tout
    for i, (gobs, greward, term, trunc, info) in enumerate(gouts):
        for key in KEYS:
            np.testing.assert_array_equal(tobs[key][i].numpy(), gobs[key], err_msg=key)
        assert float(treward[i]) == greward
        assert bool(tsucc[i]) == bool(info["is_success"])
        assert ttrunc == trunc and not term


def rollout(twin, envs, sync, act, episodes: int, reached) -> int:
    """Reset both, copy the twin's start into the gymnasium envs (``sync``), step ``episodes`` episodes with
    ``act(t, obs)`` -> actions (n, ...); checks every step; returns the number of goal hits."""
    hits = 0
    for _ in range(episodes):
        twin.reset()
        for i, e in enumerate(envs):
            e.reset(seed=i)
            sync(i, e)
        tobs = twin.observation()
        for i, e in enumerate(envs):
            for key in KEYS:
                np.testing.assert_array_equal(tobs[key][i].numpy(), e._obs()[key], err_msg=f"reset {key}")
        for t in range(twin.max_steps):
            a = act(t, tobs)
            tout = twin.step(th.as_tensor(a))
            gouts = [e.step(a[i]) for i, e in enumerate(envs)]
            assert_same_step(tout, gouts)
            hits += int(sum(reached(g[1]) for g in gouts))
            tobs = tout[0]
        rewards_twin = twin.compute_reward(tobs["achieved_goal"], tobs["desired_goal"]).numpy()
        rewards_gym = envs[0].compute_reward(tobs["achieved_goal"].numpy(), tobs["desired_goal"].numpy(), None)
        np.testing.assert_array_equal(rewards_twin, rewards_gym)
    return hits


def test_continuous_seek_twin_equals_gymnasium():
    n, d, rng = 8, 3, np.random.default_rng(0)
    twin = TorchContinuousSeek(gens(n), d=d, max_steps=10)
    envs = [ContinuousSeekEnv(d=d, max_steps=10) for _ in range(n)]

    def sync(i, e):  # goals reachable on a 0.75 grid for half the copies, so rewards 0 and the latch occur
        if i < n // 2:
            twin.goal[i] = th.as_tensor(rng.integers(-2, 3, d) * 0.75, dtype=th.float32)
        e._goal = twin.goal[i].double().numpy()

    def act(t, obs):
        a = rng.uniform(-1.4, 1.4, (n, d)).astype(np.float32)
        if t % 3 == 0:
            a[: n // 2] = np.clip(obs["desired_goal"][: n // 2].numpy() - obs["observation"][: n // 2].numpy(), -1, 1)
        return a

    assert rollout(twin, envs, sync, act, episodes=6, reached=lambda r: r == 0.0) > 10


def test_bit_flipping_twin_equals_gymnasium():
    n, nb, rng = 8, 6, np.random.default_rng(1)
    twin = TorchBitFlipping(gens(n), n_bits=nb)
    envs = [BitFlippingEnv(n_bits=nb) for _ in range(n)]

    def sync(i, e):
        e._state, e._goal = twin.state[i].numpy().copy(), twin.goal[i].numpy().copy()
        e._success = bool(twin.success[i])

    def act(t, obs):  # flip a differing bit 80% of the time, so that copies reach their goals
        diff = (obs["observation"] != obs["desired_goal"]).numpy() + 1e-3 * rng.uniform(size=(n, nb))
        return np.where(rng.uniform(size=n) < 0.8, diff.argmax(1), rng.integers(0, nb, n))

    assert rollout(twin, envs, sync, act, episodes=10, reached=lambda r: r == 0.0) > 10
    with pytest.raises(ValueError, match="bit indices"):
        twin.step(th.full((n,), nb))


def sync_goal_set(twin):
    def sync(i, e):
        goal = twin.goal[i].numpy().copy()
        e._goal_array = goal
        e._goals = goal[goal[:, 0] > 0, 1:].astype(np.int64)
    return sync


def test_drive_seek_twin_equals_gymnasium():
    n, rng = 8, np.random.default_rng(2)
    twin, envs = TorchDriveSeek(gens(n)), [DriveSeekEnv() for _ in range(n)]

    def act(t, obs):  # half the copies greedy (goal hits, wrap-around), half random beyond max_turn (clipping)
        a = rng.uniform(-0.8, 0.8, (n, 1))
        for i in range(n // 2):
            a[i] = greedy_drive_action({k: v[i].numpy() for k, v in obs.items()})
        return a

    assert rollout(twin, envs, sync_goal_set(twin), act, episodes=6, reached=lambda r: r > 0) > 50


def test_noisy_seek_twin_equals_gymnasium():
    n, rng = 8, np.random.default_rng(3)
    twin, envs = TorchNoisySeek(gens(n)), [NoisySeekEnv() for _ in range(n)]
    draw, drawn = twin._noise, []
    twin._noise = lambda: drawn.append(draw()) or drawn[-1]  # the twin's noise, handed to the gymnasium envs
    for i, e in enumerate(envs):
        e._noise = lambda i=i: drawn[-1][i].numpy()

    def act(t, obs):  # greedy for half the copies; random, often outside the unit ball, for the others
        a = rng.uniform(-2.0, 2.0, (n, 2))
        for i in range(n // 2):
            a[i] = greedy_action({k: v[i].numpy() for k, v in obs.items()})
        return a

    assert rollout(twin, envs, sync_goal_set(twin), act, episodes=5, reached=lambda r: r > 0) > 20


def test_twin_rewards_and_item_rewards_equal_gymnasium_on_random_batches():
    rng = np.random.default_rng(4)
    dg = np.stack([NoisySeekEnv().reset(seed=s)[0]["desired_goal"] for s in range(64)])
    ag = np.rint(rng.normal(0, 6, (64, 2))).astype(np.float32)
    ag[:32] = dg[:32, 0, 1:]  # the first goal of each set: hits
    twin, env = TorchNoisySeek(gens(1)), NoisySeekEnv()
    np.testing.assert_array_equal(twin.item_rewards(th.as_tensor(ag), th.as_tensor(dg)).numpy(),
                                  env.item_rewards(ag, dg))
    r = twin.compute_reward(th.as_tensor(ag), th.as_tensor(dg)).numpy()
    np.testing.assert_array_equal(r, env.compute_reward(ag, dg, None))
    assert r[:32].min() == 1.0


# ---- reset distributions --------------------------------------------------------------------------------------
N_RESETS = 1500


def gym_resets(env, n: int) -> list[dict]:
    return [env.reset(seed=10_000 + s)[0] for s in range(n)]


def twin_resets(cls, n: int, **kw) -> dict:
    return cls(gens(n, seed=50_000), **kw).reset()


def test_continuous_seek_reset_distribution():
    g = np.stack([o["desired_goal"] for o in gym_resets(ContinuousSeekEnv(d=2), N_RESETS)]).ravel()
    t = twin_resets(TorchContinuousSeek, N_RESETS, d=2)["desired_goal"].numpy().ravel()
    assert stats.ks_2samp(g, t).pvalue > 1e-3
    assert stats.kstest(t, stats.uniform(-5, 10).cdf).pvalue > 1e-3


def test_bit_flipping_reset_distribution():
    def codes(state, goal):  # the joint (state, goal) of 2 bits as one of 16 categories
        return (np.asarray(state) @ [1, 2]) * 4 + np.asarray(goal) @ [1, 2]
    g = np.array([codes(o["observation"], o["desired_goal"]) for o in gym_resets(BitFlippingEnv(n_bits=2), N_RESETS)])
    obs = twin_resets(TorchBitFlipping, N_RESETS, n_bits=2)
    t = codes(obs["observation"].numpy(), obs["desired_goal"].numpy())
    table = np.stack([np.bincount(g.astype(int), minlength=16), np.bincount(t.astype(int), minlength=16)])
    assert stats.chi2_contingency(table).pvalue > 1e-3
    assert stats.chisquare(table[1]).pvalue > 1e-3  # uniform over the 16


def goal_set_summaries(dgs: np.ndarray) -> dict[str, np.ndarray]:
    """Independent per-set statistics (goals of one set are dependent, clustered): number of goals, the first
    goal's coordinates, a random goal's coordinates, the mean l1 distance of the set's goals from its first."""
    gates, pts = split_goal_set(dgs)
    real = gates > 0
    assert np.all(real.sum(1) >= 1) and np.all(real[:, :-1] >= real[:, 1:])  # real goals first, then padding
    for k in range(len(dgs)):  # distinct goals
        p = pts[k][real[k]]
        assert len(np.unique(p, axis=0)) == len(p)
    spread = np.array([np.abs(pts[k][real[k]] - pts[k][0]).sum(1).mean() for k in range(len(dgs))])
    pick = np.array([(k * 7919) % real[k].sum() for k in range(len(dgs))])  # a fixed, arbitrary real goal
    other = pts[np.arange(len(dgs)), pick]
    return {"n": real.sum(1), "x0": pts[:, 0, 0], "y0": pts[:, 0, 1], "x": other[:, 0], "y": other[:, 1],
            "spread": spread, "all_x": pts[..., 0][real], "all_y": pts[..., 1][real]}


@pytest.mark.parametrize("env_cls,twin_cls", [(DriveSeekEnv, TorchDriveSeek), (NoisySeekEnv, TorchNoisySeek)])
def test_goal_set_reset_distribution(env_cls, twin_cls):
    g = goal_set_summaries(np.stack([o["desired_goal"] for o in gym_resets(env_cls(), N_RESETS)]))
    t = goal_set_summaries(twin_resets(twin_cls, N_RESETS)["desired_goal"].numpy())
    for key in ("n", "x0", "y0", "x", "y", "spread"):
        assert stats.ks_2samp(g[key], t[key]).pvalue > 1e-3, key
    if env_cls is DriveSeekEnv:  # n ~ U{1..200}; every grid point equally likely
        assert stats.kstest(t["n"], stats.randint(1, 201).cdf).pvalue > 1e-3
        cells = np.bincount(((t["all_x"] + 10) * 21 + t["all_y"] + 10).astype(int), minlength=441)
        assert stats.chisquare(cells).pvalue > 1e-3
