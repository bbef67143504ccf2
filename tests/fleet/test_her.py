"""HER "future" relabelling: the fleet's goal distribution equals SB3's HerReplayBuffer (chi-square, two-sample),
and the test would notice an off-by-one ("strictly future") relabelling."""

from __future__ import annotations

import numpy as np
import torch as th
from scipy.stats import chi2_contingency
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv

from rlcert.envs.continuous_seek import ContinuousSeekEnv
from rlcert.fleet.replay import EpisodeReplay

T, EPISODES, BATCH, ROUNDS = 5, 6, 64, 150


def sb3_pairs() -> tuple[np.ndarray, float]:
    """(step t, relabel offset j - t) of SB3's virtual samples, and SB3's fraction of relabelled samples."""
    np.random.seed(0)
    env = DummyVecEnv([lambda: ContinuousSeekEnv(d=2, max_steps=T)])
    buf = HerReplayBuffer(1000, env.observation_space, env.action_space, env=env, n_sampled_goal=4,
                          goal_selection_strategy="future")
    for ep in range(EPISODES):
        for t in range(T):
            def o(step, ep=ep):
                return {"observation": np.array([[step, ep]], np.float32),
                        "achieved_goal": np.array([[step, ep]], np.float32),
                        "desired_goal": np.array([[100.0, ep]], np.float32)}
            done = np.array([t == T - 1])
            buf.add(o(t), o(t + 1), np.zeros((1, 2), np.float32), np.array([-1.0]), done,
                    [{"TimeLimit.truncated": bool(done[0])}])
    pairs, n_virtual, n_all = [], 0, 0
    for _ in range(ROUNDS):
        b = buf.sample(BATCH)
        t = b.observations["achieved_goal"][:, 0].numpy()
        g = b.observations["desired_goal"][:, 0].numpy()
        virtual = g < 100
        assert np.array_equal(b.next_observations["desired_goal"].numpy(), b.observations["desired_goal"].numpy())
        pairs.append(np.stack([t[virtual], g[virtual] - (t[virtual] + 1)], 1))
        n_virtual += virtual.sum()
        n_all += len(t)
    return np.concatenate(pairs).astype(int), n_virtual / n_all


def fleet_pairs(strictly_future: bool = False) -> tuple[np.ndarray, float, EpisodeReplay]:
    rep = EpisodeReplay(2, 1000, T, 2, 2, 2, n_sampled_goal=4)
    for ep in range(EPISODES):
        def o(step, ep=ep):
            x = th.tensor([[step, ep]] * 2, dtype=th.float32)
            return {"observation": x, "achieved_goal": x, "desired_goal": th.tensor([[100.0, ep]] * 2)}
        rep.start_episode(o(0))
        for t in range(T):
            rep.add(th.zeros(2, 2), th.full((2,), -1.0), o(t + 1), t == T - 1)
    gens = [th.Generator().manual_seed(5), th.Generator().manual_seed(6)]
    pairs, n_virtual, n_all = [], 0, 0
    for _ in range(ROUNDS):
        ep, t, future = rep.sample_indices(BATCH, gens)
        if strictly_future:  # the wrong variant: offsets 1..T-1-t (where possible)
            future = th.where(future >= 0, th.minimum(future + 1, th.full_like(future, T - 1)), future)
        virtual = future[0] >= 0
        pairs.append(np.stack([t[0][virtual].numpy(), (future[0] - t[0])[virtual].numpy()], 1))
        n_virtual += int(virtual.sum())
        n_all += BATCH
    return np.concatenate(pairs), n_virtual / n_all, rep


def contingency_p(a: np.ndarray, b: np.ndarray) -> float:
    cells = sorted({tuple(x) for x in a} | {tuple(x) for x in b})
    table = np.array([[np.sum((a == c).all(1)) for c in cells], [np.sum((b == c).all(1)) for c in cells]])
    return float(chi2_contingency(table)[1])


def test_future_goal_distribution_matches_sb3():
    ours, frac_ours, _ = fleet_pairs()
    theirs, frac_theirs = sb3_pairs()
    assert frac_ours == frac_theirs == int(0.8 * BATCH) / BATCH
    assert (ours[:, 1] >= 0).all() and (ours.sum(1) <= T - 1).all()
    assert contingency_p(ours, theirs) > 1e-3
    wrong, _, _ = fleet_pairs(strictly_future=True)
    assert contingency_p(wrong, theirs) < 1e-6


def test_relabelled_rewards_recomputed_and_real_rewards_kept():
    _, _, rep = fleet_pairs()
    env = ContinuousSeekEnv(d=2)
    gens = [th.Generator().manual_seed(1), th.Generator().manual_seed(2)]

    def reward_fn(ag, g):
        return th.as_tensor(env.compute_reward(ag.numpy(), g.numpy(), None), dtype=th.float32)

    b = rep.sample(BATCH, gens, reward_fn)
    n_virtual = int(0.8 * BATCH)
    want = reward_fn(b.next_observations["achieved_goal"][:, :n_virtual], b.observations["desired_goal"][:, :n_virtual])
    assert th.equal(b.rewards[:, :n_virtual, 0], want) and (want == 0).any()
    assert (b.rewards[:, n_virtual:] == -1).all()  # stored rewards
    assert (b.observations["desired_goal"][:, n_virtual:, 0] == 100).all()
    assert th.equal(b.next_observations["achieved_goal"][..., 0], b.observations["achieved_goal"][..., 0] + 1)
