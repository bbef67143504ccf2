"""Adam on stacked member parameters with a learning rate per member (one optimiser step for the whole fleet).

Adam is elementwise, so one step on parameters stacked along a leading member axis is S independent Adam steps.
The arithmetic follows ``torch.optim.Adam`` (default, no weight decay / amsgrad): ``m = b1 m + (1-b1) g``,
``v = b2 v + (1-b2) g^2``, ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``, with ``torch._foreach_*``
kernels over all tensors at once, or, when every member has the same learning rate, PyTorch's fused Adam kernel
(``torch._fused_adam_``, the kernel of ``torch.optim.Adam(fused=True)``: one pass over each tensor, several times
faster than the foreach path on a CPU) for the tensors whose per-member size is a multiple of 64. The fused kernel
vectorises over the flattened tensor and finishes a remainder with scalar code that rounds differently; with
per-member sizes that are multiples of the vector width no member's entries ever fall into the remainder, so a
member's numbers do not depend on S (tested bit for bit); the small rest (biases of one-output layers, ...) takes
the foreach path.
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
        self._split()

    def _split(self) -> None:
        """Which tensors take the fused kernel (uniform learning rate, per-member size a multiple of 64)."""
        uniform = hasattr(th, "_fused_adam_") and bool((self.lr == self.lr[0]).all())
        self.fused_idx = [i for i, p in enumerate(self.params) if uniform and p[0].numel() % 64 == 0]
        self.foreach_idx = [i for i in range(len(self.params)) if i not in set(self.fused_idx)]

    @th.no_grad()
    def step(self, grads: list[th.Tensor]) -> None:
        """One Adam step with the given gradients (same shapes as the parameters)."""
        self.step_count += 1
        b1, b2 = self.betas
        bc1 = 1 - b1 ** self.step_count
        bc2_sqrt = math.sqrt(1 - b2 ** self.step_count)
        # The fused kernel walks a gradient's memory as if it had its parameter's layout: a gradient in another
        # layout (the written-out goal gradients give transposed weight gradients; broadcasts give stride-0 views)
        # is first copied into the parameter's layout, else the kernel would apply a permuted gradient.
        grads = [g.to(p.dtype) if g.stride() == p.stride() else th.empty_like(p).copy_(g)
                 for g, p in zip(grads, self.params, strict=True)]

        def pick(items: list, idx: list[int]) -> list:
            return [items[i] for i in idx]

        if self.fused_idx:
            params = pick(self.params, self.fused_idx)
            steps = [th.tensor(float(self.step_count), device=p.device) for p in params]
            th._fused_adam_(params, pick(grads, self.fused_idx), pick(self.exp_avg, self.fused_idx),
                            pick(self.exp_avg_sq, self.fused_idx), [], steps, lr=float(self.lr[0]), beta1=b1,
                            beta2=b2, weight_decay=0.0, eps=self.eps, amsgrad=False, maximize=False)
        if not self.foreach_idx:
            return
        params, grads = pick(self.params, self.foreach_idx), pick(grads, self.foreach_idx)
        exp_avg, exp_avg_sq = pick(self.exp_avg, self.foreach_idx), pick(self.exp_avg_sq, self.foreach_idx)
        th._foreach_lerp_(exp_avg, grads, 1 - b1)
        th._foreach_mul_(exp_avg_sq, b2)
        th._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - b2)
        denom = th._foreach_sqrt(exp_avg_sq)
        th._foreach_div_(denom, bc2_sqrt)
        th._foreach_add_(denom, self.eps)
        step_size = (self.lr / bc1).to(dtype=params[0].dtype, device=params[0].device)
        sizes = [step_size.reshape(-1, *([1] * (p.dim() - 1))) for p in params]
        update = th._foreach_mul(exp_avg, sizes)
        th._foreach_div_(update, denom)
        th._foreach_sub_(params, update)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "step": self.step_count, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def load_state_dict(self, state: dict) -> None:
        self.lr = state["lr"].clone()
        self._split()
        self.step_count = int(state["step"])
        for dst, src in zip(self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"], strict=True):
            dst.copy_(src)
