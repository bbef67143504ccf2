"""Adam on stacked member parameters with a learning rate per member (one optimiser step for the whole fleet).

Adam is elementwise, so one step on parameters stacked along a leading member axis is S independent Adam steps.
The arithmetic follows ``torch.optim.Adam`` (default, no weight decay / amsgrad): ``m = b1 m + (1-b1) g``,
``v = b2 v + (1-b2) g^2``, ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
"""

from __future__ import annotations

import math

import torch as th


class StackedAdam:
    """Adam over a list of parameters whose first axis is the member axis; ``lr`` is (S,) (one per member)."""

    def __init__(self, params: list[th.Tensor], lr: th.Tensor, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
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
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, strict=True):
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            step_size = (self.lr / bc1).to(p.dtype).reshape(-1, *([1] * (p.dim() - 1)))
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            p.sub_(step_size * m / denom)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "step": self.step_count, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def load_state_dict(self, state: dict) -> None:
        self.lr = state["lr"].clone()
        self.step_count = int(state["step"])
        for dst, src in zip(self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"], strict=True):
            dst.copy_(src)
