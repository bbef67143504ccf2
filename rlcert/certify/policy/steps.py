"""Per-step certificates at given observations.

Discrete actions: the smoothed action g(x) = argmax_a P[f(x + noise) = a] with its certified radius, through the
``rlcert.certify`` smoothing certifiers unchanged (CERTIFY of Cohen et al.: n0 selection + n estimation samples,
one-sided Clopper-Pearson at ``alpha``; Gaussian -> l2 radius, Laplace -> l1 radius), with the noise restricted to
the masked coordinates (``MaskedCertifier``). The radius bounds the norm of the perturbation of the masked
coordinates only; the other coordinates are not perturbed by the noise nor by the attacker.

Continuous actions (``certify_continuous``), Gaussian noise only: the smoothed action
F(x) = E[f(x + noise)] of a policy with actions in the box [a, b]. Per coordinate j, y_j = (f_j - a_j) / (b_j - a_j)
lies in [0, 1], and H_j(x) = E[y_j(x + noise)] satisfies, for every delta (on the masked coordinates) with
||delta||_2 <= eps (Salman et al. 2019, Lemma 2; Kumar et al. 2020: Phi^-1(H_j) is 1/sigma-Lipschitz),

    Phi(Phi^-1(H_j(x)) - eps / sigma) <= H_j(x + delta) <= Phi(Phi^-1(H_j(x)) + eps / sigma).

H_j(x) is replaced by confidence bounds p_lower_j <= H_j(x) <= p_upper_j from n noisy samples (``bound``):

* ``"hoeffding"`` (default): p_lower/upper = mean -/+ sqrt(ln(1/delta) / (2 n)) (Hoeffding, bounded in [0, 1]);
* ``"bernstein"``: mean -/+ (sqrt(2 V ln(2/delta) / n) + 7 ln(2/delta) / (3 (n - 1))), V the unbiased sample
  variance (Maurer & Pontil 2009, Theorem 4; tighter when the actions hardly vary under noise);

each one-sided bound at delta = alpha / (2 m) (Bonferroni over the 2 m bounds of an m-dimensional action), so
**with probability >= 1 - alpha over the sampling, all 2 m certified bounds of one observation hold together, for
every radius eps and every perturbation within it**:

    lower_j(eps) = a_j + (b_j - a_j) Phi(Phi^-1(p_lower_j) - eps / sigma)
    upper_j(eps) = a_j + (b_j - a_j) Phi(Phi^-1(p_upper_j) + eps / sigma).

``certified_set_radius`` turns these into the largest eps for which the whole box [lower(eps), upper(eps)] lies
inside a user-given convex set (``Ball``, ``Cone``), hence so does the smoothed action.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import norm as normal

from rlcert.certify import Certificate
from rlcert.certify.core.checks import check_count, check_positive
from rlcert.certify.core.sampling import derive_seed, make_generators
from rlcert.certify.core.smoothing import CERTIFY_STREAM, SmoothingCertifier
from rlcert.certify.core.stats import check_alpha
from rlcert.certify.policy.adaptor import PolicyFunction
from rlcert.certify.policy.noise import MaskedNoise
from rlcert.certify.randomized.gaussian import GaussianNoise

BOUNDS = ("hoeffding", "bernstein")


class MaskedCertifier(SmoothingCertifier):
    """A ``rlcert.certify`` smoothing certifier whose noise is a ``MaskedNoise``: it covers only the masked
    coordinates of the flat observation. Same sampling protocol and statistics as ``base`` (its n0, n, alpha,
    seed, ...); the radius is the masked noise's, i.e. the base noise's."""

    name = "masked"
    norm = "l2"

    def __init__(self, base: SmoothingCertifier, noise: MaskedNoise) -> None:  # noqa: D107  (no re-validation)
        for attr in ("n0", "n", "alpha", "batch", "seed", "cp_mode", "two_bound"):
            setattr(self, attr, getattr(base, attr))
        self.base = base
        self.noise = noise
        self.norm = base.norm  # type: ignore[misc]
        self.name = base.name  # type: ignore[misc]


def certify_discrete(policy: PolicyFunction, certifier: SmoothingCertifier, x: torch.Tensor,
                     seeds: Sequence[int] | None = None) -> list[Certificate]:
    """Smoothed action and certified radius at each flat observation x (N, D), discrete actions.

    ``certifier``: e.g. ``GaussianCertifier(sigma, n0=, n=, alpha=)`` (l2) or ``LaplaceCertifier`` (l1); its
    guarantee (``rlcert.certify.core.smoothing``) holds for perturbations of the masked coordinates.
    """
    if not policy.discrete:
        raise ValueError("certify_discrete needs a policy with discrete actions; use certify_continuous")
    masked = MaskedCertifier(certifier, MaskedNoise(certifier.noise, policy.layout))
    return masked.certify(policy, x, seeds=seeds)


@dataclass(frozen=True)
class ActionBounds:
    """Certified bounds of the smoothed action at one observation (arrays of shape (m,)).

    clean: the base policy's action f(x); mean: Monte Carlo estimate of the smoothed action F(x);
    p_lower/p_upper: confidence bounds on the normalised smoothed action H(x) in [0, 1]; low/high: the action box.
    ``at(eps)`` gives the certified (lower, upper) of F(x + delta), ||delta||_2 <= eps, each of shape (*eps, m).
    """

    clean: np.ndarray
    mean: np.ndarray
    p_lower: np.ndarray
    p_upper: np.ndarray
    low: np.ndarray
    high: np.ndarray
    sigma: float
    alpha: float
    n: int
    bound: str

    def at(self, eps: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = np.asarray(eps, dtype=np.float64)[..., None] / self.sigma
        lo = self.low + (self.high - self.low) * normal.cdf(normal.ppf(self.p_lower) - e)
        hi = self.low + (self.high - self.low) * normal.cdf(normal.ppf(self.p_upper) + e)
        return lo, hi


def confidence_slack(mean: np.ndarray, var: np.ndarray, n: int, delta: float, bound: str) -> np.ndarray:
    """Half-width of a one-sided level-``delta`` confidence bound on the mean of [0, 1] variables (see module)."""
    if bound == "hoeffding":
        return np.full_like(np.asarray(mean, dtype=np.float64), math.sqrt(math.log(1.0 / delta) / (2.0 * n)))
    if bound == "bernstein":
        if n < 2:
            raise ValueError("n must be >= 2 for the empirical-Bernstein bound")
        log = math.log(2.0 / delta)
        return np.sqrt(2.0 * np.maximum(var, 0.0) * log / n) + 7.0 * log / (3.0 * (n - 1))
    raise ValueError(f"bound must be one of {BOUNDS}, got {bound!r}")


@torch.no_grad()
def sample_action_moments(policy: PolicyFunction, x: torch.Tensor, num: int, noise: MaskedNoise,
                          generators: Sequence[torch.Generator], batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Sum and sum of squares (float64, (N, m)) of the normalised actions y = (f - low) / (high - low) over
    ``num`` noisy copies of each flat observation of x (N, D). Input i uses only ``generators[i]``, in chunks of
    at most ``batch`` samples, so its result does not depend on the other inputs (as in the certify core)."""
    n_inputs, m = x.shape[0], policy.action_dim
    s1 = torch.zeros((n_inputs, m), dtype=torch.float64, device=x.device)
    s2 = torch.zeros_like(s1)
    low = policy.low.to(x.device, torch.float64)
    span = policy.high.to(x.device, torch.float64) - low
    for i in range(n_inputs):
        left = num
        while left > 0:
            k = min(batch, left)
            buf = torch.empty((k, x.shape[1]), dtype=x.dtype, device=x.device)
            noise.perturb_(buf, x[i], generators[i])
            y = ((policy(buf).double() - low) / span).clamp(0.0, 1.0)
            s1[i] += y.sum(0)
            s2[i] += (y * y).sum(0)
            left -= k
    return s1.cpu().numpy(), s2.cpu().numpy()


def certify_continuous(policy: PolicyFunction, sigma: float, x: torch.Tensor, n: int = 10_000,
                       alpha: float = 0.001, bound: str = "hoeffding", seed: int = 0,
                       seeds: Sequence[int] | None = None, batch: int = 1000) -> list[ActionBounds]:
    """Certified bounds of each coordinate of the smoothed action, Gaussian noise N(0, sigma^2) on the masked
    coordinates; see the module docstring for the guarantee (all bounds of one observation hold together with
    probability >= 1 - alpha). x: flat observations (N, D). seeds: one int per observation (default 0..N-1)."""
    if policy.discrete:
        raise ValueError("certify_continuous needs a policy with continuous (Box) actions; use certify_discrete")
    sigma = check_positive(sigma, "sigma")
    n = check_count(n, "n")
    alpha = check_alpha(alpha)
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {BOUNDS}, got {bound!r}")
    x = x.to(policy.device).float()
    noise = MaskedNoise(GaussianNoise(sigma=sigma), policy.layout)
    idx = range(x.shape[0]) if seeds is None else seeds
    gens = make_generators([derive_seed(seed, int(i), CERTIFY_STREAM) for i in idx], x.device)
    s1, s2 = sample_action_moments(policy, x, n, noise, gens, batch)
    mean = s1 / n
    var = (s2 - n * mean * mean) / max(n - 1, 1)
    delta = alpha / (2 * policy.action_dim)
    slack = confidence_slack(mean, var, n, delta, bound)
    with torch.no_grad():
        clean = policy(x).cpu().numpy().astype(np.float64)
    low, high = policy.low.cpu().numpy().astype(np.float64), policy.high.cpu().numpy().astype(np.float64)
    return [ActionBounds(clean=clean[i], mean=low + (high - low) * mean[i],
                         p_lower=np.clip(mean[i] - slack[i], 0.0, 1.0), p_upper=np.clip(mean[i] + slack[i], 0.0, 1.0),
                         low=low, high=high, sigma=sigma, alpha=alpha, n=n, bound=bound)
            for i in range(x.shape[0])]


# ---- action sets and the largest certified radius --------------------------------------------------------------
class Ball:
    """{a : ||a - center||_p <= radius}, p in {"l2", "linf"}."""

    def __init__(self, center: Any, radius: float, norm: str = "l2") -> None:
        self.center = np.asarray(center, dtype=np.float64)
        self.radius = check_positive(radius, "radius")
        if norm not in ("l2", "linf"):
            raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
        self.norm = norm

    def contains_box(self, lo: np.ndarray, hi: np.ndarray) -> bool:
        far = np.maximum(np.abs(lo - self.center), np.abs(hi - self.center))  # farthest corner, per coordinate
        d = float(np.sqrt(np.sum(far ** 2))) if self.norm == "l2" else float(np.max(far))
        return d <= self.radius


class Cone:
    """{a : angle(a - apex, axis) <= half_angle} (degrees, < 90), a convex cone; ``apex`` defaults to 0."""

    def __init__(self, axis: Any, half_angle: float, apex: Any | None = None) -> None:
        self.axis = np.asarray(axis, dtype=np.float64)
        if not np.linalg.norm(self.axis) > 0:
            raise ValueError("axis must be a non-zero vector")
        self.axis = self.axis / np.linalg.norm(self.axis)
        self.half_angle = check_positive(half_angle, "half_angle")
        if self.half_angle >= 90:
            raise ValueError(f"half_angle must be in (0, 90) degrees, got {half_angle!r}")
        self.apex = np.zeros_like(self.axis) if apex is None else np.asarray(apex, dtype=np.float64)

    def contains_box(self, lo: np.ndarray, hi: np.ndarray) -> bool:
        m = len(lo)
        if m > 16:
            raise ValueError(f"Cone.contains_box enumerates 2^m corners; m must be <= 16, got {m}")
        corners = np.array(list(itertools.product(*zip(lo, hi)))) - self.apex  # convex set: corners suffice
        norms = np.linalg.norm(corners, axis=1)
        cos = np.cos(np.deg2rad(self.half_angle))
        return bool(np.all(corners @ self.axis >= cos * norms - 1e-12))


def certified_set_radius(bounds: ActionBounds, action_set: Ball | Cone, tol: float = 1e-6) -> float:
    """Largest eps (within ``tol * sigma``, rounded down) such that the certified box [lower(eps), upper(eps)]
    lies in the convex ``action_set`` -- so the smoothed action at every x + delta, ||delta||_2 <= eps, does.
    Returns -1.0 if not even the box at eps = 0 is inside, ``inf`` if the whole action box is inside."""
    def inside(e: float) -> bool:
        lo, hi = bounds.at(e)
        return action_set.contains_box(lo, hi)

    if not inside(0.0):
        return -1.0
    if action_set.contains_box(bounds.low, bounds.high):
        return math.inf
    lo, hi = 0.0, bounds.sigma
    while inside(hi):
        lo, hi = hi, 2 * hi
        if hi > 1e3 * bounds.sigma:  # bounds saturate numerically long before this
            return lo
    while hi - lo > tol * bounds.sigma:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if inside(mid) else (lo, mid)
    return lo
