"""The noise object of adaptive smoothing: k Gaussian mechanisms a pipeline may query, each at most once.

``GaussianQueries(x, sigmas, norm)`` holds a batch of clean inputs x (m, *shape) and hands a pipeline only noisy
views of it: ``queries(i, weights)`` returns ``weights * x + scale_i * z`` with fresh z ~ N(0, I) and a
per-sample scale that the object itself computes from the weights (never from the pipeline), so that step i is
G_{r/sigma_i}-DP for every weights whatever the earlier outputs were:

* norm "linf": scale_i = sigma_i * ||w||_2 / sqrt(d)   (l2 sensitivity of w * x is <= ||w||_2 ||delta||_inf);
* norm "l2":   scale_i = sigma_i * max_j |w_j|          (l2 sensitivity of w * x is <= max |w_j| ||delta||_2).

weights=None means w = 1 (the plain step x + sigma_i z). Weights may depend on earlier outputs (the mask) and may
carry gradients (training). The same object serves training (generator=None: torch's global RNG) and
certification (a seeded per-input generator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

QUERY_NORMS = ("linf", "l2")


class GaussianQueries:
    """k adaptive Gaussian mechanisms over a batch x (m, *shape); ``sigmas[i]`` is step i's noise level."""

    def __init__(self, x: torch.Tensor, sigmas: Sequence[float | torch.Tensor], norm: str = "linf",
                 generator: torch.Generator | None = None) -> None:
        if norm not in QUERY_NORMS:
            raise ValueError(f"norm must be one of {QUERY_NORMS}, got {norm!r}")
        if x.ndim < 2:
            raise ValueError(f"x must have shape (m, *input_shape), got {tuple(x.shape)}")
        self._x = x
        self.sigmas = list(sigmas)
        self.norm = norm
        self.generator = generator
        self.used: list[int] = []
        self.shape = tuple(x.shape)
        self.dim = int(x[0].numel())

    def __len__(self) -> int:
        return len(self.sigmas)

    def noise_scale(self, step: int, weights: torch.Tensor | None) -> torch.Tensor:
        """Per-sample noise standard deviation (m,) of ``step`` for these weights (see the module docstring)."""
        s = self.sigmas[step]
        m = self.shape[0]
        if weights is None:
            return torch.as_tensor(s, dtype=self._x.dtype, device=self._x.device).expand(m)
        flat = weights.reshape(m, -1)
        if self.norm == "linf":
            return s * flat.norm(dim=1) / math.sqrt(self.dim)
        return s * flat.abs().amax(dim=1)

    def __call__(self, step: int, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Answer query ``step`` (0-based) once: weights * x + noise_scale * z, shape (m, *shape)."""
        if not 0 <= step < len(self.sigmas):
            raise ValueError(f"step must be in [0, {len(self.sigmas)}), got {step!r}")
        if step in self.used:
            raise ValueError(f"step {step} was already queried: each Gaussian step may be used once")
        if weights is not None:
            weights = weights.expand(self.shape) if weights.shape != self.shape else weights
        self.used.append(step)
        z = torch.randn(self.shape, generator=self.generator, device=self._x.device, dtype=self._x.dtype)
        scale = self.noise_scale(step, weights).reshape(-1, *([1] * (len(self.shape) - 1)))
        signal = self._x if weights is None else weights * self._x
        return signal + scale * z
