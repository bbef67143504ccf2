"""Members are independent (same seed => bit-identical member whatever its companions), resume == no interruption,
and the schedule (random warm-up, learning_starts, train_freq, gradient_steps) is SB3's."""

from __future__ import annotations

import pytest
import torch as th

from rlcert.fleet.config import read_config
from rlcert.fleet.trainer import Fleet


def make_fleet(config: dict, seeds: list[int]) -> Fleet:
    settings, schedule, family, env_cls = read_config(config, len(seeds))
    return Fleet(settings, schedule, seeds, env_cls, config["env_kwargs"], family)


def member_params(fleet: Fleet, k: int) -> list[th.Tensor]:
    return [p[k] for net in fleet.agent.modules().values() for p in net.parameters()]


@pytest.mark.parametrize("algo", ["ReenGAGEDDPG", "ReenGAGETD3", "DDPG", "SAC", "ReenGAGESAC"])
def test_member_alone_equals_member_among_others_at_full_width(tiny, tmp_path, algo):
    """Seed 3 trained alone (S = 1) and among others ends bit-identical, at width 256 (a one-member batched GEMV
    rounds differently: the networks' one-output layers must not depend on S)."""
    extra = {"action_noise": None} if "SAC" in algo else {}
    config = tiny(tmp_path, algo=algo, policy_kwargs={"net_arch": [256, 256]}, batch_size=32, **extra)
    alone = make_fleet(config, [3])
    crowd = make_fleet(config, [0, 3, 7])
    alone.learn(35)
    crowd.learn(35)
    assert alone.agent.n_updates == 35 - 25
    for a, c in zip(member_params(alone, 0), member_params(crowd, 1), strict=True):
        assert th.equal(a, c)
    # and the check can fail: a different member of the crowd differs
    assert not all(th.equal(a, c) for a, c in zip(member_params(alone, 0), member_params(crowd, 2), strict=True))


def test_member_alone_equals_member_among_others_at_table_sizes(tiny, tmp_path):
    """The same at ContinuousSeek d = 10 with batch 512 (Table G.2's ReenGAGE size), 30 updates: matmul shapes that
    depend on the other members (e.g. each member's masked rows padded to the crowd's largest count) fail this."""
    config = tiny(tmp_path, algo="ReenGAGEDDPG", policy_kwargs={"net_arch": [256, 256]}, batch_size=512,
                  learning_starts=100, total=200)
    config["env_kwargs"] = {"d": 10, "max_steps": 10}
    alone = make_fleet(config, [3])
    crowd = make_fleet(config, [0, 1, 3, 7, 9])
    alone.learn(130)
    crowd.learn(130)
    for a, c in zip(member_params(alone, 0), member_params(crowd, 2), strict=True):
        assert th.equal(a, c)


@pytest.mark.parametrize("algo", ["ReenGAGEDDPG", "ReenGAGESAC"])
def test_resume_from_state_equals_uninterrupted_run(tiny, tmp_path, algo):
    config = tiny(tmp_path, algo=algo, **({"action_noise": None} if "SAC" in algo else {}))
    straight = make_fleet(config, [0, 1])
    straight.learn(45)
    first = make_fleet(config, [0, 1])
    first.learn(32)  # stop mid-episode, with the training of step 37 done
    state = first.state_dict()
    second = make_fleet(config, [0, 1])
    second.load_state_dict(state)
    second.learn(45)
    for a, b in zip(member_params(straight, 1), member_params(second, 1), strict=True):
        assert th.equal(a, b)
    if "SAC" in algo:  # the tuned entropy coefficient is part of the state
        assert th.equal(straight.agent.log_ent_coef, second.agent.log_ent_coef)


@pytest.mark.parametrize("train_freq,gradient_steps,starts,total", [(1, 1, 25, 60), (4, 2, 25, 60), (3, -1, 10, 31)])
def test_schedule_counts_updates_as_sb3(tiny, tmp_path, train_freq, gradient_steps, starts, total):
    """The number of gradient steps equals stock SB3 DDPG+HER's ``_n_updates`` for the same schedule."""
    from stable_baselines3 import DDPG, HerReplayBuffer

    from rlcert.envs.continuous_seek import ContinuousSeekEnv

    config = tiny(tmp_path, algo="DDPG", learning_starts=starts, train_freq=train_freq,
                  gradient_steps=gradient_steps)
    fleet = make_fleet(config, [0])
    fleet.learn(total)
    sb3 = DDPG("MultiInputPolicy", ContinuousSeekEnv(d=3, max_steps=5), learning_starts=starts,
               train_freq=train_freq, gradient_steps=gradient_steps, batch_size=8, buffer_size=100,
               replay_buffer_class=HerReplayBuffer, policy_kwargs={"net_arch": [8]}, seed=0)
    sb3.learn(total)
    assert sb3._n_updates > 0
    assert fleet.agent.n_updates == sb3._n_updates


def test_warmup_actions_are_uniform_then_actor(tiny, tmp_path):
    config = tiny(tmp_path, total=2000, learning_starts=2000, action_noise=None)
    fleet = make_fleet(config, [0])
    fleet.learn(2000)
    acts = fleet.replay.actions[0, : 2000 // 5].reshape(-1)
    assert abs(float(acts.mean())) < 0.03 and abs(float(acts.var()) - 1 / 3) < 0.02  # U[-1, 1]
    config = tiny(tmp_path, learning_starts=0, action_noise=None)
    fleet = make_fleet(config, [0])
    fleet.obs = fleet.env.reset()
    fleet.replay.start_episode(fleet.obs)
    expected = fleet.agent.act({k: v.unsqueeze(1) for k, v in fleet.obs.items()})[:, 0]
    fleet.step()
    assert th.equal(fleet.replay.actions[0, 0, 0], expected[0])
