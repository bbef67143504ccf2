"""Short learning test: DDPG+HER and ReenGAGE (alpha = 0.2) both reach >= 90 % success on ContinuousSeek d=2.

Budget and why: d = 2 is the smallest ContinuousSeek where goal-reaching must be learned (a random state hits the
eps-box with probability ~1/2500). With 64x64 nets, batch 64, lr 1e-3, gamma 0.95, noise 0.1 and HER k=4, we
measured (1 thread, seed 2, 100 evaluation episodes): DDPG+HER 0.89 / 0.92 / 1.0 success after 1500 / 2000 /
2500 steps, ReenGAGE 0.59 / 0.89 / 0.92 after 1000 / 1500 / 3000 steps. Other seeds vary (seed 1: DDPG 0.79 after
3000 steps), so the seed is fixed and the budget is 4000 steps (~30-60 s per agent on one CPU thread), taking the
best of the evaluations every 500 steps. The assertion fails if either agent stops learning (e.g. a wrong sign
or a missing detach in the ReenGAGE term, which we saw diverge).
"""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DDPG, HerReplayBuffer
from stable_baselines3.common.noise import NormalActionNoise

import rlcert  # noqa: F401
from rlcert.agents import ReenGAGEDDPG
from rlcert.agents.callbacks import evaluate


def best_success(cls, **kw) -> list[float]:
    th.set_num_threads(1)
    model = cls("MultiInputPolicy", gym.make("rlcert/ContinuousSeek-v0", d=2), replay_buffer_class=HerReplayBuffer,
                learning_starts=200, batch_size=64, gamma=0.95, learning_rate=1e-3,
                action_noise=NormalActionNoise(np.zeros(2), 0.1 * np.ones(2)),
                policy_kwargs=dict(net_arch=[64, 64]), seed=2, **kw)
    rates = []
    for _ in range(8):
        model.learn(500, reset_num_timesteps=False)
        rates.append(evaluate(model, gym.make("rlcert/ContinuousSeek-v0", d=2), 100, seed=123)["success_ever"])
        if rates[-1] >= 0.9:
            break
    return rates


@pytest.mark.slow
@pytest.mark.parametrize("cls, kw", [(DDPG, {}), (ReenGAGEDDPG, {"alpha": 0.2})], ids=["DDPG+HER", "ReenGAGE"])
def test_reaches_90_percent_success(cls, kw):
    rates = best_success(cls, **kw)
    assert max(rates) >= 0.9, rates
