"""Adam on stacked member parameters with a learning rate per member (one optimiser step for the whole fleet).

Adam is elementwise, so one step on parameters stacked along a leading member axis is S independent Adam steps.
The arithmetic follows ``torch.optim.Adam`` (default, no weight decay / amsgrad): ``m = b1 m + (1-b1) g``,
``v = b2 v + (1-b2) g^2``, ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``, with ``torch._foreach_*``
kernels over all tensors at once (a handful of kernel launches per step instead of several per tensor).
"""

from __future__ import annotations

import math

import torch as th


class StackedAdam:
    """Adam over a list of parameters whose first axis is the member axis; ``lr`` is (S,) (one per member)."""

    def __init__(self, params: list[th.Tensor], lr: th.Tensor, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = [p for p in params]
        self.lr = th.as_tensor(lr, dtype=th.float64)
        self.betas, self.eps, self.step_count = betas, float(eps), 0
        self.exp_avg = [th.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [th.zeros_like(p) for p in self.params]

    @th.no_grad()
    def step(self, grads: list[th.Tensor]) -> None:
        """One Adam step with the given gradients (same shapes as the parameters)."""
        self.step_count += 1
        b1, b2 = self.betas
        bc1 = 1 - b1 ** self.step_count
        bc2_sqrt = math.sqrt(1 - b2 ** self.step_count)
        grads = [g.to(p.dtype) for g, p in zip(grads, self.params, strict=True)]
        th._foreach_lerp_(self.exp_avg, grads, 1 - b1)
        th._foreach_mul_(self.exp_avg_sq, b2)
        th._foreach_addcmul_(self.exp_avg_sq, grads, grads, value=1 - b2)
        denom = th._foreach_sqrt(self.exp_avg_sq)
        th._foreach_div_(denom, bc2_sqrt)
        th._foreach_add_(denom, self.eps)
        step_size = (self.lr / bc1).to(dtype=self.params[0].dtype, device=self.params[0].device)
        sizes = [step_size.reshape(-1, *([1] * (p.dim() - 1))) for p in self.params]
        update = th._foreach_mul(self.exp_avg, sizes)
        th._foreach_div_(update, denom)
        th._foreach_sub_(self.params, update)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "step": self.step_count, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def load_state_dict(self, state: dict) -> None:
        self.lr = state["lr"].clone()
        self.step_count = int(state["step"])
        for dst, src in zip(self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"], strict=True):
            dst.copy_(src)
