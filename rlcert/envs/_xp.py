"""The few array and random operations the env rules need, for numpy arrays and torch tensors alike.

Every dynamics, reward and goal-sampling rule of :mod:`rlcert.envs` is written once in terms of Python operators
(``+ - * / % < == &``) and the functions below, so the gymnasium envs (numpy, one copy) and their torch twins
(:mod:`rlcert.envs.torch_vector`, n copies) run the same code. Each function dispatches on its first argument
(a ``torch.Tensor`` -> torch, anything else -> numpy); a random source is a ``numpy.random.Generator`` or a
``torch.Generator`` (on the device the tensors live on). Numerical results agree bit for bit between the two
namespaces for the arithmetic used here (IEEE operations, ``sqrt``), up to the last bit of ``cos``/``sin``, which
the libraries round differently in a few cases of 1000 (float64; invisible in the float32 observations, tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th

Array = Any  # numpy.ndarray or torch.Tensor
Rng = Any  # numpy.random.Generator or torch.Generator


def is_torch(x: Any) -> bool:
    return isinstance(x, (th.Tensor, th.Generator))


def f64(x: Array) -> Array:
    """x as float64 (a tensor stays a tensor)."""
    return x.to(th.float64) if isinstance(x, th.Tensor) else np.asarray(x, dtype=np.float64)


def f32(x: Array) -> Array:
    return x.to(th.float32) if isinstance(x, th.Tensor) else np.asarray(x, dtype=np.float32)


def i64(x: Array) -> Array:
    """x as int64 (a tensor stays a tensor)."""
    return x.to(th.int64) if isinstance(x, th.Tensor) else np.asarray(x).astype(np.int64)


def clip(x: Array, low: float, high: float) -> Array:
    return th.clamp(x, low, high) if isinstance(x, th.Tensor) else np.clip(x, low, high)


def amax(x: Array, axis: int = -1) -> Array:
    return th.amax(x, dim=axis) if isinstance(x, th.Tensor) else np.max(x, axis=axis)


def all_(x: Array, axis: int = -1) -> Array:
    return th.all(x, dim=axis) if isinstance(x, th.Tensor) else np.all(x, axis=axis)


def sum_(x: Array, axis: int = -1) -> Array:
    return th.sum(x, dim=axis) if isinstance(x, th.Tensor) else np.sum(x, axis=axis)


def rint(x: Array) -> Array:
    """Round half to even (numpy's rint, torch's round)."""
    return th.round(x) if isinstance(x, th.Tensor) else np.rint(x)


def sqrt(x: Array) -> Array:
    return th.sqrt(x) if isinstance(x, th.Tensor) else np.sqrt(x)


def maximum(x: Array, value: float) -> Array:
    return th.clamp(x, min=value) if isinstance(x, th.Tensor) else np.maximum(x, value)


def cos(x: Array) -> Array:
    return th.cos(x) if isinstance(x, th.Tensor) else np.cos(x)


def sin(x: Array) -> Array:
    return th.sin(x) if isinstance(x, th.Tensor) else np.sin(x)


def stack(xs: list[Array], axis: int = -1) -> Array:
    return th.stack(xs, dim=axis) if isinstance(xs[0], th.Tensor) else np.stack(xs, axis=axis)


def concat(xs: list[Array], axis: int = -1) -> Array:
    return th.cat(xs, dim=axis) if isinstance(xs[0], th.Tensor) else np.concatenate(xs, axis=axis)


def one_hot(index: Array, n: int, like: Array) -> Array:
    """1.0 at ``index`` along a new last axis of length n, in ``like``'s dtype: (...) -> (..., n)."""
    if isinstance(like, th.Tensor):
        idx = th.as_tensor(index, device=like.device).long()
        return (th.arange(n, device=like.device) == idx.unsqueeze(-1)).to(like.dtype)
    return (np.arange(n) == np.asarray(index)[..., None]).astype(like.dtype)


def unique_rows_in_order(points: Array) -> Array:
    """The distinct rows of an integer array (k, 2), in order of first appearance."""
    if isinstance(points, th.Tensor):
        _, inverse = th.unique(points, dim=0, return_inverse=True)
        first = th.full((int(inverse.max()) + 1,), points.shape[0], dtype=th.long, device=points.device)
        first = first.scatter_reduce(0, inverse, th.arange(points.shape[0], device=points.device), "amin")
        return points[th.sort(first).values]
    _, first = np.unique(points, axis=0, return_index=True)
    return points[np.sort(first)]


# ---- random draws: one call per rule, numpy's stream unchanged -----------------------------------------------------
def integers(rng: Rng, low: int, high: int) -> int:
    """One integer uniform in {low, ..., high - 1}."""
    if isinstance(rng, th.Generator):
        return int(th.randint(low, high, (1,), generator=rng, device=rng.device))
    return int(rng.integers(low, high))


def uniform(rng: Rng, low: float, high: float, size: int) -> Array:
    """(size,) float64 uniform in [low, high)."""
    if isinstance(rng, th.Generator):
        return low + (high - low) * th.rand(size, generator=rng, dtype=th.float64, device=rng.device)
    return rng.uniform(low, high, size=size)


def bits(rng: Rng, size: int) -> Array:
    """(size,) float32 uniform in {0, 1}."""
    if isinstance(rng, th.Generator):
        return th.randint(0, 2, (size,), generator=rng, device=rng.device).to(th.float32)
    return rng.integers(0, 2, size).astype(np.float32)


def sample_without_replacement(rng: Rng, n: int, k: int) -> Array:
    """k distinct indices of range(n), a uniformly random ordered k-subset."""
    if isinstance(rng, th.Generator):
        return th.randperm(n, generator=rng, device=rng.device)[:k]
    return rng.choice(n, size=k, replace=False)


def geometric(rng: Rng, p: float) -> int:
    """One draw of Geometric(p) on {1, 2, ...}."""
    if isinstance(rng, th.Generator):
        return int(th.empty(1, dtype=th.float64, device=rng.device).geometric_(p, generator=rng))
    return int(rng.geometric(p))


def normal(rng: Rng, std: float, shape: tuple[int, ...]) -> Array:
    """float64 N(0, std^2) of ``shape``."""
    if isinstance(rng, th.Generator):
        return std * th.randn(shape, generator=rng, dtype=th.float64, device=rng.device)
    return rng.normal(0.0, std, size=shape)


def dirichlet_ones(rng: Rng, k: int) -> Array:
    """(k,) float64 ~ Dirichlet(1, ..., 1) (torch: normalised Exp(1) draws)."""
    if isinstance(rng, th.Generator):
        e = th.empty(k, dtype=th.float64, device=rng.device).exponential_(generator=rng)
        return e / e.sum()
    return rng.dirichlet(np.ones(k))


def categorical(rng: Rng, weights: Array, size: int) -> Array:
    """(size,) indices drawn with replacement with probabilities ``weights`` (k,)."""
    if isinstance(rng, th.Generator):
        return th.multinomial(weights, size, replacement=True, generator=rng)
    return rng.choice(len(weights), size=size, p=weights)
