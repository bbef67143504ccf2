"""Gradients with respect to the goal gates b for Multi-ReenGAGE (thesis eq. 8.19, G.14-G.18).

All functions are pure torch. Shapes: B = batch, n = n_max. With the b^2 pooling and the b^2 reward, every
gradient below is "2 x the intended gradient" at real goals and exactly 0 at padding gates (eq. G.18).

    loss = alpha * mean_B sum_i ( dQ/db_i  -  [ dR/db_i + gamma (1 - done) dQ'/db_i ] )^2

``alpha`` convention: it multiplies the squared l2 norm over the n_max gates, averaged over the batch (the same
convention as single-goal ReenGAGE, spec §2). A loss averaged over batch *and* gates with weight a equals this
one with alpha = a / n_max.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def q_gate_gradient(q: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """dQ/db (B, n) of the current critic, with ``create_graph=True`` so a loss on it trains the critic.

    ``q`` (B,) or (B, 1) must have been computed from ``gates`` (B, n, requires_grad); rows are independent, so
    the gradient of the batch sum is the per-row gradient.
    """
    (grad,) = torch.autograd.grad(q.sum(), gates, create_graph=True)
    return grad


def target_gate_gradient(target_value: Callable[[torch.Tensor], torch.Tensor],
                         gates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Total derivative d/db of a target value, detached; returns (value (B,), gradient (B, n)).

    ``target_value(b)`` must compute Q_theta'(s', pi_phi'(s', b), b) (or the SAC soft value) from the gates it is
    given, so that the derivative flows through the target actor as well as through the critic's goal input.
    No second-order graph is built.
    """
    b = gates.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = target_value(b).reshape(-1)
        (grad,) = torch.autograd.grad(value.sum(), b)
    return value.detach(), grad.detach()


def reward_gate_gradient(item_rewards: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """dR/db for R = sum_i b_i^2 R_item(s', g_i): 2 b_i R_item, i.e. 2 R_item at real goals and 0 at padding."""
    return 2.0 * gates * item_rewards


def gate_gradient_target(item_rewards: torch.Tensor, gates: torch.Tensor, next_grad: torch.Tensor,
                         not_done: torch.Tensor, discounts: torch.Tensor | float) -> torch.Tensor:
    """Target dR/db + gamma (1 - done) dQ'/db (B, n); ``not_done`` (B, 1), ``discounts`` scalar or (B, 1)."""
    return (reward_gate_gradient(item_rewards, gates) + not_done * discounts * next_grad).detach()


def gate_gradient_loss(grad_q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared l2 norm of the difference over the gates, averaged over the batch (multiply by alpha)."""
    return (grad_q - target).pow(2).sum(dim=-1).mean()
