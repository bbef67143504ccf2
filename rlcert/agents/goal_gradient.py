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
    first-order backward. The reward gradient (dense mode, gates) is added by the caller. Leading axes are allowed
    (a fleet: goal (S, B, ...), rewards and dones (S, B, 1), discounts broadcastable to them).
    """
    x = make_goal_leaf(goal)
    with th.enable_grad():
        out = next_value_fn(x)
        value, differentiated = out if isinstance(out, tuple) else (out, out)
        (grad,) = th.autograd.grad(differentiated.sum(), x)
    scale = (1 - dones) * discounts  # (B, 1)
    target = rewards + scale * value.detach()
    return target, scale.reshape(*scale.shape[:-1], *([1] * (grad.dim() - scale.dim() + 1))) * grad


def reward_goal_gradient(
    reward_fn: Callable[[th.Tensor, th.Tensor], th.Tensor], next_achieved_goal: th.Tensor, goal: th.Tensor
) -> th.Tensor:
    """``grad_g R(s', g)`` (B, d) for a differentiable torch reward ``reward_fn(ag, g) -> (B,)`` (dense mode)."""
    g = make_goal_leaf(goal)
    with th.enable_grad():
        (grad,) = th.autograd.grad(reward_fn(next_achieved_goal.detach(), g).sum(), g)
    return grad


def sparse_mask(rewards: th.Tensor, c_low: float = -1.0) -> th.Tensor:
    """1.0 where the (relabelled, recomputed) reward equals ``c_low``, else 0.0.

    Shapes: (..., B, 1) -> (..., B); (B,) -> (B,)."""
    flat = rewards[..., 0] if rewards.dim() > 1 else rewards
    return (flat == c_low).to(rewards.dtype)


def reengage_penalty(
    grad_q: th.Tensor,
    grad_target: th.Tensor,
    mask: th.Tensor | None = None,
    goal_weight: th.Tensor | None = None,
    reduction: str = "mean",
    batch_dims: int = 1,
) -> th.Tensor:
    """mean_b [ mask_b * red_i w_i (grad_q[b,i] - grad_target[b,i])^2 ]  (multiply by alpha outside).

    reduction: "mean" over the input coordinates (default, the published convention: with the batch mean this is
    the mean over batch x coordinates, ``F.mse_loss`` on the gradients when unmasked) or "sum" (squared l2 norm).
    grad_q, grad_target: (B, ...); mask: (B,) of 0/1 (sparse mode) or None; goal_weight: per-coordinate weight
    (sigma_i^2, thesis App. G.4) broadcastable to grad_q[0], or None. The target is detached here as well.
    ``batch_dims``: how many leading axes are batch axes; 2 for a fleet (grad_q (S, B, ...), mask (S, B)), which
    gives one penalty per member (S,) (the mean over the last batch axis only).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    sq = (grad_q - grad_target.detach()) ** 2
    if goal_weight is not None:
        sq = sq * goal_weight
    flat = sq.flatten(batch_dims)  # inputs of any shape (..., B, ...) are reduced over all their entries
    per_sample = flat.mean(dim=-1) if reduction == "mean" else flat.sum(dim=-1)
    if mask is not None:
        per_sample = per_sample * mask
    return per_sample.mean() if batch_dims == 1 else per_sample.mean(dim=-1)


# --- ReLU MLPs written out (one network, or a fleet's stack of S networks with a leading member axis) -------------
Layers = list[tuple[th.Tensor, th.Tensor]]
"""A ReLU MLP as its affine layers ``(W, b)``: W (..., in, out), b broadcastable to (..., 1, out); layer i computes
``h @ W + b``, ReLU between layers. For an ``nn.Linear`` that is ``(lin.weight.T, lin.bias)`` (views)."""


def affine(h: th.Tensor, w: th.Tensor, b: th.Tensor) -> th.Tensor:
    """``h @ w + b``: one network (h (B, in), w (in, out); ``F.linear``'s own ``addmm``) or a stack of S members
    (h (S, B, in), w (S, in, out), b (S, 1, out); ``baddbmm``). A one-output stacked layer is a multiply-and-sum: a
    batched GEMV rounds differently for S = 1 than for S > 1, this does not (a member's numbers never depend on S)."""
    if h.dim() == 2:
        return th.addmm(b, h, w)
    if w.shape[-1] == 1:
        return (h * w.transpose(-1, -2)).sum(dim=-1, keepdim=True) + b
    return th.baddbmm(b, h, w)


def _relu_mlp_linears(net: th.nn.Module) -> list[th.nn.Linear] | None:
    """The Linear layers of a ``Sequential(Linear, (ReLU, Linear)*)``, or None for any other module."""
    layers = list(net) if isinstance(net, th.nn.Sequential) else []
    linears, relus = layers[0::2], layers[1::2]
    if (not layers or len(layers) % 2 == 0 or not all(type(m) is th.nn.Linear for m in linears)
            or not all(type(m) is th.nn.ReLU for m in relus)):
        return None
    return linears


def relu_mlp_layers(net: th.nn.Module | Layers) -> Layers | None:
    """The :data:`Layers` of a ``Sequential(Linear, (ReLU, Linear)*)`` (views of its parameters), a list of layers
    as is, or None for any other module."""
    if isinstance(net, list):
        return net
    linears = _relu_mlp_linears(net)
    return None if linears is None else [(lin.weight.T, lin.bias) for lin in linears]


def relu_mlp_forward(net: th.nn.Module | Layers, x: th.Tensor) -> tuple[th.Tensor, list[th.Tensor]] | None:
    """(net(x), the ReLU outputs of its hidden layers) for a ReLU MLP, or None when ``net`` is not one.
    x (..., B, in) with the layers' leading axes. The ReLU outputs h_k carry the masks 1[h_k > 0] of the derivative
    (:func:`relu_derivative`), without materialising them."""
    layers = relu_mlp_layers(net)
    if layers is None:
        return None
    h, hidden = x, []
    for w, b in layers[:-1]:
        h = th.relu(affine(h, w, b))
        hidden.append(h)
    return affine(h, *layers[-1]), hidden


def relu_derivative(v: th.Tensor, h: th.Tensor) -> th.Tensor:
    """v * 1[h > 0] for ReLU outputs h (constants), in one pass (the kernel of autograd's own ReLU backward);
    differentiable in v."""
    return th.ops.aten.threshold_backward(v, h.detach().to(v.dtype), 0)


def relu_mlp_vjp(net: th.nn.Module | Layers, hidden: list[th.Tensor], v: th.Tensor, rows: th.Tensor | None = None
                 ) -> th.Tensor:
    """v^T d net / d x (..., R, in) for the rows ``rows`` (default all) of a ReLU MLP whose forward gave the ReLU
    outputs ``hidden``; v (..., R, out). Written out: W_n^T ... (ReLU masks) ... W_0."""
    layers = relu_mlp_layers(net)
    if rows is not None:
        hidden = [h[rows] for h in hidden]
    for (w, _), h in zip(reversed(layers[1:]), reversed(hidden)):
        wt = w.transpose(-1, -2)
        v = relu_derivative(v * wt if v.shape[-1] == 1 else v @ wt, h)  # one output: an outer product, exact
    return v @ layers[0][0].transpose(-1, -2)


def relu_mlp_input_gradient(net: th.nn.Module | Layers, x: th.Tensor, cols: slice, rows: th.Tensor | None = None
                            ) -> tuple[th.Tensor, th.Tensor] | None:
    """(net(x) (..., B, 1), d net / d x[..., cols] (..., B, len(cols))) for a ReLU MLP ``Linear (ReLU Linear)*`` with
    one output, the gradient written out (first-order in the weights: W_0[cols] m_0 W_1 m_1 ... w_L, m_k the ReLU
    masks). Leading (member) axes allowed.

    ``rows`` (indices, one network only): the gradient only for these rows (R, len(cols)), the values for all.
    A loss on the gradient then back-propagates with an ordinary first-order backward instead of a double backward
    (same values as ``autograd.grad(create_graph=True)`` up to rounding; the ReLU masks are constants, as in
    autograd's own ReLU derivative). Returns None when ``net`` is not such an MLP (callers fall back to autograd).
    """
    layers = relu_mlp_layers(net)
    if layers is None or layers[-1][0].shape[-1] != 1:
        return None
    out, hidden = relu_mlp_forward(layers, x)
    if rows is not None:
        hidden = [h[rows] for h in hidden]
    n = x.shape[-2] if rows is None else rows.shape[0]
    w_last = layers[-1][0].transpose(-1, -2)  # (..., 1, H)
    if not hidden:
        return out, w_last[..., cols].expand(*w_last.shape[:-2], n, -1)
    if len(layers) > 2:
        mask = (hidden[-1] > 0).to(hidden[-1].dtype)  # the one mask materialised: its transpose is a GEMM operand
        v = relu_derivative(_MaskedRowTimesMatrix.apply(mask, w_last, layers[-2][0].transpose(-1, -2)), hidden[-2])
    else:
        v = relu_derivative(w_last.expand(*hidden[-1].shape), hidden[-1])
    for (w, _), h in zip(reversed(layers[1:-2]), reversed(hidden[:-2])):
        v = relu_derivative(v @ w.transpose(-1, -2), h)
    return out, v @ layers[0][0][..., cols, :].transpose(-1, -2)


class _MaskedRowTimesMatrix(th.autograd.Function):
    """(m * w) @ W for a constant 0/1 mask m (..., B, H), a row w (..., 1, H) and W (..., H, H'), with a backward
    that needs one (H x B x H') product instead of two: M = m^T g gives dW = w^T * M and dw = sum_k W_jk M_jk (as
    (m * w)^T g = diag(w) m^T g). Used on the last hidden layer of the written-out critic gradient."""

    @staticmethod
    def forward(ctx, m: th.Tensor, w: th.Tensor, big_w: th.Tensor) -> th.Tensor:  # noqa: D102
        ctx.save_for_backward(m, w, big_w)
        return (m * w) @ big_w

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: th.Tensor) -> tuple[None, th.Tensor, th.Tensor]:  # noqa: D102
        m, w, big_w = ctx.saved_tensors
        mg = m.transpose(-1, -2).to(grad.dtype) @ grad  # (..., H, H')
        return (None, (big_w * mg).sum(dim=-1).reshape(w.shape).to(w.dtype),
                (w.transpose(-1, -2) * mg).to(big_w.dtype))


@th.no_grad()
def td3_target_and_goal_gradient(actor: th.nn.Module | Layers, critics: list, actor_in: th.Tensor,
                                 critic_in: th.Tensor, noise: th.Tensor | None, cols_critic: slice, cols_actor: slice,
                                 rows: th.Tensor | None = None, through_target_actor: bool = True
                                 ) -> tuple[th.Tensor, th.Tensor] | None:
    """TD3's bootstrap value V'(s', g) = min_j Q'_j(s', clamp(tanh(mu'(s', g)) + noise, -1, 1), g) (..., B, 1) and its
    goal derivative dV'/dg (..., B, d), written out (no autograd), 0 outside ``rows`` (None: all rows).

    ``actor``: the target actor's ReLU MLP before its tanh; ``critics``: each target critic's ReLU MLP (one output);
    ``actor_in`` / ``critic_in``: their inputs (critic without the action, which is appended last); ``cols_*``:
    where the goal sits in them. The derivative is total (through the target actor, clamp included) unless
    ``through_target_actor`` is False (partial: through Q' only). None when a network is not a ReLU MLP.
    Leading (member) axes allowed with ``rows=None``.
    """
    actor_pass = relu_mlp_forward(actor, actor_in)
    if actor_pass is None:
        return None
    pre, actor_hidden = actor_pass
    squashed = th.tanh(pre)
    shifted = squashed if noise is None else squashed + noise
    actions = shifted.clamp(-1, 1)
    critic_x = th.cat([critic_in, actions.to(critic_in.dtype)], dim=-1)
    passes = [relu_mlp_forward(c, critic_x) for c in critics]
    if any(p is None for p in passes) or passes[0][0].shape[-1] != 1:
        return None
    q_values, best = th.min(th.cat([p[0] for p in passes], dim=-1), dim=-1, keepdim=True)
    n = pre.shape[-2] if rows is None else rows.numel()
    ones = th.ones(*pre.shape[:-2], n, 1, dtype=pre.dtype, device=pre.device)
    vjps = [relu_mlp_vjp(c, hidden, ones, rows) for c, (_, hidden) in zip(critics, passes)]
    if len(vjps) == 1:
        grad_in = vjps[0]
    else:  # the gradient of the critic that gave the minimum, row by row
        best_rows = best if rows is None else best[rows]
        stacked = th.stack(vjps, dim=-2)  # (..., R, n_critics, in)
        index = best_rows.unsqueeze(-1).expand(*best_rows.shape, stacked.shape[-1])
        grad_in = stacked.gather(-2, index).squeeze(-2)
    grad = grad_in[..., cols_critic]
    if through_target_actor:
        sq, sh = (squashed, shifted) if rows is None else (squashed[rows], shifted[rows])
        inside = ((sh >= -1) & (sh <= 1)).to(grad_in.dtype)
        d_pre = grad_in[..., critic_in.shape[-1]:] * inside * (1 - sq ** 2)
        grad = grad + relu_mlp_vjp(actor, actor_hidden, d_pre, rows)[..., cols_actor]
    if rows is None:
        return q_values, grad
    full = th.zeros(pre.shape[0], grad.shape[1], dtype=grad.dtype, device=pre.device)
    full[rows] = grad
    return q_values, full
