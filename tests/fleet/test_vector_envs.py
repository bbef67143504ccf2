"""The torch-vectorised envs have the gymnasium envs' dynamics, rewards and success latch on the same actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from rlcert.envs.bit_flipping import BitFlippingEnv
from rlcert.envs.continuous_seek import ContinuousSeekEnv
from rlcert.fleet.vector_envs import TorchBitFlipping, TorchContinuousSeek


def gens(n: int, seed: int = 0) -> list[th.Generator]:
    return [th.Generator().manual_seed(seed + i) for i in range(n)]


@pytest.mark.parametrize("d", [1, 4])
def test_continuous_seek_matches_gymnasium(d):
    n, rng = 6, np.random.default_rng(d)
    venv = TorchContinuousSeek(gens(n), d=d, max_steps=10)
    obs = venv.reset()
    assert obs["desired_goal"].abs().max() <= 5.0
    envs = [ContinuousSeekEnv(d=d, max_steps=10) for _ in range(n)]
    # goals reachable in a few steps for half the copies, so that rewards 0 and the latch are exercised
    goals = obs["desired_goal"].clone()
    goals[: n // 2] = th.as_tensor(rng.integers(-2, 3, (n // 2, d)), dtype=th.float32) * 0.75
    venv.goal = goals.clone()
    for i, e in enumerate(envs):
        e.reset(seed=i)
        e._goal = goals[i].double().numpy()
    hits = 0
    for t in range(10):
        a = rng.uniform(-1.4, 1.4, (n, d)).astype(np.float32)
        if t % 3 == 0:
            a[: n // 2] = np.clip((goals[: n // 2].numpy() - venv.state[: n // 2].numpy()), -1, 1)
        tobs, treward, ttrunc, tsucc = venv.step(th.as_tensor(a))
        for i, e in enumerate(envs):
            gobs, greward, term, trunc, info = e.step(a[i])
            for key in ("observation", "achieved_goal", "desired_goal"):
                np.testing.assert_array_equal(tobs[key][i].numpy(), gobs[key])
            assert float(treward[i]) == greward
            assert bool(tsucc[i]) == bool(info["is_success"])
            assert ttrunc == trunc and not term
            hits += greward == 0.0
        np.testing.assert_array_equal(venv.compute_reward(tobs["achieved_goal"], tobs["desired_goal"]).numpy(),
                                      envs[0].compute_reward(tobs["achieved_goal"].numpy(),
                                                             tobs["desired_goal"].numpy(), None))
    assert hits > 0


def test_continuous_seek_goals_uniform_and_per_copy():
    venv = TorchContinuousSeek(gens(2), d=3)
    goals = th.stack([venv.reset()["desired_goal"] for _ in range(2000)])  # (2000, 2, 3)
    flat = goals.reshape(-1).numpy()
    assert abs(flat.mean()) < 0.15 and abs(flat.var() - 100 / 12) < 0.5  # U[-5, 5]
    again = TorchContinuousSeek([th.Generator().manual_seed(1)], d=3)  # copy 1 alone: same goal sequence
    assert th.equal(again.reset()["desired_goal"][0], goals[0, 1])


def test_bit_flipping_matches_gymnasium():
    n, nb, rng = 5, 6, np.random.default_rng(0)
    venv = TorchBitFlipping(gens(n), n_bits=nb)
    obs = venv.reset()
    envs = [BitFlippingEnv(n_bits=nb) for _ in range(n)]
    for i, e in enumerate(envs):
        e.reset(seed=i)
        e._state, e._goal = obs["observation"][i].numpy().copy(), obs["desired_goal"][i].numpy().copy()
        e._success = bool(np.all(e._state == e._goal))
    hits = 0
    for _ in range(nb):
        # flip a differing bit most of the time, so that some copies reach their goal
        diff = (venv.state != venv.goal).float() + 1e-3 * th.rand(n, nb, generator=th.Generator().manual_seed(3))
        a = diff.argmax(dim=1) if rng.uniform() < 0.8 else th.as_tensor(rng.integers(0, nb, n))
        tobs, treward, ttrunc, tsucc = venv.step(a)
        for i, e in enumerate(envs):
            gobs, greward, term, trunc, info = e.step(int(a[i]))
            np.testing.assert_array_equal(tobs["observation"][i].numpy(), gobs["observation"])
            assert float(treward[i]) == greward and bool(tsucc[i]) == bool(info["is_success"])
            assert ttrunc == trunc
            hits += greward == 0.0
    assert hits > 0
    with pytest.raises(ValueError, match="bit indices"):
        venv.step(th.full((n,), nb))
