"""Locally biased randomized smoothing (LBRS; Anderson & Sojoudi), binary classifiers with labels -1 / +1.

Given a soft score g: R^d -> R (hard classifier f = sign g), a stored reference set (X_ref, y_ref) that is
**disjoint from the base model's training data**, a bias level ``bias`` (the paper's alpha; not a failure
probability) and a threat norm ``norm`` in {"l1", "l2", "linf"} with dual norm ||.||_*:

    g_mu(x) = g(x) + bias * y_ref[i*(x)] * ||grad g(x)||_*,      f_mu(x) = sign(g_mu(x)),

where i*(x) is the Euclidean 1-nearest reference point (ties to the lowest index; rho is always l2, whatever
``norm`` is). For a linear g = a.x + b the gradient is a.

Certificates are deterministic and closed form (no Monte Carlo, no failure probability). Guarantee: f_mu(x + d) =
f_mu(x) for every d with ||d|| < radius (strict; the norm is ``norm``):

* Theorem 6 (linear g):   radius = min(|g_mu(x)| / ||a||_*,  r_data(x));
* Theorem 8 (g with an L-Lipschitz gradient in (||.||, ||.||_*), L given by the user):
  radius = min(r_base, r_data), r_base = (sqrt(b^2 + 4 L |g_mu|) - b) / (2 L), b = bias * L + ||grad g(x)||_*;
* r_data(x) = min over opposite-label j of (|x - x_j|_2^2 - |x - x_i|_2^2) / (2 ||x_i - x_j||_*): the
  ||.||-distance from x to the Voronoi bisector of x_i and x_j; +inf when no reference point carries the other
  label (the 1-NN oracle is then constant).

Edge cases: g_mu(x) = 0 gives the label +1 with radius 0 and ``tie=True``; a nearest-neighbour tie between
labels gives r_data = 0. A nonlinear score without L has **no** certificate: ``certify`` raises (ReLU networks
have discontinuous gradients, so no L exists for them; use ``predict`` and empirical attacks there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rlcert.certify.core.classifier import model_dtype

NORMS = ("l1", "l2", "linf")


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return norm


def dual_norm(v: torch.Tensor | np.ndarray, norm: str) -> Any:
    """||v||_* along the last axis, the dual of ``norm``: l2 -> l2, linf -> l1, l1 -> linf."""
    check_norm(norm)
    if isinstance(v, np.ndarray):
        a = np.abs(v)
        return {"l2": np.sqrt((a * a).sum(-1)), "linf": a.sum(-1), "l1": a.max(-1)}[norm]
    a = v.abs()
    if norm == "l2":
        return v.norm(dim=-1)
    return a.sum(-1) if norm == "linf" else a.amax(-1)


def primal_norm(v: np.ndarray, norm: str) -> np.ndarray:
    """||v|| along the last axis in the threat norm."""
    check_norm(norm)
    a = np.abs(v)
    return {"l2": np.sqrt((a * a).sum(-1)), "linf": a.max(-1), "l1": a.sum(-1)}[norm]


def nearest_reference(x: np.ndarray, ref_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean 1-NN: indices i*(x) (B,) (ties to the lowest index) and squared distances (B, N) to every point."""
    d2 = ((x[:, None, :] - ref_x[None, :, :]) ** 2).sum(-1)
    return d2.argmin(axis=1), d2


def data_radius(x: np.ndarray, ref_x: np.ndarray, ref_y: np.ndarray, norm: str,
                nn: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """r_data(x) (B,): the ||.||-distance from x to the nearest bisector between x_i* and an opposite-label x_j.

    x: (B, d), ref_x: (N, d), ref_y: (N,) in {-1, +1}. +inf where every reference point has the label of x_i*.
    """
    idx, d2 = nearest_reference(x, ref_x) if nn is None else nn
    out = np.full(len(x), np.inf)
    for b in range(len(x)):
        i = idx[b]
        opp = np.flatnonzero(ref_y != ref_y[i])
        if opp.size == 0:
            continue
        num = d2[b, opp] - d2[b, i]                       # >= 0 since i is the nearest
        den = 2.0 * dual_norm(ref_x[i][None, :] - ref_x[opp], norm)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)  # duplicate point, other label: 0
        out[b] = max(float(np.min(ratio)), 0.0)
    return out


def linear_base_radius(g_mu: np.ndarray, grad_dual: np.ndarray) -> np.ndarray:
    """Theorem 6's first term |g_mu| / ||a||_*: 0 where g_mu = 0, +inf where a = 0 and g_mu != 0."""
    g_abs = np.abs(np.asarray(g_mu, dtype=np.float64))
    s = np.asarray(grad_dual, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(s > 0, g_abs / np.where(s > 0, s, 1.0), np.inf)
    return np.where(g_abs == 0, 0.0, r)


def nonlinear_base_radius(g_mu: np.ndarray, grad_dual: np.ndarray, bias: float, lipschitz: float) -> np.ndarray:
    """Theorem 8's r_base: the positive root of L r^2 + (bias L + ||grad g||_*) r - |g_mu| = 0."""
    L = float(lipschitz)
    b = bias * L + np.asarray(grad_dual, dtype=np.float64)
    c = np.abs(np.asarray(g_mu, dtype=np.float64))
    # (sqrt(b^2 + 4Lc) - b) / (2L) written without cancellation: 2c / (sqrt(b^2 + 4Lc) + b)
    den = np.sqrt(b * b + 4.0 * L * c) + b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c == 0, 0.0, 2.0 * c / den)


# ---- scores -------------------------------------------------------------------------------------------------
class LinearScore:
    """g(x) = weight . x + bias on flattened inputs; exact gradient; certified by Theorem 6."""

    linear = True

    def __init__(self, weight: Any, bias: float = 0.0) -> None:
        w = np.asarray(weight, dtype=np.float64).reshape(-1)
        if w.size == 0 or not np.isfinite(w).all():
            raise ValueError("weight must be a non-empty finite vector")
        if not math.isfinite(float(bias)):
            raise ValueError(f"bias must be finite, got {bias!r}")
        self.weight, self.bias = w, float(bias)

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """g(x) (B,) and grad g(x) (B, d) for flattened x (B, d)."""
        return x @ self.weight + self.bias, np.broadcast_to(self.weight, x.shape)


def _plain(module: nn.Module, cls: type) -> bool:
    """``module`` is exactly ``cls`` (not a subclass, whose forward may be anything) and no hook can change its
    output (no forward / forward-pre hooks of its own; the global module hooks are checked by ``is_affine``)."""
    return type(module) is cls and not module._forward_hooks and not module._forward_pre_hooks


def is_affine(model: Any) -> bool:
    """True only for exact affine modules, so Theorem 6 applies: an ``nn.Linear`` (the class itself), or an
    ``nn.Sequential`` (the class itself) of ``nn.Linear`` / ``nn.Flatten`` / ``nn.Identity`` layers with at least
    one Linear, none carrying forward hooks (and no global forward hooks registered). Anything else -- a subclass
    of these (``forward`` may be ``sin(3 * linear(x))``), TorchScript, a parametrized layer -- counts as nonlinear:
    declare an affine model yourself with ``linear=True``."""
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        return False
    if not isinstance(model, nn.Module):
        return False
    if _plain(model, nn.Linear):
        return True
    if _plain(model, nn.Sequential) and len(model) > 0:
        layers = list(model)
        return all(_plain(m, nn.Linear) or _plain(m, nn.Flatten) or _plain(m, nn.Identity) for m in layers) and any(
            _plain(m, nn.Linear) for m in layers)
    return False


class TorchScore:
    """A differentiable ``nn.Module`` (or callable) as the score: outputs (B,) or (B, 1) are g itself; (B, 2) logits
    give g = logit[1] - logit[0] (class 1 <-> label +1). Gradients by autograd, in eval mode. ``linear`` defaults
    to ``is_affine(model)`` (exact nn.Linear / nn.Sequential of Linear, Flatten, Identity only); ``linear=True``
    declares an affine model yourself (Theorem 6 is then your claim). A nonlinear score needs a user-given
    gradient-Lipschitz constant (Theorem 8)."""

    def __init__(self, model: nn.Module | Any, input_shape: tuple[int, ...] | None = None,
                 device: str | torch.device = "cpu", linear: bool | None = None) -> None:
        self.model, self.input_shape, self.device = model, input_shape, torch.device(device)
        self.linear = is_affine(model) if linear is None else bool(linear)

    def score_torch(self, xt: torch.Tensor) -> torch.Tensor:
        """g on a torch batch of flattened inputs (B, d), differentiable."""
        z = xt if self.input_shape is None else xt.reshape(len(xt), *self.input_shape)
        out = self.model(z)
        if out.ndim == 2 and out.shape[1] == 2:
            return out[:, 1] - out[:, 0]
        if out.ndim == 2 and out.shape[1] == 1:
            return out[:, 0]
        if out.ndim == 1:
            return out
        raise ValueError(f"score model must return (B,), (B, 1) or (B, 2) logits, got {tuple(out.shape)}")

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        was = getattr(self.model, "training", None)
        if was is not None:
            self.model.eval()
        try:
            xt = torch.as_tensor(x, dtype=model_dtype(self.model), device=self.device).requires_grad_(True)
            with torch.enable_grad():
                g = self.score_torch(xt)
                (grad,) = torch.autograd.grad(g.sum(), xt)
        finally:
            if was:
                self.model.train()
        return g.detach().double().cpu().numpy(), grad.detach().double().cpu().numpy()


# ---- the classifier and its certificate -------------------------------------------------------------------
@dataclass(frozen=True)
class LBRSResult:
    """Per-input arrays (B,): label in {-1, +1}; radius (certified, ||.|| in ``norm``); r_base, r_data; g_mu and
    g (base score); nn_index i*(x); tie (g_mu == 0: label +1 by convention, radius 0)."""

    label: np.ndarray
    radius: np.ndarray
    r_base: np.ndarray
    r_data: np.ndarray
    g_mu: np.ndarray
    g: np.ndarray
    nn_index: np.ndarray
    tie: np.ndarray
    norm: str


class LocallyBiasedSmoothing:
    """f_mu(x) = sign(g(x) + bias * y_ref[i*(x)] * ||grad g(x)||_*) with its closed-form certificate.

    score: ``LinearScore`` (Theorem 6) or ``TorchScore`` / any object with ``value_and_grad(x (B, d))`` and
    ``linear``; ref_x (N, ...) and ref_y (N,) in {-1, +1}: the stored reference set (keep it disjoint from the
    base model's training data); bias >= 0; norm in {"l1", "l2", "linf"}; lipschitz: L of Assumption 7
    (||grad g(x) - grad g(x')||_* <= L ||x - x'||), required to certify a nonlinear score.
    """

    def __init__(self, score: Any, ref_x: Any, ref_y: Any, bias: float, norm: str = "l2",
                 lipschitz: float | None = None) -> None:
        self.score = score
        ref_x = np.asarray(ref_x, dtype=np.float64)
        if ref_x.ndim < 2 or len(ref_x) == 0:
            raise ValueError(f"ref_x must have shape (N, ...) with N >= 1, got {ref_x.shape}")
        self.ref_x = ref_x.reshape(len(ref_x), -1)
        if not np.isfinite(self.ref_x).all():
            raise ValueError("ref_x contains NaN or infinite values")
        ref_y = np.asarray(ref_y)
        if ref_y.shape != (len(ref_x),) or not np.isin(ref_y, (-1, 1)).all():
            raise ValueError(f"ref_y must have shape ({len(ref_x)},) with labels in {{-1, +1}}")
        self.ref_y = ref_y.astype(np.int64)
        b = float(bias)
        if not (math.isfinite(b) and b >= 0):
            raise ValueError(f"bias must be a finite number >= 0, got {bias!r}")
        self.bias = b
        self.norm = check_norm(norm)
        if lipschitz is not None:
            L = float(lipschitz)
            if not (math.isfinite(L) and L > 0):
                raise ValueError(f"lipschitz must be a finite number > 0, got {lipschitz!r}")
            lipschitz = L
        self.lipschitz = lipschitz

    def _flat(self, x: Any) -> np.ndarray:
        x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
        x = x.reshape(len(x), -1) if x.ndim >= 2 else x.reshape(1, -1)
        if x.shape[1] != self.ref_x.shape[1]:
            raise ValueError(f"x has {x.shape[1]} features per input, the reference set {self.ref_x.shape[1]}")
        if not np.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values")
        return x

    def decision(self, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple]:
        """g_mu (B,), g (B,), ||grad g||_* (B,), i*(x) (B,), and the NN search (idx, d2) for x (B, ...)."""
        xf = self._flat(x)
        g, grad = self.score.value_and_grad(xf)
        s = dual_norm(np.asarray(grad, dtype=np.float64), self.norm)
        nn = nearest_reference(xf, self.ref_x)
        g_mu = g + self.bias * self.ref_y[nn[0]] * s
        return g_mu, g, s, nn[0], nn

    def predict(self, x: Any) -> np.ndarray:
        """Labels f_mu(x) in {-1, +1} (B,); g_mu = 0 gives +1."""
        g_mu = self.decision(x)[0]
        return np.where(g_mu >= 0, 1, -1)

    def certify(self, x: Any) -> LBRSResult:
        """Label and certified radius (Theorem 6 for a linear score, Theorem 8 with ``lipschitz`` otherwise).

        Raises ValueError for a nonlinear score without ``lipschitz``: no radius is called certified then.
        """
        linear = bool(getattr(self.score, "linear", False))
        if not linear and self.lipschitz is None:
            raise ValueError("a nonlinear score has no LBRS certificate without lipschitz= (the gradient-Lipschitz "
                             "constant L of Theorem 8; ReLU networks have none): use predict() instead")
        xf = self._flat(x)
        g_mu, g, s, idx, nn = self.decision(xf)
        r_data = data_radius(xf, self.ref_x, self.ref_y, self.norm, nn)
        if linear:
            r_base = linear_base_radius(g_mu, s)
        else:
            r_base = nonlinear_base_radius(g_mu, s, self.bias, self.lipschitz)
        tie = g_mu == 0
        radius = np.where(tie, 0.0, np.minimum(r_base, r_data))
        return LBRSResult(label=np.where(g_mu >= 0, 1, -1), radius=radius, r_base=r_base, r_data=r_data,
                          g_mu=g_mu, g=g, nn_index=idx, tie=tie, norm=self.norm)
