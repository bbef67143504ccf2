"""The DQN / ReenGAGE-DQN fleet: one update == rlcert.agents.ReenGAGEDQN's own train() (and stock SB3 DQN's) at
full width (256), tight enough that a 1.5x alpha or a wrong target gamma fails; members bit-identical alone or
among others; SB3's constants (Adam eps, exploration schedule)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.utils import LinearSchedule

from rlcert.agents import ReenGAGEDQN
from rlcert.envs.bit_flipping import BitFlippingEnv, bit_flipping_reward
from rlcert.envs.torch_vector import TorchBitFlipping
from rlcert.fleet.adam import StackedAdam
from rlcert.fleet.config import Schedule
from rlcert.fleet.dqn import DQNSettings, FleetDQN
from rlcert.fleet.replay import Batch
from rlcert.fleet.stacked import linears_of, load_linear_stack
from rlcert.fleet.trainer import Fleet

NB, B, ARCH, GAMMA = 12, 64, [256, 256], 0.95


class StubBuffer:
    def __init__(self) -> None:
        self.batch = None

    def sample(self, batch_size, env=None):
        return self.batch


def make_agent(cls, seed: int, alpha: float, lr: float, softmax_tau: float):
    extra = {} if cls is DQN else {"alpha": alpha, "softmax_tau": softmax_tau, "goal_reduction": "mean"}
    model = cls("MultiInputPolicy", BitFlippingEnv(n_bits=NB), seed=seed, learning_starts=0, buffer_size=10,
                gamma=GAMMA, learning_rate=lr, policy_kwargs={"net_arch": ARCH}, **extra)
    with th.no_grad():  # the target differs from the online network
        for p in model.q_net_target.parameters():
            p.add_(0.02 * th.randn_like(p))
    model.replay_buffer = StubBuffer()
    model._setup_learn(1)
    return model


def random_batch(gen: np.random.Generator) -> dict:
    bits = [gen.integers(0, 2, (B, NB)).astype(np.float32) for _ in range(3)]
    s, g, s2 = bits
    g[: B // 3] = s2[: B // 3]  # successful transitions: reward 0, masked out of the sparse term
    r = bit_flipping_reward(s2, g).astype(np.float32)
    dones = (gen.uniform(size=B) < 0.2).astype(np.float32)
    t = th.as_tensor
    return {"obs": {"achieved_goal": t(s), "desired_goal": t(g), "observation": t(s).clone()},
            "next": {"achieved_goal": t(s2), "desired_goal": t(g).clone(), "observation": t(s2).clone()},
            "actions": t(gen.integers(0, NB, (B, 1))), "rewards": t(r).reshape(B, 1),
            "dones": t(dones).reshape(B, 1)}


def fleet_of(models, alphas, softmax_tau: float, gamma: float = GAMMA) -> FleetDQN:
    cfg = DQNSettings(obs_dim=NB, goal_dim=NB, action_dim=1, n_actions=NB, net_arch=ARCH, softmax_tau=softmax_tau,
                      learning_rate=[m.learning_rate for m in models], alpha=list(alphas),
                      gamma=[gamma] * len(models), tau=[1.0] * len(models))
    fleet = FleetDQN(cfg)
    for k, m in enumerate(models):
        load_linear_stack(fleet.q_net, k, linears_of(m.q_net))
        load_linear_stack(fleet.q_net_target, k, linears_of(m.q_net_target))
    return fleet


def assert_member_equal(fleet: FleetDQN, k: int, model) -> None:
    """Gradients (Adam's first moments) and parameters of member k equal the agent's, to float tolerance."""
    opt_state = model.policy.optimizer.state
    for i, ((w, b), lin) in enumerate(zip(fleet.q_net.layers(), linears_of(model.q_net), strict=True)):
        m_w, m_b = fleet.opt.exp_avg[2 * i][k].T, fleet.opt.exp_avg[2 * i + 1][k, 0]
        for mine, theirs in ((m_w, opt_state[lin.weight]["exp_avg"]), (m_b, opt_state[lin.bias]["exp_avg"])):
            th.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5 * float(theirs.abs().max()))
        th.testing.assert_close(w[k].T, lin.weight, rtol=1e-5, atol=1e-6)
        th.testing.assert_close(b[k, 0], lin.bias, rtol=1e-5, atol=1e-6)


CASES = [  # (id, agent class, alphas per member, softmax_tau)
    ("reengage_soft", ReenGAGEDQN, [1.0, 0.5], 0.5),
    ("reengage_hard", ReenGAGEDQN, [0.5, 2.0], 0.0),
    ("reengage_alpha0", ReenGAGEDQN, [0.0, 0.0], 0.5),
    ("stock_dqn", DQN, [0.0, 0.0], 0.5),
]


def run_case(case, alpha_factor: float = 1.0, gamma: float = GAMMA, steps: int = 3) -> None:
    _, cls, alphas, softmax_tau = case
    th.manual_seed(0)
    models = [make_agent(cls, seed=10 + k, alpha=a, lr=[1e-3, 5e-4][k], softmax_tau=softmax_tau)
              for k, a in enumerate(alphas)]
    fleet = fleet_of(models, [a * alpha_factor for a in alphas], softmax_tau, gamma)
    gen = np.random.default_rng(1)
    for _ in range(steps):
        batches = [random_batch(gen) for _ in models]
        for m, b in zip(models, batches, strict=True):
            m.replay_buffer.batch = DictReplayBufferSamples(b["obs"], b["actions"], b["next"], b["dones"],
                                                           b["rewards"], None)
            m.train(gradient_steps=1, batch_size=B)
        stack = Batch({k: th.stack([b["obs"][k] for b in batches]) for k in batches[0]["obs"]},
                      th.stack([b["actions"] for b in batches]).float(),
                      {k: th.stack([b["next"][k] for b in batches]) for k in batches[0]["next"]},
                      th.stack([b["rewards"] for b in batches]), th.stack([b["dones"] for b in batches]))
        out = fleet.update(stack)
        for k, m in enumerate(models):
            assert_member_equal(fleet, k, m)
            if alphas[k] > 0:  # the gradient term itself, as the agent logs it
                logged = m.logger.name_to_value["train/reengage_loss"]
                assert abs(float(out["reengage_loss"][k]) - logged) <= 1e-5 * abs(logged) + 1e-9


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fleet_dqn_update_equals_agent_train(case):
    run_case(case)


@pytest.mark.parametrize("change", ["alpha_1.5x", "gamma"])
def test_equivalence_check_fails_on_wrong_alpha_or_gamma(change):
    """Not vacuous: a fleet with 1.5x the agents' alpha, or a target gamma 0.98 instead of 0.95, fails the check
    (on the first step already: the comparison includes the gradients, not only Adam's nearly sign-like step)."""
    kw = {"alpha_factor": 1.5} if change == "alpha_1.5x" else {"gamma": 0.98}
    with pytest.raises(AssertionError):
        run_case(CASES[0], steps=1, **kw)


def test_sb3_constants_and_settings_from_the_agent():
    model = ReenGAGEDQN("MultiInputPolicy", BitFlippingEnv(n_bits=4), learning_starts=0, buffer_size=10,
                        exploration_fraction=0.3, exploration_initial_eps=0.9, exploration_final_eps=0.1,
                        policy_kwargs={"net_arch": [32]})
    adam = StackedAdam([th.zeros(1, 1)], th.ones(1))
    assert model.policy.optimizer.defaults["eps"] == adam.eps and model.policy.optimizer.defaults["betas"] == adam.betas
    s = FleetDQN.settings_from_agent(model, TorchBitFlipping([None], n_bits=4), 2, "fp32")
    assert s.net_arch == [32] and s.n_actions == 4 and s.alpha == [model.alpha] * 2
    assert (s.softmax_tau, s.max_grad_norm, s.target_update_interval) == (model.softmax_tau, model.max_grad_norm,
                                                                           model.target_update_interval)
    assert s.learning_rate == [model.learning_rate] * 2 and s.tau == [model.tau] * 2 and s.gamma == [model.gamma] * 2
    sb3 = LinearSchedule(0.9, 0.1, 0.3)
    for p in np.linspace(1.0, 0.0, 23):
        assert s.exploration_rate(p) == sb3(p)
    stock = FleetDQN.settings_from_agent(DQN("MultiInputPolicy", BitFlippingEnv(n_bits=4), buffer_size=10),
                                         TorchBitFlipping([None], n_bits=4), 1, "fp32")
    assert stock.alpha == [0.0] and stock.net_arch == [64, 64]


def make_fleet(seeds, width: int = 256, total: int = 60) -> Fleet:
    settings = DQNSettings(obs_dim=6, goal_dim=6, action_dim=1, n_actions=6, net_arch=[width, width],
                           softmax_tau=0.5, exploration_initial_eps=1.0, exploration_final_eps=0.1,
                           exploration_fraction=0.5, target_update_interval=10, learning_rate=[1e-3] * len(seeds),
                           alpha=[1.0] * len(seeds), gamma=[0.95] * len(seeds), tau=[0.5] * len(seeds))
    schedule = Schedule(learning_starts=20, train_freq=2, gradient_steps=1, batch_size=16, buffer_size=total + 6,
                        n_sampled_goal=4, her=True)
    return Fleet(settings, schedule, seeds, TorchBitFlipping, {"n_bits": 6}, FleetDQN)


def test_member_alone_equals_member_among_others_at_width_256():
    alone, crowd = make_fleet([3]), make_fleet([0, 1, 2, 3])
    alone.learn(48)
    crowd.learn(48)
    assert alone.agent.n_updates == (48 - 20) // 2
    pairs = list(zip(alone.agent.q_net.parameters(), crowd.agent.q_net.parameters(), strict=True))
    pairs += list(zip(alone.agent.q_net_target.parameters(), crowd.agent.q_net_target.parameters(), strict=True))
    for a, c in pairs:
        assert th.equal(a[0], c[3])
    assert not all(th.equal(a[0], c[2]) for a, c in pairs)


def test_resume_from_state_equals_uninterrupted_run():
    straight = make_fleet([0, 1], width=16)
    straight.learn(45)
    first = make_fleet([0, 1], width=16)
    first.total_timesteps = 45  # interrupted at step 33 of a 45-step run (the exploration schedule knows the total)
    while first.num_timesteps < 33:
        first.step()
    second = make_fleet([0, 1], width=16)
    second.load_state_dict(first.state_dict())
    second.learn(45)
    for a, b in zip(straight.agent.q_net.parameters(), second.agent.q_net.parameters(), strict=True):
        assert th.equal(a, b)
    assert second.agent.exploration_rate == straight.agent.exploration_rate


def test_exploration_schedule_and_evaluation():
    fleet = make_fleet([0, 1], width=16)
    fleet.learn(30)
    assert fleet.agent.exploration_rate == pytest.approx(1.0 + 0.5 * (0.1 - 1.0) / 0.5)  # progress 0.5 of 30 steps
    fleet.learn(60)
    assert fleet.agent.exploration_rate == 0.1
    stats = fleet.evaluate(episodes=5)
    assert stats["successes_ever"].shape == (2,) and int(stats["successes_ever"].max()) <= 5
