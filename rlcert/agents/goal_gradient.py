"""The gradient-matching term of ReenGAGE (thesis Eq. 8.8/8.9) and Multi-ReenGAGE (Eq. 8.19), plain torch.

Both agents add to the TD loss a penalty matching the gradient of the online critic with respect to an input x
(the goal g for ReenGAGE, the goal gates b for Multi-ReenGAGE) with the gradient of its TD target:

    alpha * mean_{batch, i} mask_b w_i ( d/dx_i Q_theta(s,a,x) - [d/dx_i R(s',x) + gamma (1-done) d/dx_i V'(s',x)] )^2

* ``d/dx V'`` is the **total** derivative of the bootstrap value: it flows through the target actor
  ``pi_phi'(s', x)`` as well as through the input of ``Q_theta'`` (the thesis' formula). It is a *target*: computed
  with one first-order backward and detached (:func:`target_and_goal_gradient`).
* Only ``d/dx Q_theta`` is built with ``create_graph=True`` (:func:`critic_goal_gradient`) so that the penalty can be
  back-propagated into ``theta`` ("double backpropagation").

**alpha convention** (the published one, spec §2 "Scaling convention"): ``reduction="mean"`` (default) makes
``alpha`` the coefficient of the squared gradient error averaged over the batch **and** the input coordinates
(goal coordinates, or the n_max gates). ``reduction="sum"`` sums over the coordinates instead (the squared l2
norm; alpha d times stronger); it is the convention of models saved before agents convention 2. Masked-out
transitions (sparse mode) contribute 0 but still count in the batch mean.
"""

from __future__ import annotations

from collections.abc import Callable

import torch as th

REDUCTIONS = ("mean", "sum")


def make_goal_leaf(goal: th.Tensor) -> th.Tensor:
    """A fresh leaf copy of ``goal`` (B, ...) that requires grad (the raw input the reward is defined on)."""
    return goal.detach().clone().requires_grad_(True)


def critic_goal_gradient(values: list[th.Tensor] | tuple[th.Tensor, ...], goals: th.Tensor | list[th.Tensor]
                         ) -> list[th.Tensor]:
    """``d/dx Q_theta`` for each critic, with ``create_graph=True`` (so that it can be trained on).

    values[j]: (B, 1) or (B,) outputs of critic j. ``goals``: one leaf (B, ...) shared by all critics (one
    backward per critic), or a list with one leaf per critic (one backward for all). Returns one (B, ...) tensor
    per critic: per-sample gradients, since sample b's value depends only on sample b's input.
    """
    if isinstance(goals, (list, tuple)):
        total = values[0].sum()
        for v in values[1:]:
            total = total + v.sum()
        return list(th.autograd.grad(total, list(goals), create_graph=True))
    return [th.autograd.grad(v.sum(), goals, create_graph=True)[0] for v in values]


def target_and_goal_gradient(
    next_value_fn: Callable[[th.Tensor], th.Tensor | tuple[th.Tensor, th.Tensor]],
    goal: th.Tensor,
    rewards: th.Tensor,
    dones: th.Tensor,
    discounts: th.Tensor | float,
) -> tuple[th.Tensor, th.Tensor]:
    """TD target ``y = R + (1 - done) * discount * V'(s', x)`` (B, 1) and ``(1 - done) * discount * dV'/dx``, detached.

    ``next_value_fn(x)`` must compute the bootstrap value (B, 1) from the leaf ``x`` everywhere the input is used
    (target actor and target critic), so that the gradient is the total derivative. It may return a pair
    ``(value for the TD target, value to differentiate)`` (DQN: hard max and soft value). One forward and one
    first-order backward. The reward gradient (dense mode, gates) is added by the caller.
    """
    x = make_goal_leaf(goal)
    with th.enable_grad():
        out = next_value_fn(x)
        value, differentiated = out if isinstance(out, tuple) else (out, out)
        (grad,) = th.autograd.grad(differentiated.sum(), x)
    scale = (1 - dones) * discounts  # (B, 1)
    target = rewards + scale * value.detach()
    return target, scale.reshape(scale.shape[0], *([1] * (grad.dim() - 1))) * grad


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
    reduction: str = "mean",
) -> th.Tensor:
    """mean_b [ mask_b * red_i w_i (grad_q[b,i] - grad_target[b,i])^2 ]  (multiply by alpha outside).

    reduction: "mean" over the input coordinates (default, the published convention: with the batch mean this is
    the mean over batch x coordinates, ``F.mse_loss`` on the gradients when unmasked) or "sum" (squared l2 norm).
    grad_q, grad_target: (B, ...); mask: (B,) of 0/1 (sparse mode) or None; goal_weight: per-coordinate weight
    (sigma_i^2, thesis App. G.4) broadcastable to grad_q[0], or None. The target is detached here as well.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    sq = (grad_q - grad_target.detach()) ** 2
    if goal_weight is not None:
        sq = sq * goal_weight
    flat = sq.flatten(1)  # inputs of any shape (B, ...) are reduced over all their entries
    per_sample = flat.mean(dim=1) if reduction == "mean" else flat.sum(dim=1)
    if mask is not None:
        per_sample = per_sample * mask
    return per_sample.mean()
