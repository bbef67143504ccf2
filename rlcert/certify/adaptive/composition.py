"""f-DP algebra of adaptive randomized smoothing (ARS; Shaikh et al.): Gaussian trade-off curves, composition,
budget split and the radius of a k-step adaptive Gaussian pipeline.

A step that adds N(0, s^2 I) to a query of l2 sensitivity r is G_{r/s}-DP. Composing k such steps adaptively (each
step may depend on the outputs of earlier ones, with its own mu fixed) is G_mu-DP with mu = sqrt(sum mu_i^2)
(Dong et al. Cor. 3.3). For sensitivity r in every step this is the Gaussian mechanism at
sigma_eff = 1 / sqrt(sum 1 / sigma_i^2), so Cohen's radius holds with sigma_eff (Prop. 2.1):

    r_2 = sigma_eff / 2 * (Phi^-1(p_lower) - Phi^-1(p_upper))   (= sigma_eff Phi^-1(p_lower) if p_upper = 1 - p_lower)

For an l-infinity adversary a step whose query is w * X (w a mask computed from earlier outputs) has l2
sensitivity ||w||_2 * r_inf, so noise of standard deviation sigma_i ||w||_2 / sqrt(d) makes it G_{sqrt(d) r_inf /
sigma_i}-DP whatever w is; the l-infinity radius is r_2 / sqrt(d) with d the **full** input dimension (Prop. 2.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm as normal

from rlcert.certify.core.certificate import radius_or_abstain
from rlcert.certify.core.checks import check_positive


def gaussian_tradeoff(a, mu: float):
    """G_mu(a) = Phi(Phi^-1(1 - a) - mu): the smallest type-II error of a level-a test of N(0,1) vs N(mu,1)."""
    return normal.cdf(normal.ppf(1.0 - np.asarray(a, dtype=np.float64)) - mu)


def composed_mu(mus: Sequence[float]) -> float:
    """mu of the adaptive composition of G_{mu_i}-DP steps: sqrt(sum mu_i^2)."""
    return float(math.sqrt(sum(float(m) ** 2 for m in mus)))


def effective_sigma(sigmas: Sequence[float]) -> float:
    """sigma_eff = 1 / sqrt(sum 1 / sigma_i^2); each sigma_i > 0 (math.inf allowed: a step that adds nothing)."""
    if len(sigmas) == 0:
        raise ValueError("sigmas must hold at least one noise level")
    total = 0.0
    for i, s in enumerate(sigmas):
        s = float(s)
        if not (s > 0):  # NaN, 0, negative
            raise ValueError(f"sigmas[{i}] must be > 0, got {s!r}")
        total += 0.0 if math.isinf(s) else 1.0 / (s * s)
    if total == 0.0:
        raise ValueError("at least one of sigmas must be finite")
    return 1.0 / math.sqrt(total)


def split_sigma2(sigma: float, sigma1: float) -> float:
    """sigma_2 with 1/sigma_1^2 + 1/sigma_2^2 = 1/sigma^2 (total noise sigma); requires sigma_1 > sigma."""
    sigma = check_positive(sigma, "sigma")
    s1 = float(sigma1)
    if not (s1 > sigma):
        raise ValueError(f"sigma1 must be > sigma = {sigma} (the total noise level), got {sigma1!r}")
    if math.isinf(s1):
        return sigma
    return 1.0 / math.sqrt(1.0 / sigma ** 2 - 1.0 / s1 ** 2)


def adaptive_radius(p_lower, sigmas: Sequence[float], p_upper=None, dim: int | None = None):
    """Certified radius of a k-step adaptive Gaussian pipeline (Prop. 2.1 / 2.2).

    p_lower: lower bound on the top-class probability (> 1/2, or > p_upper); p_upper: upper bound on every other
    class (default 1 - p_lower). dim=None gives the l2 radius; dim=d gives the l-infinity radius (l2 / sqrt(d), d
    the full input dimension, for steps whose noise is scaled by ||w||_2 / sqrt(d)). ABSTAIN (-1) where the bound
    does not certify (p_lower <= 1/2, or p_lower <= p_upper; ``radius_or_abstain``).
    """
    s = effective_sigma(sigmas)
    p_lower = np.asarray(p_lower, dtype=np.float64)
    if p_upper is None:
        r = s * normal.ppf(p_lower)
    else:
        r = 0.5 * s * (normal.ppf(p_lower) - normal.ppf(np.asarray(p_upper, dtype=np.float64)))
    if dim is not None:
        if int(dim) < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        r = r / math.sqrt(int(dim))
    return radius_or_abstain(r, p_lower, p_upper)
