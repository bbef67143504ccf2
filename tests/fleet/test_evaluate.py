"""The fleet's per-member evaluation equals an ordinary gymnasium rollout of the exported member on the same goals."""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3 import DDPG

from rlcert.envs.continuous_seek import ContinuousSeekEnv
from rlcert.fleet.config import read_config
from rlcert.fleet.export import export_member
from rlcert.fleet.trainer import Fleet


def seek_policy(fleet: Fleet, k: int, gain: float) -> None:
    """Member k's actor := tanh(gain * (g - s)) (hand-built 2 x 4 ReLU net, d = 2), so success is partial."""
    a = fleet.agent.actor
    with th.no_grad():
        for w, b in a.layers():
            w[k].zero_()
            b[k].zero_()
        w0, w1, w2 = a.weight0[k], a.weight1[k], a.weight2[k]  # input = (ag, g, obs), 6 wide
        for i in range(2):
            w0[2 + i, 2 * i], w0[i, 2 * i] = 1.0, -1.0  # unit 2i: relu(g_i - s_i)
            w0[2 + i, 2 * i + 1], w0[i, 2 * i + 1] = -1.0, 1.0  # unit 2i+1: relu(s_i - g_i)
        w1.copy_(th.eye(4))
        for i in range(2):
            w2[2 * i, i], w2[2 * i + 1, i] = gain, -gain


def test_fleet_evaluation_equals_gymnasium_rollout(tiny, tmp_path):
    config = tiny(tmp_path, algo="DDPG")
    config["env_kwargs"] = {"d": 2, "max_steps": 5}
    config["algo_kwargs"]["policy_kwargs"] = {"net_arch": [4, 4]}
    settings, schedule, family, env_cls = read_config(config, 2)
    fleet = Fleet(settings, schedule, [0, 1], env_cls, config["env_kwargs"], family)
    seek_policy(fleet, 0, 2.0)
    seek_policy(fleet, 1, 0.6)
    episodes = 40
    states = [g.get_state() for g in fleet.eval_generators]
    stats = fleet.evaluate(episodes)
    assert 0 < int(stats["successes_ever"].min()) and int(stats["successes_ever"].max()) < episodes, stats
    env = ContinuousSeekEnv(d=2, max_steps=5)
    for k in range(2):
        model = DDPG.load(export_member(fleet.agent, k, DDPG, env, tmp_path / f"m{k}.zip"))
        gen = th.Generator()
        gen.set_state(states[k])
        hits, returns = [], []
        for _ in range(episodes):
            obs, _ = env.reset()
            goal = (5.0 * (2 * th.rand(2, generator=gen, dtype=th.float64) - 1)).float()
            env._goal = goal.double().numpy()
            obs["desired_goal"] = goal.numpy()
            total, done, info = 0.0, False, {}
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, _, done, info = env.step(action)
                total += reward
            hits.append(info["is_success"])
            returns.append(total)
        assert int(stats["successes_ever"][k]) == sum(hits)
        assert abs(float(stats["mean_return"][k]) - np.mean(returns)) < 1e-5
