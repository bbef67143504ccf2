"""Episode certificates of policy smoothing (Kumar, Levine & Feizi, ICLR 2022): pure functions of returns.

Setting: the smoothed policy sees every observation with Gaussian noise N(0, sigma^2) on the masked coordinates;
an adversary perturbs the observations (adaptively) with a **total** l2 budget eps over the episode,
sqrt(sum_t ||delta_t||^2) <= eps. For every threshold t, the probability that the return reaches t satisfies
(their Theorem 1, adaptive Neyman-Pearson)

    P_adv(R >= t) >= Phi(Phi^-1(P_clean(R >= t)) - eps / sigma),

where P_clean is the law of the return of the smoothed policy without attacker. With returns bounded below by a
known ``r_min``, E[R] = r_min + int_{r_min}^inf P(R > t) dt, so lower confidence bounds on the tail probabilities,
shifted, integrate to a certified lower bound on the expected return under attack. Two ways to get tail bounds
from N i.i.d. episode returns, each holding for all thresholds together with probability >= 1 - alpha:

* ``certify_return_dkw``: the DKW band (Massart's constant), P(R > t) >= P_hat(R > t) - sqrt(ln(2/alpha) / (2N))
  for all t at once; the step function is integrated exactly over the sorted returns.
* ``certify_return_cp``: fixed levels l_1 < ... < l_K (e.g. every integer return), one-sided Clopper-Pearson lower
  bounds on P(R >= l_k) at alpha / K each (Bonferroni), and E[R] >= r_min + sum_k (l_k - l_{k-1}) P(R >= l_k)
  (l_0 = r_min; exact when the returns are integers and the levels are r_min+1, ..., r_max).

Per-step budget: an adversary allowed eps per step over T steps has total budget sqrt(T) * eps
(``total_budget``). With eps = 0 both certificates are plain lower confidence bounds on the clean expected return.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm as normal

from rlcert.certify.core.checks import check_positive
from rlcert.certify.core.stats import check_alpha, cp_lower


def phi_shift(p, eps, sigma: float) -> np.ndarray:
    """Phi(Phi^-1(p) - eps / sigma): the worst-case probability of an event of clean probability p under an l2
    budget eps (elementwise over broadcast p, eps; p = 0 -> 0, p = 1 -> 1 for finite eps)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    return normal.cdf(normal.ppf(p) - np.asarray(eps, dtype=np.float64) / sigma)


def total_budget(eps, horizon: int, per_step: bool) -> np.ndarray:
    """Total l2 budget of an episode: eps itself, or sqrt(horizon) * eps when eps is a per-step budget."""
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
    e = np.asarray(eps, dtype=np.float64)
    return e * math.sqrt(horizon) if per_step else e


def _check(returns, eps, sigma: float, alpha: float, r_min: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if r.size == 0 or not np.all(np.isfinite(r)):
        raise ValueError("returns must be a non-empty array of finite numbers")
    if np.any(r < r_min):
        raise ValueError(f"r_min={r_min} must be a lower bound of every return, got min return {r.min()}")
    e = np.asarray(eps, dtype=np.float64)
    if np.any(~np.isfinite(e)) or np.any(e < 0):
        raise ValueError(f"eps must be finite and >= 0, got {eps!r}")
    check_positive(sigma, "sigma")
    check_alpha(alpha)
    return r, e


def dkw_slack(n: int, alpha: float) -> float:
    """sqrt(ln(2/alpha) / (2 n)): the DKW-Massart band half-width at level 1 - alpha."""
    return math.sqrt(math.log(2.0 / check_alpha(alpha)) / (2.0 * n))


def certify_return_dkw(returns: Sequence[float], eps, sigma: float, alpha: float = 0.05,
                       r_min: float = 0.0) -> np.ndarray:
    """Certified lower bound on the expected return for each total budget in ``eps`` (array, same shape).

    returns: N i.i.d. returns of the smoothed policy; r_min: a known lower bound on every return. Holds with
    probability >= 1 - alpha (one DKW band for all eps)."""
    r, e = _check(returns, eps, sigma, alpha, r_min)
    n = r.size
    u = np.unique(np.concatenate([[r_min], r]))               # u_0 = r_min < u_1 < ... (distinct)
    tail = np.array([(r > v).sum() for v in u[:-1]]) / n      # P_hat(R > t) on [u_k, u_{k+1})
    widths = np.diff(u)
    p_low = np.maximum(tail - dkw_slack(n, alpha), 0.0)
    out = r_min + (widths * phi_shift(p_low, e[..., None], sigma)).sum(axis=-1)
    return np.asarray(out)


def integer_levels(r_min: float, r_max: float) -> np.ndarray:
    """Levels r_min+1, ..., r_max for integer-valued returns (r_min, r_max integers)."""
    if not (float(r_min).is_integer() and float(r_max).is_integer()) or r_max <= r_min:
        raise ValueError(f"r_min < r_max must be integers for integer levels, got {r_min!r}, {r_max!r}")
    return np.arange(int(r_min) + 1, int(r_max) + 1, dtype=np.float64)


def certify_return_cp(returns: Sequence[float], eps, sigma: float, alpha: float = 0.05, r_min: float = 0.0,
                      levels: Sequence[float] | None = None, r_max: float | None = None) -> np.ndarray:
    """Certified lower bound on the expected return (Bonferroni-Clopper-Pearson over fixed ``levels``).

    levels: increasing thresholds > r_min fixed before seeing the returns (default ``integer_levels(r_min,
    r_max)``). Holds with probability >= 1 - alpha for all eps."""
    r, e = _check(returns, eps, sigma, alpha, r_min)
    if levels is None:
        if r_max is None:
            raise ValueError("give levels or r_max (the largest possible return) for the Clopper-Pearson variant")
        levels = integer_levels(r_min, r_max)
    lv = np.asarray(levels, dtype=np.float64).reshape(-1)
    if lv.size == 0 or np.any(np.diff(lv) <= 0) or lv[0] <= r_min:
        raise ValueError("levels must be strictly increasing and > r_min")
    n, k = r.size, lv.size
    hits = np.array([(r >= v).sum() for v in lv])
    p_low = np.atleast_1d(cp_lower(hits, n, alpha / k))
    widths = np.diff(np.concatenate([[r_min], lv]))
    return np.asarray(r_min + (widths * phi_shift(p_low, e[..., None], sigma)).sum(axis=-1))
