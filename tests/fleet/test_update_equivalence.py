"""One fleet update == the SB3-based agent's own train() on the same parameters and batch (float tolerance).

The SB3 agent runs its real ``train()``: its replay buffer is replaced by a stub that returns our batch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DDPG, TD3
from stable_baselines3.common.type_aliases import DictReplayBufferSamples

from rlcert.agents import ReenGAGEDDPG, ReenGAGETD3
from rlcert.envs.continuous_seek import ContinuousSeekEnv
from rlcert.fleet.export import load_member
from rlcert.fleet.replay import Batch
from rlcert.fleet.stacked import linears_of
from rlcert.fleet.td3 import FleetSettings, FleetTD3

D, B, ARCH = 3, 16, [32, 32]


class StubBuffer:
    """Stands in for the agent's replay buffer: ``sample`` returns the batch we hand it."""

    def __init__(self) -> None:
        self.batch = None

    def sample(self, batch_size, env=None):
        return self.batch


def make_agent(cls, seed, alpha, **kw):
    env = ContinuousSeekEnv(d=D)
    reduction = kw.pop("goal_reduction", "mean")  # passed explicitly: the agents' default is changing
    extra = {} if cls in (DDPG, TD3) else {"alpha": alpha, "goal_reduction": reduction}
    model = cls("MultiInputPolicy", env, seed=seed, learning_starts=0, buffer_size=10, gamma=0.9, tau=0.05,
                learning_rate=kw.pop("lr", 1e-3), policy_kwargs={"net_arch": ARCH}, **extra, **kw)
    # train() the networks a little differently from their targets, so the polyak step is visible
    with th.no_grad():
        for p in model.critic_target.parameters():
            p.add_(0.01 * th.randn_like(p))
        for p in model.actor_target.parameters():
            p.add_(0.01 * th.randn_like(p))
    model.replay_buffer = StubBuffer()
    model._setup_learn(1)  # a logger for train()
    return model


def random_batch(gen: np.random.Generator) -> dict[str, th.Tensor]:
    def t(x):
        return th.as_tensor(x, dtype=th.float32)

    s, g, s2 = (t(gen.uniform(-5, 5, (B, D))) for _ in range(3))
    g[: B // 4] = s2[: B // 4]  # some successful transitions (reward 0, masked out of the sparse term)
    r = -(np.abs(s2.numpy() - g.numpy()).max(axis=1) > 0.1).astype(np.float32)
    dones = (gen.uniform(size=B) < 0.2).astype(np.float32)
    return {"obs": {"achieved_goal": s, "desired_goal": g, "observation": s.clone()},
            "next": {"achieved_goal": s2, "desired_goal": g.clone(), "observation": s2.clone()},
            "actions": t(gen.uniform(-1, 1, (B, D))), "rewards": t(r).reshape(B, 1), "dones": t(dones).reshape(B, 1)}


def fleet_of(models, alphas, n_critics, policy_delay, noise, clip, goal_reduction="mean") -> FleetTD3:
    S = len(models)
    cfg = FleetSettings(obs_dim=D, goal_dim=D, action_dim=D, net_arch=ARCH, n_critics=n_critics,
                        policy_delay=policy_delay, goal_reduction=goal_reduction,
                        learning_rate=[m.learning_rate for m in models], alpha=list(alphas), gamma=[0.9] * S,
                        tau=[0.05] * S, target_policy_noise=[noise] * S, target_noise_clip=[clip] * S)
    fleet = FleetTD3(cfg)
    for k, m in enumerate(models):
        load_member(fleet, k, m)
    return fleet


def assert_member_equal(fleet: FleetTD3, k: int, model, atol=2e-6) -> None:
    C = fleet.cfg.n_critics
    nets = [(fleet.actor, k, model.actor.mu), (fleet.actor_target, k, model.actor_target.mu)]
    for j in range(C):
        nets += [(fleet.critic, k * C + j, model.critic.q_networks[j]),
                 (fleet.critic_target, k * C + j, model.critic_target.q_networks[j])]
    for net, idx, module in nets:
        for (w, b), lin in zip(net.layers(), linears_of(module), strict=True):
            th.testing.assert_close(w[idx].T, lin.weight, atol=atol, rtol=1e-5)
            th.testing.assert_close(b[idx, 0], lin.bias, atol=atol, rtol=1e-5)


CASES = [  # (agent classes per member, alphas, n_critics, policy_delay, target noise, clip, goal_reduction)
    ("ddpg_reengage", [ReenGAGEDDPG] * 3, [0.2, 0.5, 0.0], 1, 1, 0.1, 0.0, "mean"),
    ("ddpg_stock", [DDPG] * 2, [0.0, 0.0], 1, 1, 0.1, 0.0, "mean"),
    ("td3_reengage", [ReenGAGETD3] * 2, [0.3, 0.1], 2, 2, 0.2, 0.5, "mean"),
    ("td3_stock", [TD3] * 2, [0.0, 0.0], 2, 2, 0.2, 0.5, "mean"),
    ("ddpg_reengage_sum", [ReenGAGEDDPG] * 2, [0.2, 0.05], 1, 1, 0.1, 0.0, "sum"),
]


def run_case(case, fleet_alpha_factor: float = 1.0) -> None:
    _, classes, alphas, n_critics, delay, noise, clip, reduction = case
    th.manual_seed(0)
    models = [make_agent(cls, seed=10 + k, alpha=a, lr=[1e-3, 5e-4, 2e-3][k], goal_reduction=reduction)
              for k, (cls, a) in enumerate(zip(classes, alphas, strict=True))]
    fleet = fleet_of(models, [a * fleet_alpha_factor for a in alphas], n_critics, delay, noise, clip, reduction)
    gen = np.random.default_rng(1)
    moved = False
    for step in range(4):  # several steps: Adam moments, policy_delay and polyak all exercised
        batches = [random_batch(gen) for _ in models]
        noises = []
        for k, (m, b) in enumerate(zip(models, batches, strict=True)):
            m.replay_buffer.batch = DictReplayBufferSamples(b["obs"], b["actions"], b["next"], b["dones"],
                                                           b["rewards"], None)
            th.manual_seed(100 * step + k)  # the agent draws its target noise from the global generator
            noises.append(th.empty(B, D).normal_(0, noise).clamp(-clip, clip))
            th.manual_seed(100 * step + k)
            before = m.actor.mu[0].weight.detach().clone()
            m.train(gradient_steps=1, batch_size=B)
            moved = moved or not th.equal(before, m.actor.mu[0].weight)
        stack = Batch({k: th.stack([b["obs"][k] for b in batches]) for k in batches[0]["obs"]},
                      th.stack([b["actions"] for b in batches]),
                      {k: th.stack([b["next"][k] for b in batches]) for k in batches[0]["next"]},
                      th.stack([b["rewards"] for b in batches]), th.stack([b["dones"] for b in batches]))
        fleet.update(stack, target_noise=th.stack(noises) if clip > 0 else None)
        for k, m in enumerate(models):
            assert_member_equal(fleet, k, m)
    assert moved


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fleet_update_equals_agent_train(case):
    run_case(case)


def test_equivalence_check_can_fail():
    """A fleet whose alpha is 1.5x the agent's is detected (the comparison is not vacuous; note that Adam's
    first step is nearly sign(gradient), so the difference shows from the second step on)."""
    with pytest.raises(AssertionError):
        run_case(CASES[0], fleet_alpha_factor=1.5)
