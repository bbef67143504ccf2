"""The Multi-ReenGAGE gate penalty of a default-constructed agent against an independent computation.

The penalty is recomputed from finite differences of the agent's own networks (dQ/db, dV'/db) and the closed-form
reward gradient of R = sum_i b_i^2 R_item (2 b_i R_item), reduced as the published convention says: the mean over
the batch **and all n_max gates** (padding gates count, with a zero difference). A default that sums over the gates
(n_max times larger) or a mean over the real gates only (n_max / n_real times larger per row) fails here.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

try:  # works whether or not tests/agents is a package
    from multi_helpers import SMALL, goal_set_batch, noisy_env
except ImportError:  # pragma: no cover
    from .multi_helpers import SMALL, goal_set_batch, noisy_env

from rlcert.agents.deepsets import DeepSetsTD3Policy
from rlcert.agents.loops import td3_next_value
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG, MultiReenGAGETD3
from rlcert.envs import item_rewards

N_MAX, GAMMA = 6, 0.9


def _fd(fn, gates: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central differences of fn (B, 1) with respect to every gate; rows are independent."""
    out = torch.zeros_like(gates)
    for i in range(gates.shape[1]):
        plus, minus = gates.clone(), gates.clone()
        plus[:, i] += eps
        minus[:, i] -= eps
        out[:, i] = (fn(plus).reshape(-1) - fn(minus).reshape(-1)) / (2 * eps)
    return out


def _batch(seed: int = 0) -> SimpleNamespace:
    obs = goal_set_batch(batch=5, n_max=N_MAX, seed=seed)
    nxt = {**goal_set_batch(batch=5, n_max=N_MAX, seed=seed + 1), "desired_goal": obs["desired_goal"]}
    g = torch.Generator().manual_seed(seed)
    return SimpleNamespace(observations=obs, next_observations=nxt,
                           actions=torch.rand(5, 2, generator=g, dtype=torch.float64) * 2 - 1,
                           rewards=torch.rand(5, 1, generator=g, dtype=torch.float64),
                           dones=torch.tensor([[0.0], [1.0], [0.0], [0.0], [1.0]], dtype=torch.float64))


@pytest.mark.parametrize("cls", [MultiReenGAGEDDPG, MultiReenGAGETD3])
def test_default_gate_penalty_is_the_mean_over_batch_and_all_n_max_gates(cls):
    model = cls(DeepSetsTD3Policy, noisy_env(N_MAX), alpha=0.1, seed=0,
                policy_kwargs=dict(SMALL))  # goal_reduction left at its default
    model.policy.double()
    with torch.no_grad():  # target networks differ from the online ones, so that a mix-up would show
        for p in [*model.critic_target.parameters(), *model.actor_target.parameters()]:
            p.add_(0.1 * torch.randn_like(p))
    data = _batch()
    obs, nxt = data.observations, data.next_observations
    gates = obs["desired_goal"][..., 0]
    real = gates != 0
    assert real.sum(1).min() < N_MAX and real.sum(1).max() >= 1  # every row has padding, so the divisor matters
    noise = torch.zeros(5, 2, dtype=torch.float64)
    next_value = td3_next_value(model, nxt, noise)
    _, _, extra = model.critic_loss_terms(data, GAMMA, next_value)

    with torch.no_grad():
        dv = _fd(next_value, nxt["desired_goal"][..., 0])
        r_item = torch.as_tensor(item_rewards(nxt["achieved_goal"].numpy(), nxt["desired_goal"].numpy()))
        target = 2.0 * nxt["desired_goal"][..., 0] * r_item + GAMMA * (1 - data.dones) * dv
        expected = 0.0
        for j in range(len(model.critic(obs, data.actions, gates))):
            dq = _fd(lambda b, j=j: model.critic(obs, data.actions, b)[j], gates)
            assert torch.all(dq[~real].abs() < 1e-8) and torch.all(target[~real] == 0)  # padding: zero difference
            expected += float(((dq - target) ** 2).sum()) / (5 * N_MAX)  # mean over batch x all n_max gates
    assert expected > 1e-6
    np.testing.assert_allclose(float(extra.detach()), expected, rtol=1e-5)

