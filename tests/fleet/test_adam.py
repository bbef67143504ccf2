"""StackedAdam (fused and foreach paths) against torch.optim.Adam, one Adam per member, on the gradient layouts
the fleet produces: the written-out goal gradients give some weight gradients in transposed memory layout."""

from __future__ import annotations

import pytest
import torch as th

from rlcert.fleet.adam import StackedAdam


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "expanded"])
@pytest.mark.parametrize("lrs", [(1e-3, 1e-3), (1e-3, 5e-4)])  # uniform lr: fused kernel; per-member lr: foreach
def test_stacked_adam_equals_one_torch_adam_per_member(layout, lrs):
    g = th.Generator().manual_seed(0)
    shapes = [(2, 64, 256), (2, 1, 256), (2, 256, 256), (2, 256, 1), (2, 1, 1)]
    params = [th.randn(s, generator=g) for s in shapes]
    opt = StackedAdam([p.clone() for p in params], th.tensor(lrs, dtype=th.float64))
    refs = [[p[k].clone().requires_grad_() for p in params] for k in range(2)]
    ref_opts = [th.optim.Adam(refs[k], lr=lrs[k]) for k in range(2)]
    for _ in range(4):
        grads = []
        for s in shapes:
            if layout == "transposed" and s[1] > 1 and s[2] > 1:  # same values, column-major memory per member
                grad = th.randn(s[0], s[2], s[1], generator=g).transpose(1, 2)
            elif layout == "expanded":  # a broadcast view: stride 0 along the rows
                grad = th.randn(s[0], 1, s[2], generator=g).expand(s)
            else:
                grad = th.randn(s, generator=g)
            grads.append(grad)
        opt.step(grads)
        for k in range(2):
            for r, grad in zip(refs[k], grads, strict=True):
                r.grad = grad[k].contiguous()
            ref_opts[k].step()
    for i, p in enumerate(opt.params):
        for k in range(2):
            assert th.allclose(p[k], refs[k][i].detach(), rtol=0, atol=1e-6), (shapes[i], k)
