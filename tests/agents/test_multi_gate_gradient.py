"""Gate gradients of Multi-ReenGAGE against finite differences and the environment's reward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

try:  # works whether or not tests/agents is a package
    from multi_helpers import SMALL, goal_set_batch, noisy_env
except ImportError:  # pragma: no cover
    from .multi_helpers import SMALL, goal_set_batch, noisy_env

from rlcert.agents.deepsets import DeepSetsTD3Policy
from rlcert.agents.goal_gradient import critic_goal_gradient, target_and_goal_gradient
from rlcert.agents.loops import sac_next_value, td3_next_value
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG, reward_gate_gradient
from rlcert.envs import goal_set_reward, item_rewards


def target_gradient(value_fn, gates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(value (B, 1), total d value / d gates (B, n)), both detached: the agents' target code with R = 0, gamma = 1."""
    zeros = torch.zeros(gates.shape[0], 1, dtype=gates.dtype)
    return target_and_goal_gradient(value_fn, gates, zeros, zeros, 1.0)


def _model(share_encoder: bool = True, through_target_actor: bool = True) -> MultiReenGAGEDDPG:
    model = MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy_env(), alpha=0.1, seed=0,
                              through_target_actor=through_target_actor,
                              policy_kwargs={**SMALL, "share_encoder": share_encoder})
    model.policy.double()
    # make the target networks differ from the online ones, so that a mix-up would show
    with torch.no_grad():
        for p in [*model.critic_target.parameters(), *model.actor_target.parameters()]:
            p.add_(0.1 * torch.randn_like(p))
    return model


def _fd_gate_gradient(fn, gates: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central differences of sum_rows fn(b) with respect to every gate (rows are independent)."""
    out = torch.zeros_like(gates)
    for i in range(gates.shape[1]):
        plus, minus = gates.clone(), gates.clone()
        plus[:, i] += eps
        minus[:, i] -= eps
        out[:, i] = (fn(plus).reshape(-1) - fn(minus).reshape(-1)) / (2 * eps)
    return out


def test_critic_gate_gradient_matches_finite_differences():
    model, obs = _model(), goal_set_batch()
    actions = torch.rand(4, 2, dtype=torch.float64) * 2 - 1
    gates = obs["desired_goal"][..., 0].clone().requires_grad_(True)
    q = model.critic(obs, actions, gates)[0]
    grad = critic_goal_gradient([q], gates)[0]
    assert grad.requires_grad  # create_graph: the gate loss can train the critic
    with torch.no_grad():
        fd = _fd_gate_gradient(lambda b: model.critic(obs, actions, b)[0], obs["desired_goal"][..., 0])
    torch.testing.assert_close(grad.detach(), fd, atol=1e-6, rtol=1e-5)
    padding = obs["desired_goal"][..., 0] == 0
    assert torch.all(grad[padding] == 0) and torch.all(grad[~padding] != 0)


@pytest.mark.parametrize("share_encoder", [True, False])
def test_target_gate_gradient_is_total_derivative_through_target_actor(share_encoder):
    model, obs = _model(share_encoder), goal_set_batch(seed=1)
    noise = torch.zeros(4, 2, dtype=torch.float64)
    gates = obs["desired_goal"][..., 0]
    value, grad = target_gradient(lambda b: td3_next_value(model, obs, noise)(b), gates)
    assert not grad.requires_grad and not value.requires_grad
    with torch.no_grad():
        fd = _fd_gate_gradient(lambda b: td3_next_value(model, obs, noise)(b), gates)
    torch.testing.assert_close(grad, fd, atol=1e-6, rtol=1e-5)
    # The path through the target actor matters: the partial derivative (action held fixed) differs.
    with torch.no_grad():
        fixed_action = model.actor_target(obs)
    partial = _fd_gate_gradient(lambda b: model.critic_target(obs, fixed_action, b)[0], gates)
    assert (grad - partial).abs().max() > 1e-4


@pytest.mark.parametrize("share_encoder", [True, False])
def test_partial_target_gate_gradient_goes_through_target_critic_only(share_encoder):
    """through_target_actor=False ("partial", the authors' runs): d/db Q'(s', a', b) with a' = pi'(s', b) held fixed."""
    model, obs = _model(share_encoder, through_target_actor=False), goal_set_batch(seed=1)
    noise = torch.full((4, 2), 0.05, dtype=torch.float64)
    gates = obs["desired_goal"][..., 0]
    value, grad = target_gradient(td3_next_value(model, obs, noise), gates)
    with torch.no_grad():
        fixed_action = (model.actor_target(obs) + noise).clamp(-1, 1)
        fd = _fd_gate_gradient(lambda b: model.critic_target(obs, fixed_action, b)[0], gates)
        torch.testing.assert_close(value, model.critic_target(obs, fixed_action)[0])
    torch.testing.assert_close(grad, fd, atol=1e-6, rtol=1e-5)
    total = target_gradient(td3_next_value(_model(share_encoder), obs, noise), gates)[1]
    assert (grad - total).abs().max() > 1e-4  # the two options really differ
    assert torch.all(grad[gates == 0] == 0)


def test_reward_gate_gradient_is_twice_item_reward_and_matches_env_reward():
    rng = np.random.default_rng(3)
    obs = goal_set_batch(batch=64, n_max=5, seed=3)
    dg = obs["desired_goal"].numpy().copy()
    ag = np.where(rng.random((64, 1)) < 0.5, dg[:, 0, 1:], rng.integers(-5, 6, size=(64, 2))).astype(np.float64)
    items = item_rewards(ag, dg)
    assert items.sum() > 10  # the check below is not vacuous
    grad = reward_gate_gradient(torch.tensor(items, dtype=torch.float64), torch.tensor(dg[..., 0]))
    np.testing.assert_array_equal(grad.numpy(), 2 * items)
    # Independent check: central differences of the environment's scalar reward R = sum b^2 R_item at b_i = 1.
    eps = 1e-3
    for i in range(5):
        real = dg[:, i, 0] == 1
        plus, minus = dg.copy(), dg.copy()
        plus[real, i, 0] += eps
        minus[real, i, 0] -= eps
        fd = (goal_set_reward(ag, plus) - goal_set_reward(ag, minus)) / (2 * eps)
        np.testing.assert_allclose(fd[real], grad.numpy()[real, i], atol=1e-9)


def test_sac_target_gate_gradient_through_reparameterised_action_and_entropy():
    from rlcert.agents.deepsets import DeepSetsSACPolicy
    from rlcert.agents.multi_reengage import MultiReenGAGESAC

    model = MultiReenGAGESAC(DeepSetsSACPolicy, noisy_env(), alpha=0.1, seed=0, policy_kwargs=SMALL)
    model.policy.double()
    obs, gates = goal_set_batch(seed=8), goal_set_batch(seed=8)["desired_goal"][..., 0]

    def value(b, ent_coef=0.5):
        torch.manual_seed(0)  # the same reparameterisation noise for every evaluation
        return sac_next_value(model, obs, torch.tensor(ent_coef, dtype=torch.float64))(b)

    _, grad = target_gradient(value, gates)
    with torch.no_grad():
        fd = _fd_gate_gradient(value, gates)
    torch.testing.assert_close(grad, fd, atol=1e-6, rtol=1e-5)
    _, grad_no_entropy = target_gradient(lambda b: value(b, 0.0), gates)
    assert (grad - grad_no_entropy).abs().max() > 1e-4  # the entropy term depends on the gates too
    assert torch.all(grad[gates == 0] == 0)


def test_sac_partial_target_gate_gradient_holds_the_sampled_action_fixed():
    from rlcert.agents.deepsets import DeepSetsSACPolicy
    from rlcert.agents.multi_reengage import MultiReenGAGESAC

    model = MultiReenGAGESAC(DeepSetsSACPolicy, noisy_env(), alpha=0.1, seed=0, policy_kwargs=SMALL,
                             through_target_actor=False)
    model.policy.double()
    obs = goal_set_batch(seed=8)
    gates = obs["desired_goal"][..., 0]
    ent = torch.tensor(0.5, dtype=torch.float64)

    def value(b):
        torch.manual_seed(0)
        return sac_next_value(model, obs, ent)(b)

    _, grad = target_gradient(value, gates)
    with torch.no_grad():
        torch.manual_seed(0)
        action, _ = model.actor.action_log_prob(obs)  # a' at the observation's own gates
        fd = _fd_gate_gradient(lambda b: torch.cat(model.critic_target(obs, action, b), 1).min(1).values, gates)
    torch.testing.assert_close(grad, fd, atol=1e-6, rtol=1e-5)
