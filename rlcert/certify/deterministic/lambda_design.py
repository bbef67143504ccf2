"""Designing the variable-Lambda outcome list (Levine 2023, Ch.4 / App. C.1.4, C.3; spec section 3.2).

A design is a budget ``B`` and integer repetition counts ``w_j`` (j = 1..q): for each j, ``w_j`` blocks of the j
equally likely splits ``s = (r + 0.5)/q, r = 0..j-1`` of bin width ``Lambda = j/q``; the remaining
``B - sum_j j w_j`` outcomes are ``Lambda = inf`` (coordinate fully ablated). Its split count is

    S(k) = sum_j min(k, j) w_j     (number of the B outcomes separating two values k/q apart, Eq. C.66)

and the smoothed classifier is 1-Lipschitz w.r.t. ``d(x, y) = sum_i g(|x_i - y_i|)`` whenever
``S(k)/B <= g(k/q)`` for every k (Theorem 4.3-b). ``milp_design`` finds integer ``w`` with ``S(k) <= B g(k/q)``
(never exceeding g) and the smallest worst-case deficit ``max_k g(k/q) - S(k)/B``, with ``scipy.optimize.milp``.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from rlcert.certify.core.checks import check_count

Concave = Callable[[np.ndarray], np.ndarray]

# Published solutions used in the thesis' experiments (q = 255, B = 1000, alpha = 1; spec 3.2). Checked in the tests.
PUBLISHED_WEIGHTS: dict[str, dict[int, int]] = {
    "1/2": {1: 17, 4: 17, 14: 2, 17: 1, 23: 1, 40: 1, 47: 1, 67: 1, 169: 1, 254: 1, 255: 1},
    "1/3": {1: 81, 2: 38, 9: 11, 15: 1, 22: 1, 37: 1, 48: 2, 93: 1, 206: 1, 255: 1},
}


class PowerECM:
    """g(z) = min(z^p / alpha, 1) (a callable on arrays, float64), with an exact test of ``s <= B g(k/q)``."""

    def __init__(self, p: float, alpha: float = 1.0) -> None:
        if not (0 < p <= 1):
            raise ValueError(f"p must be in (0, 1], got {p!r}")
        if not alpha > 0 or not math.isfinite(alpha):
            raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
        self.p, self.alpha = float(p), float(alpha)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return np.minimum(np.power(np.asarray(z, dtype=float), self.p) / self.alpha, 1.0)

    def allows(self, s: int, budget: int, k: int, q: int) -> bool:
        """Exactly whether s <= budget * g(k/q), for the float p and alpha as given (exact rationals): decided by
        a 60-digit (``decimal``) logarithm comparison, or, within 1e-40 of equality, by big-integer powers when
        p's denominator is at most 2^16 (else refused: never a float tie decided in the unsound direction)."""
        s, budget = int(s), int(budget)
        if s <= 0:
            return True
        if s > budget:
            return False
        t = Fraction(int(k), int(q))            # (0, 1]
        r = Fraction(self.alpha) * s / budget   # s <= B t^p / alpha  <=>  r <= t^p (when t^p / alpha < 1)
        if t >= 1 or r <= 0:
            return r <= 1 or s <= budget
        if r >= 1:
            return False
        pe = Fraction(self.p)
        with decimal.localcontext() as ctx:
            ctx.prec = 60
            gap = (Decimal(pe.numerator) / pe.denominator * (Decimal(t.numerator) / t.denominator).ln()
                   - (Decimal(r.numerator) / r.denominator).ln())
            if abs(gap) > Decimal("1e-40"):
                return gap > 0
        a, b = pe.numerator, pe.denominator
        if b > 2 ** 16:
            return False
        return r.numerator ** b * t.denominator ** a <= t.numerator ** a * r.denominator ** b


def power_ecm(p: float, alpha: float = 1.0) -> PowerECM:
    """g(z) = min(z^p / alpha, 1): the l_p^p metric scaled by 1/alpha (Corollary 4.1 and App. C.1.3.1)."""
    return PowerECM(p, alpha)


@dataclass(frozen=True)
class LambdaDesign:
    """Outcome list design: ``q`` levels, budget ``budget`` (= B outcomes), ``weights`` {j: w_j}."""

    q: int
    budget: int
    weights: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_count(self.q, "q")
        if any((not 1 <= j <= self.q) or w < 0 for j, w in self.weights.items()):
            raise ValueError(f"weights must map j in [1, q={self.q}] to counts >= 0")
        used = sum(j * w for j, w in self.weights.items())
        if not isinstance(self.budget, int) or self.budget < max(used, 1):
            raise ValueError(f"budget must be an integer >= sum_j j w_j = {used} (and >= 1), got {self.budget!r}")

    @property
    def num_finite(self) -> int:
        return sum(j * w for j, w in self.weights.items())

    def split_counts(self) -> np.ndarray:
        """S(k) for k = 0..q (int64)."""
        k = np.arange(self.q + 1)
        return sum((np.minimum(k, j) * w for j, w in self.weights.items()), np.zeros(self.q + 1, dtype=np.int64))

    def split_probability(self) -> np.ndarray:
        return self.split_counts() / self.budget

    def deficit(self, g: Concave) -> float:
        """max_k g(k/q) - S(k)/B (>= 0 for a valid design)."""
        k = np.arange(1, self.q + 1)
        return float(np.max(g(k / self.q) - self.split_counts()[1:] / self.budget))

    def is_below(self, g: Concave) -> bool:
        """True iff S(k) <= B g(k/q) for every k: decided exactly for a ``PowerECM`` (``power_ecm``; the l_p
        designs), else on the floats of g with no tolerance (a float g is taken as exact)."""
        s = self.split_counts()[1:]
        if isinstance(g, PowerECM):
            return all(g.allows(int(s[k - 1]), self.budget, k, self.q) for k in range(1, self.q + 1))
        k = np.arange(1, self.q + 1)
        return bool(np.all(s <= self.budget * np.asarray(g(k / self.q), dtype=np.float64)))

    def scaled(self, factor: float) -> LambdaDesign:
        """Same w with budget B * factor (pads inf outcomes): the Lipschitz constant is divided by ``factor``."""
        budget = self.budget * factor
        if abs(budget - round(budget)) > 1e-9 or factor < 1:
            raise ValueError(f"alpha must be >= 1 with budget * alpha an integer, got alpha={factor}")
        return LambdaDesign(self.q, int(round(budget)), dict(self.weights))

    def outcomes(self) -> tuple[np.ndarray, np.ndarray]:
        """The ordered list L: (width_j (B,), r (B,)) int64; width_j = 0 encodes Lambda = inf."""
        widths, rs = [], []
        for j in sorted(self.weights):
            for _ in range(self.weights[j]):
                widths += [j] * j
                rs += list(range(j))
        pad = self.budget - len(widths)
        return np.array(widths + [0] * pad, dtype=np.int64), np.array(rs + [0] * pad, dtype=np.int64)


def real_valued_distribution(g: Concave, q: int) -> tuple[np.ndarray, float]:
    """Theorem 4.3-c: Pr(Lambda = j/q) for j = 1..q (index 0 unused) and Pr(Lambda = inf) with Pr^split = g exactly.

    Pr(Lambda = z) = -q z [g(z - 1/q) + g(z + 1/q) - 2 g(z)] (z < 1), Pr(Lambda = 1) = q [g(1) - g(1 - 1/q)],
    Pr(inf) = 1 - g(1). Requires g concave, increasing, g(0) = 0, g <= 1 on the grid."""
    z = np.arange(q + 2) / q
    gz = g(np.minimum(z, 1.0)).astype(float)
    v = np.zeros(q + 1)
    j = np.arange(1, q)
    v[1:q] = -q * (j / q) * (gz[j - 1] + gz[j + 1] - 2 * gz[j])
    v[q] = q * (gz[q] - gz[q - 1])
    if abs(gz[0]) > 1e-12 or np.any(v < -1e-12) or gz[q] > 1 + 1e-12:
        raise ValueError("g must be increasing, concave, with g(0) = 0 and g(1) <= 1 on the grid")
    return np.clip(v, 0, None), float(1 - gz[q])


def floor_design(g: Concave, q: int, budget: int) -> LambdaDesign:
    """Round the real-valued optimum down: w_j = floor(B v_j / j). Always S(k) <= B g(k/q); deficit < (q^2+q)/(2B)."""
    v, _ = real_valued_distribution(g, q)
    w = {j: int(math.floor(budget * v[j] / j + 1e-9)) for j in range(1, q + 1)}
    design = LambdaDesign(q, budget, {j: c for j, c in w.items() if c > 0})
    if not design.is_below(g):  # only possible through float error in g; drop the offending mass
        design = LambdaDesign(q, budget, {j: max(c - 1, 0) for j, c in design.weights.items() if c > 1})
    return design


def milp_design(g: Concave, q: int, budget: int, time_limit: float = 60.0) -> LambdaDesign:
    """Mixed-integer design (Eq. C.66): integer w >= 0 minimising t subject to, for every k in 1..q,

        S(k) <= floor(B g(k/q))          (never exceed g: the Lipschitz guarantee)
        S(k) + t >= B g(k/q)              (t = worst deficit in votes)
        sum_j j w_j <= B.

    Solved with ``scipy.optimize.milp`` (HiGHS); if it stops at ``time_limit`` the best integer solution found is
    used, and never one worse than ``floor_design``. The thesis fixes t = 0.02 B and solves a feasibility problem
    (SCIP); minimising t is the same constraint set with the best achievable tolerance."""
    check_count(budget, "budget B")
    k = np.arange(1, q + 1)
    j = np.arange(1, q + 1)
    a = np.minimum(k[:, None], j[None, :]).astype(float)  # (q, q): S(k) = a @ w
    target = budget * g(k / q)
    cap = np.floor(target + 1e-9)
    n = q + 1  # w_1..w_q, t
    c = np.zeros(n)
    c[-1] = 1.0
    rows = [
        LinearConstraint(np.hstack([a, np.zeros((q, 1))]), -np.inf, cap),
        LinearConstraint(np.hstack([a, np.ones((q, 1))]), target, np.inf),
        LinearConstraint(np.concatenate([j.astype(float), [0.0]])[None, :], -np.inf, budget),
    ]
    integrality = np.concatenate([np.ones(q), [0]])
    bounds = Bounds(np.zeros(n), np.concatenate([np.floor(budget / j), [np.inf]]))
    res = milp(c, constraints=rows, integrality=integrality, bounds=bounds,
               options={"time_limit": float(time_limit), "disp": False})
    fallback = floor_design(g, q, budget)
    if res.x is None:
        return fallback
    w = np.round(res.x[:q]).astype(np.int64)
    design = LambdaDesign(q, budget, {int(jj): int(ww) for jj, ww in zip(j, w) if ww > 0})
    if not design.is_below(g) or design.deficit(g) > fallback.deficit(g):
        return fallback
    return design
