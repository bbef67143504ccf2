"""Multi-layer perceptrons of S independent members as stacked tensors (one batched matmul per layer).

A layer of S members is a weight (S, in, out) and a bias (S, 1, out); ``x`` (S, B, in) maps to
``x @ weight + bias`` (S, B, out) by :func:`rlcert.agents.goal_gradient.affine` (the agents' own layer function,
which also gives the written-out input gradients of :mod:`rlcert.agents.goal_gradient` a member axis). Member k's
output depends only on member k's input and parameters, and its rounding does not depend on S (a one-output
layer is a multiply-and-sum, not a batched GEMV), so summing the members' losses and back-propagating once gives
every member exactly its own gradient.

Weights are stored transposed with respect to ``torch.nn.Linear`` (``nn.Linear.weight`` is (out, in));
:func:`load_linear_stack` / :func:`linear_state` convert between the two.
"""

from __future__ import annotations

import math

import torch as th
from torch import nn

from rlcert.agents.goal_gradient import Layers, affine


class StackedMLP(nn.Module):
    """ReLU MLP ``in_dim -> hidden... -> out_dim`` for ``n`` independent members (optional final tanh).

    Parameters are ``weight{i}`` (n, fan_in, fan_out) and ``bias{i}`` (n, 1, fan_out). Initialisation (by
    :meth:`init_member`) is ``nn.Linear``'s default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """

    def __init__(self, n: int, in_dim: int, hidden: list[int], out_dim: int, squash: bool = False,
                 dtype: th.dtype = th.float32, device: str | th.device = "cpu") -> None:
        super().__init__()
        self.n, self.sizes, self.squash = int(n), [int(in_dim), *map(int, hidden), int(out_dim)], bool(squash)
        for i, (fi, fo) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            self.register_parameter(f"weight{i}", nn.Parameter(th.zeros(self.n, fi, fo, dtype=dtype, device=device)))
            self.register_parameter(f"bias{i}", nn.Parameter(th.zeros(self.n, 1, fo, dtype=dtype, device=device)))

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def layers(self) -> Layers:
        """[(weight (n, in, out), bias (n, 1, out))] per layer: the :data:`rlcert.agents.goal_gradient.Layers`."""
        return [(getattr(self, f"weight{i}"), getattr(self, f"bias{i}")) for i in range(self.n_layers)]

    @th.no_grad()
    def init_member(self, k: int, generator: th.Generator) -> None:
        """Draw member k's parameters from ``generator`` (a CPU generator; nn.Linear's default init, layer by layer)."""
        for w, b in self.layers():
            bound = 1.0 / math.sqrt(w.shape[1])
            w[k].copy_((th.rand(w.shape[1:], generator=generator, dtype=th.float64) * 2 - 1) * bound)
            b[k].copy_((th.rand(b.shape[1:], generator=generator, dtype=th.float64) * 2 - 1) * bound)

    def forward(self, x: th.Tensor) -> th.Tensor:
        """x (n, B, in) -> (n, B, out)."""
        layers = self.layers()
        for i, (w, b) in enumerate(layers):
            x = affine(x, w, b)
            if i < len(layers) - 1:
                x = th.relu(x)
        return th.tanh(x) if self.squash else x


def load_linear_stack(mlp: StackedMLP, k: int, linears: list[nn.Linear]) -> None:
    """Copy the ``nn.Linear`` layers of one ordinary network into member k of ``mlp``."""
    if len(linears) != mlp.n_layers:
        raise ValueError(f"expected {mlp.n_layers} linear layers, got {len(linears)}")
    with th.no_grad():
        for (w, b), lin in zip(mlp.layers(), linears, strict=True):
            w[k].copy_(lin.weight.T)
            b[k, 0].copy_(lin.bias)


def store_linear_stack(mlp: StackedMLP, k: int, linears: list[nn.Linear]) -> None:
    """Copy member k of ``mlp`` into the ``nn.Linear`` layers of an ordinary network (inverse of the above)."""
    if len(linears) != mlp.n_layers:
        raise ValueError(f"expected {mlp.n_layers} linear layers, got {len(linears)}")
    with th.no_grad():
        for (w, b), lin in zip(mlp.layers(), linears, strict=True):
            lin.weight.copy_(w[k].T)
            lin.bias.copy_(b[k, 0])


def linears_of(module: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of a module in registration order."""
    return [m for m in module.modules() if isinstance(m, nn.Linear)]
