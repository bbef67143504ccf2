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
from torch.autograd.function import once_differentiable

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


def _relu_mlp_linears(net: th.nn.Module) -> list[th.nn.Linear] | None:
    """The Linear layers of a ``Sequential(Linear, (ReLU, Linear)*)``, or None for any other module."""
    layers = list(net) if isinstance(net, th.nn.Sequential) else []
    linears, relus = layers[0::2], layers[1::2]
    if (not layers or len(layers) % 2 == 0 or not all(type(m) is th.nn.Linear for m in linears)
            or not all(type(m) is th.nn.ReLU for m in relus)):
        return None
    return linears


def relu_mlp_forward(net: th.nn.Module, x: th.Tensor) -> tuple[th.Tensor, list[th.Tensor]] | None:
    """(net(x), the 0/1 ReLU masks of its hidden layers) for a ReLU MLP, or None when ``net`` is not one."""
    linears = _relu_mlp_linears(net)
    if linears is None:
        return None
    h, masks = x, []
    for lin in linears[:-1]:
        pre = lin(h)
        masks.append((pre > 0).to(pre.dtype))
        h = th.relu(pre)
    return linears[-1](h), masks


def relu_mlp_vjp(net: th.nn.Module, masks: list[th.Tensor], v: th.Tensor, rows: th.Tensor | None = None
                 ) -> th.Tensor:
    """v^T d net / d x (R, in) for the rows ``rows`` (default all) of a ReLU MLP whose forward gave ``masks``;
    v (R, out). Written out: W_n^T ... (ReLU masks) ... W_0."""
    linears = _relu_mlp_linears(net)
    if rows is not None:
        masks = [m[rows] for m in masks]
    for lin, mask in zip(reversed(linears[1:]), reversed(masks)):
        v = (v @ lin.weight) * mask
    return v @ linears[0].weight


def relu_mlp_input_gradient(net: th.nn.Module, x: th.Tensor, cols: slice, rows: th.Tensor | None = None
                            ) -> tuple[th.Tensor, th.Tensor] | None:
    """(net(x) (B, 1), d net / d x[:, cols] (B, len(cols))) for a ReLU MLP ``Linear (ReLU Linear)*`` with one output,
    the gradient written out (first-order in the weights: W_0[:, cols]^T m_0 W_1^T m_1 ... w_L, m_k the ReLU masks).

    ``rows`` (indices): the gradient only for these rows (R, len(cols)), the values for all (sparse mode).
    A loss on the gradient then back-propagates with an ordinary first-order backward instead of a double backward
    (same values as ``autograd.grad(create_graph=True)`` up to rounding; the ReLU masks are constants, as in
    autograd's own ReLU derivative). Returns None when ``net`` is not such an MLP (callers fall back to autograd).
    """
    linears = _relu_mlp_linears(net)
    if linears is None or linears[-1].out_features != 1:
        return None
    out, masks = relu_mlp_forward(net, x)
    if rows is not None:
        masks = [m[rows] for m in masks]
    n = x.shape[0] if rows is None else rows.shape[0]
    if not masks:
        return out, linears[-1].weight[:, cols].expand(n, -1)
    if len(linears) > 2:
        v = _MaskedRowTimesMatrix.apply(masks[-1], linears[-1].weight, linears[-2].weight) * masks[-2]
    else:
        v = masks[-1] * linears[-1].weight
    for lin, mask in zip(reversed(linears[1:-2]), reversed(masks[:-2])):
        v = (v @ lin.weight) * mask
    return out, v @ linears[0].weight[:, cols]


class _MaskedRowTimesMatrix(th.autograd.Function):
    """(m * w) @ W for a constant 0/1 mask m (B, H), a row w (1, H) and W (H, H'), with a backward that needs one
    (H x B x H') product instead of two: M = m^T g gives dW = w^T * M and dw = sum_k W_jk M_jk (as (m * w)^T g =
    diag(w) m^T g). Used on the last hidden layer of the written-out critic gradient."""

    @staticmethod
    def forward(ctx, m: th.Tensor, w: th.Tensor, big_w: th.Tensor) -> th.Tensor:  # noqa: D102
        ctx.save_for_backward(m, w, big_w)
        return (m * w) @ big_w

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: th.Tensor) -> tuple[None, th.Tensor, th.Tensor]:  # noqa: D102
        m, w, big_w = ctx.saved_tensors
        mg = m.transpose(0, 1) @ grad  # (H, H')
        return None, (big_w * mg).sum(dim=1).reshape(w.shape), w.reshape(-1, 1) * mg
