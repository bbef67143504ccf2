"""Padding goals and goal order have no influence on Q, pi and the gate gradients (thesis eq. G.14)."""

from __future__ import annotations

import pytest
import torch

try:  # works whether or not tests/agents is a package
    from multi_helpers import SMALL, goal_set_batch, noisy_env
except ImportError:  # pragma: no cover
    from .multi_helpers import SMALL, goal_set_batch, noisy_env

from rlcert.agents.deepsets import DeepSetsSACPolicy, DeepSetsTD3Policy
from rlcert.agents.goal_gradient import critic_goal_gradient, target_and_goal_gradient
from rlcert.agents.loops import td3_next_value
from rlcert.agents.multi_reengage import MultiReenGAGEDDPG


def target_gradient(value_fn, gates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(value (B, 1), total d value / d gates (B, n)), both detached: the agents' target code with R = 0, gamma = 1."""
    zeros = torch.zeros(gates.shape[0], 1, dtype=gates.dtype)
    return target_and_goal_gradient(value_fn, gates, zeros, zeros, 1.0)


def _outputs(model, obs, actions):
    gates = obs["desired_goal"][..., 0].clone().requires_grad_(True)
    q = model.critic(obs, actions, gates)[0]
    grad_q = critic_goal_gradient([q], gates)[0].detach()
    pi = model.actor(obs).detach()
    _, grad_t = target_gradient(td3_next_value(model, obs, torch.zeros_like(actions)),
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


@pytest.mark.parametrize("policy_cls", [DeepSetsTD3Policy, DeepSetsSACPolicy])
def test_default_pooling_divides_the_gated_sum_by_n_max(policy_cls):
    """z = sum_i b_i^2 Enc(s, g_i) / n_max (n_max of the observation space), computed here by a plain loop."""
    from rlcert.agents.multi_reengage import MultiReenGAGESAC

    algo = MultiReenGAGEDDPG if policy_cls is DeepSetsTD3Policy else MultiReenGAGESAC
    model = algo(policy_cls, noisy_env(n_max=6), seed=0, policy_kwargs=SMALL)
    summed = algo(policy_cls, noisy_env(n_max=6), seed=0, policy_kwargs={**SMALL, "pooling": "sum"})
    for m in (model, summed):
        m.policy.double()
    summed.policy.load_state_dict(model.policy.state_dict())
    obs = goal_set_batch(batch=3, n_max=6, seed=9)
    enc = model.critic.encoder.net
    gates = obs["desired_goal"][..., 0].clone()
    gates[0, 0] = 0.5  # a fractional gate: the square matters
    want = torch.zeros(3, SMALL["embed_dim"], dtype=torch.float64)
    for b in range(3):
        for i in range(6):
            row = torch.cat([obs["observation"][b], obs["desired_goal"][b, i, 1:]])
            want[b] += gates[b, i] ** 2 * enc(row)
    torch.testing.assert_close(model.critic.embed(obs, gates), want / 6, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(summed.critic.embed(obs, gates), want, atol=1e-12, rtol=1e-10)
    with pytest.raises(ValueError, match="pooling"):
        algo(policy_cls, noisy_env(), policy_kwargs={**SMALL, "pooling": "mean"})
