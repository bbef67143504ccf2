"""Padding goals and goal order have no influence on Q, pi and the gate gradients (thesis eq. G.14)."""

from __future__ import annotations

import pytest
import torch

try:  # works whether or not tests/agents is a package
    from multi_helpers import SMALL, goal_set_batch, noisy_env
except ImportError:  # pragma: no cover
    from .multi_helpers import SMALL, goal_set_batch, noisy_env

from rlcert.agents.deepsets import DeepSetsSACPolicy, DeepSetsTD3Policy
from rlcert.agents.gate_gradient import q_gate_gradient, target_gate_gradient
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG


def _outputs(model, obs, actions):
    gates = obs["desired_goal"][..., 0].clone().requires_grad_(True)
    q = model.critic(obs, actions, gates)[0]
    grad_q = q_gate_gradient(q, gates).detach()
    pi = model.actor(obs).detach()
    _, grad_t = target_gate_gradient(lambda b: model._target_value(obs, b, torch.zeros_like(actions)),
                                     obs["desired_goal"][..., 0])
    return q.detach(), pi, grad_q, grad_t


def _permute_and_pad(obs, perm, extra):
    dg = obs["desired_goal"][:, perm]
    dg = torch.cat([dg, torch.zeros(dg.shape[0], extra, 3, dtype=dg.dtype)], dim=1)
    return {**obs, "desired_goal": dg}


@pytest.mark.parametrize("share_encoder", [True, False])
def test_permutation_and_extra_padding_change_nothing(share_encoder):
    model = MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy_env(), alpha=0.1, seed=0,
                              policy_kwargs={**SMALL, "share_encoder": share_encoder})
    model.policy.double()
    obs = goal_set_batch(batch=5, n_max=6, seed=4)
    actions = torch.rand(5, 2, dtype=torch.float64) * 2 - 1
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    q, pi, gq, gt = _outputs(model, obs, actions)
    q2, pi2, gq2, gt2 = _outputs(model, _permute_and_pad(obs, perm, extra=7), actions)
    torch.testing.assert_close(q2, q, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(pi2, pi, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(gq2[:, :6], gq[:, perm], atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(gt2[:, :6], gt[:, perm], atol=1e-12, rtol=1e-10)
    assert torch.all(gq2[:, 6:] == 0) and torch.all(gt2[:, 6:] == 0)  # padding gates: exactly zero gradient


def test_padding_rows_content_is_ignored_even_if_nonzero_coordinates():
    """A gate of 0 removes a goal whatever its coordinates: b^2 Enc(s, g) = 0 and d/db = 2 b Enc = 0."""
    model = MultiReenGAGEDDPG(DeepSetsTD3Policy, noisy_env(), alpha=0.1, seed=0, policy_kwargs=SMALL)
    model.policy.double()
    obs = goal_set_batch(batch=3, n_max=6, seed=5)
    junk = obs["desired_goal"].clone()
    pad = junk[..., 0] == 0
    junk[..., 1:][pad] = 7.0
    actions = torch.zeros(3, 2, dtype=torch.float64)
    for a, b in zip(_outputs(model, obs, actions), _outputs(model, {**obs, "desired_goal": junk}, actions)):
        torch.testing.assert_close(a, b)


def test_sac_policy_padding_invariance():
    from rlcert.agents.multi_reengage import MultiReenGAGESAC

    model = MultiReenGAGESAC(DeepSetsSACPolicy, noisy_env(), alpha=0.1, seed=0, policy_kwargs=SMALL)
    model.policy.double()
    obs = goal_set_batch(batch=4, n_max=6, seed=6)
    padded = _permute_and_pad(obs, torch.arange(6).flip(0), extra=3)
    a = torch.rand(4, 2, dtype=torch.float64)
    for q1, q2 in zip(model.critic(obs, a), model.critic(padded, a)):
        torch.testing.assert_close(q1, q2)
    torch.testing.assert_close(model.actor(obs, deterministic=True), model.actor(padded, deterministic=True))
