"""The verdict rule of ``rlcert reproduce``: one claim, per-seed values of two methods -> reproduces / does not /
not yet.

The rule, stated on every results page, is :data:`RULE`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

P_MAX = 0.05
REPRODUCES, DOES_NOT, NOT_YET = "reproduces", "does not", "not yet"
RULE = """\
* **beats** (A beats B): at the last evaluation step that every seed of both methods reached, a one-sided Welch
  t-test of mean(A) > mean(B) gives p < 0.05 **and** mean(A) - mean(B) >= delta. ``beats_auc``: the same on each
  seed's mean over all evaluations up to that step (area under the curve: "learns / converges faster").
* **similar**: both means >= floor and |mean(A) - mean(B)| <= delta at that step.
* The claim holds -> **reproduces**. It fails with the thesis' full budget (its seeds and steps, or more) ->
  **does not**. It fails with less -> **not yet** (the page gives the compute still needed). Fewer than 2 seeds
  per method -> **not yet** (Welch needs a spread).
* delta and floor are set per claim in ``rlcert/reproduce/experiments.py``: delta 0.1 and floor 0.5 for success
  rates, delta 1 goal hit for Fig. 8.4's returns.

An experiment reproduces when every claim does, does not when any claim does not, else not yet.
"""


@dataclass
class ClaimResult:
    verdict: str
    holds: bool
    mean_a: float
    mean_b: float
    p: float | None
    detail: str


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def welch_greater(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided Welch p-value for mean(a) > mean(b); equal zero spreads give 0 (a above) or 1 (not above)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.var(ddof=1) == 0 and b.var(ddof=1) == 0:
        return 0.0 if a.mean() > b.mean() else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


def judge(a: np.ndarray, b: np.ndarray, kind: str, delta: float, floor: float, full_budget: bool) -> ClaimResult:
    """Apply the module's rule to per-seed values ``a``, ``b`` (shape (n_seeds,); for beats_auc already each seed's
    curve mean). ``full_budget``: the runs had the thesis' seeds and steps (a failure is then 'does not')."""
    if kind not in ("beats", "beats_auc", "similar"):
        raise ValueError(f"kind must be beats, beats_auc or similar, got {kind!r}")
    a, b = np.asarray(a, float), np.asarray(b, float)
    ma, mb = float(a.mean()), float(b.mean())
    if len(a) < 2 or len(b) < 2:
        return ClaimResult(NOT_YET, False, ma, mb, None, f"{len(a)} vs {len(b)} seeds: at least 2 each needed")
    if kind == "similar":
        holds = min(ma, mb) >= floor and abs(ma - mb) <= delta
        p = None
        detail = (f"means {ma:.2f} vs {mb:.2f}: |diff| {abs(ma - mb):.2f} <= {delta:g}: {_yes(abs(ma - mb) <= delta)}"
                  f", both >= {floor:g}: {_yes(min(ma, mb) >= floor)}")
    else:
        p = welch_greater(a, b)
        holds = p < P_MAX and ma - mb >= delta
        detail = (f"means {ma:.2f} vs {mb:.2f}: diff {ma - mb:+.2f} >= {delta:g}: {_yes(ma - mb >= delta)}, "
                  f"one-sided Welch p = {p:.3g} < {P_MAX}: {_yes(p < P_MAX)}")
    verdict = REPRODUCES if holds else (DOES_NOT if full_budget else NOT_YET)
    return ClaimResult(verdict, holds, ma, mb, p, detail)


def overall(verdicts: list[str]) -> str:
    """Every claim reproduces -> reproduces; any does not -> does not; else not yet."""
    if verdicts and all(v == REPRODUCES for v in verdicts):
        return REPRODUCES
    return DOES_NOT if DOES_NOT in verdicts else NOT_YET
