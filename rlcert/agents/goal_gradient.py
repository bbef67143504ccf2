"""The ReenGAGE term (thesis Eq. 8.8/8.9) as plain torch functions, independent of Stable-Baselines3.

ReenGAGE adds to the TD loss a penalty matching the goal-gradient of the online critic with the goal-gradient
of its TD target:

    dense:  alpha * || grad_g Q_theta(s,a,g) - [grad_g R(s',g) + gamma * d/dg Q_theta'(s', pi_phi'(s',g), g)] ||^2
    sparse: 1[R(s',g) = c_low] * alpha * || grad_g Q_theta(s,a,g) - gamma * d/dg Q_theta'(s', pi_phi'(s',g), g) ||^2

* ``d/dg`` of the target is the **total** derivative: it flows through the target actor ``pi_phi'(s', g)`` as
  well as through the goal input of ``Q_theta'``. It is a *target*: computed without a second-order graph and
  detached (:func:`target_and_goal_gradient`).
* Only ``grad_g Q_theta`` is built with ``create_graph=True`` (:func:`critic_goal_gradient`) so that the penalty
  can be back-propagated into ``theta`` ("double backpropagation").

**alpha convention** (the published one): ``alpha`` multiplies the *squared l2 norm* of the gradient difference
(summed over the d goal coordinates), averaged over the batch; i.e. ``alpha * d * mean_{batch x dims}(diff^2)``.
Masked-out transitions (sparse mode) contribute 0 but still count in the batch mean. The thesis' values
alpha in {0.1, 0.2, 0.3} (ContinuousSeek, HandReach) are meant in this convention.
"""

from __future__ import annotations

from collections.abc import Callable

import torch as th


def make_goal_leaf(goal: th.Tensor) -> th.Tensor:
    """A fresh leaf copy of ``goal`` (B, d) that requires grad (the raw goal the reward is defined on)."""
    return goal.detach().clone().requires_grad_(True)


def critic_goal_gradient(values: list[th.Tensor], goals: list[th.Tensor]) -> list[th.Tensor]:
    """``grad_g Q_theta`` for each critic, with ``create_graph=True`` (so it can be trained on).

    values[i]: (B, 1) or (B,) outputs of critic i, computed from the leaf ``goals[i]`` (B, d). Each critic must
    have its own leaf so that one ``autograd.grad`` call returns separate per-critic gradients. Returns (B, d)
    tensors (per-sample gradients, since sample b's value only depends on sample b's goal).
    """
    total = values[0].sum()
    for v in values[1:]:
        total = total + v.sum()
    return list(th.autograd.grad(total, goals, create_graph=True))


def target_and_goal_gradient(
    next_value_fn: Callable[[th.Tensor], th.Tensor],
    goal: th.Tensor,
    rewards: th.Tensor,
    dones: th.Tensor,
    discounts: th.Tensor | float,
) -> tuple[th.Tensor, th.Tensor]:
    """TD target ``y = R + (1 - done) * discount * V'(s', g)`` and its *total* goal-gradient, both detached.

    ``next_value_fn(g)`` (B, 1) must compute the bootstrap value from the goal leaf ``g`` everywhere the goal is
    used (target actor input and target critic input), so the gradient is the total derivative. One forward and
    one backward (no ``create_graph``) give both the target and ``(1 - done) * discount * dV'/dg`` (B, d). The
    reward-gradient (dense mode) is added by the caller (:func:`reward_goal_gradient`).
    """
    g = make_goal_leaf(goal)
    with th.enable_grad():
        next_value = next_value_fn(g)
        (grad,) = th.autograd.grad(next_value.sum(), g)
    scale = (1.0 - dones) * discounts  # (B, 1)
    target = rewards + scale * next_value.detach()
    return target, scale * grad


def reward_goal_gradient(
    reward_fn: Callable[[th.Tensor, th.Tensor], th.Tensor], next_achieved_goal: th.Tensor, goal: th.Tensor
) -> th.Tensor:
    """``grad_g R(s', g)`` (B, d) for a differentiable torch reward ``reward_fn(ag, g) -> (B,)`` (dense mode)."""
    g = make_goal_leaf(goal)
    with th.enable_grad():
        (grad,) = th.autograd.grad(reward_fn(next_achieved_goal.detach(), g).sum(), g)
    return grad


def sparse_mask(rewards: th.Tensor, c_low: float = -1.0) -> th.Tensor:
    """1.0 where the (relabelled, recomputed) reward equals ``c_low``, else 0.0; (B, 1) or (B,) -> (B,)."""
    return (rewards.reshape(-1) == c_low).to(rewards.dtype)


def reengage_penalty(
    grad_q: th.Tensor,
    grad_target: th.Tensor,
    mask: th.Tensor | None = None,
    goal_weight: th.Tensor | None = None,
    reduction: str = "sum",
) -> th.Tensor:
    """mean_b [ mask_b * sum_i w_i (grad_q[b,i] - grad_target[b,i])^2 ]  (multiply by alpha outside).

    reduction: "sum" over goal entries (the published convention, default) or "mean" (= "sum" / number of goal
    entries d, i.e. ``F.mse_loss`` on the gradients; an effective alpha d times smaller).

    grad_q, grad_target: (B, d); mask: (B,) of 0/1 (sparse mode) or None; goal_weight: (d,) per-coordinate weight
    (sigma_i^2, thesis App. G.4) or None. The target is detached here as well, for safety.
    """
    sq = (grad_q - grad_target.detach()) ** 2
    if goal_weight is not None:
        sq = sq * goal_weight
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    flat = sq.flatten(1)  # goals of any shape (B, ...) are reduced over all goal entries
    per_sample = flat.sum(dim=1) if reduction == "sum" else flat.mean(dim=1)
    if mask is not None:
        per_sample = per_sample * mask
    return per_sample.mean()
