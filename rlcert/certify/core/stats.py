"""Statistics for randomized certification: Clopper-Pearson bounds and binomial tests, in one place.

Alpha convention (Cohen et al. 2019): ``alpha`` is the failure probability of a **one-sided** bound. The lower
bound ``cp_lower(k, n, alpha)`` satisfies P(p >= cp_lower) >= 1 - alpha, and equals the lower end of the
two-sided level-2*alpha Clopper-Pearson interval (``proportion_confint(k, n, alpha=2*alpha, method="beta")[0]``
in Cohen's code). ``mode="two_sided"`` instead returns the lower end of the two-sided level-alpha interval (the
rs4a / Yang et al. convention, one-sided level alpha/2): valid and slightly more conservative.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta, binomtest

CP_MODES = ("one_sided", "two_sided")


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """Return ``alpha`` as float, or raise ValueError unless 0 < alpha < 1 (NaN rejected)."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1), got {alpha!r}") from None
    if not 0.0 < a < 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in (0, 1), got {alpha!r}")
    return a


def _check_counts(k, n) -> tuple[np.ndarray, np.ndarray]:
    k_arr, n_arr = np.asarray(k), np.asarray(n)
    if np.any(n_arr < 1):
        raise ValueError(f"n must be >= 1, got {n!r}")
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError(f"k must satisfy 0 <= k <= n, got k={k!r}, n={n!r}")
    return k_arr.astype(np.float64), n_arr.astype(np.float64)


def _level(alpha: float, mode: str) -> float:
    a = check_alpha(alpha)
    if mode not in CP_MODES:
        raise ValueError(f"mode must be one of {CP_MODES}, got {mode!r}")
    return a if mode == "one_sided" else a / 2


def cp_lower(k, n, alpha: float, mode: str = "one_sided"):
    """Clopper-Pearson lower confidence bound on a binomial proportion from k successes in n trials.

    ``BetaQuantile(alpha; k, n - k + 1)`` for k >= 1 and 0 for k = 0 (one-sided, see the module docstring).
    Vectorised over k and n; returns a float for scalar input. For k = n it equals alpha**(1/n).
    """
    k_arr, n_arr = _check_counts(k, n)
    a = _level(alpha, mode)
    with np.errstate(invalid="ignore"):
        out = np.where(k_arr > 0, beta.ppf(a, np.maximum(k_arr, 1), n_arr - k_arr + 1), 0.0)
    return float(out) if out.ndim == 0 else out


def cp_upper(k, n, alpha: float, mode: str = "one_sided"):
    """Clopper-Pearson upper confidence bound: ``BetaQuantile(1 - alpha; k + 1, n - k)`` for k < n, 1 for k = n."""
    k_arr, n_arr = _check_counts(k, n)
    a = _level(alpha, mode)
    with np.errstate(invalid="ignore"):
        out = np.where(k_arr < n_arr, beta.ppf(1 - a, k_arr + 1, np.maximum(n_arr - k_arr, 1)), 1.0)
    return float(out) if out.ndim == 0 else out


def binom_pvalue_one_sided(k: int, n: int, p: float = 0.5) -> float:
    """P[Binomial(n, p) >= k]: p-value of H0 "success probability <= p" (PREDICT1 of the lecture)."""
    _check_counts(k, n)
    return float(binomtest(int(k), int(n), p, alternative="greater").pvalue)


def binom_pvalue_two_sided(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test of H0 "success probability = p" (PREDICT2; Cohen's ``binom_test``).

    n may be 0 (no votes for either class): the p-value is then 1.
    """
    if n == 0:
        return 1.0
    _check_counts(k, n)
    return float(binomtest(int(k), int(n), p, alternative="two-sided").pvalue)
