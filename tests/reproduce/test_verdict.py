"""The verdict rule of ``rlcert reproduce`` on synthetic per-seed values and curves."""

from __future__ import annotations

import numpy as np
import pytest

from rlcert.reproduce.page import claim_values
from rlcert.reproduce.verdict import DOES_NOT, NOT_YET, REPRODUCES, judge, overall, welch_greater


def test_welch_matches_the_closed_form():
    """One-sided Welch p from the t statistic and Welch-Satterthwaite degrees of freedom, written out."""
    from scipy import stats

    a, b = np.array([0.5, 0.6, 0.7, 0.4]), np.array([0.1, 0.3, 0.2])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    assert welch_greater(a, b) == pytest.approx(stats.t.sf(t, df), rel=1e-12)
    assert welch_greater(b, a) == pytest.approx(1 - stats.t.sf(t, df), rel=1e-12)  # one-sided, not two-sided


def test_beats_separated_seeds_reproduce_and_overlapping_do_not():
    rng = np.random.default_rng(0)
    a, b = 0.5 + 0.05 * rng.standard_normal(10), 0.02 + 0.01 * rng.standard_normal(10)
    assert judge(a, b, "beats", 0.1, 0.5, full_budget=False).verdict == REPRODUCES
    same = 0.3 + 0.1 * rng.standard_normal(10)
    assert judge(same, same[::-1] + 0.01, "beats", 0.1, 0.5, full_budget=True).verdict == DOES_NOT
    assert judge(same, same[::-1] + 0.01, "beats", 0.1, 0.5, full_budget=False).verdict == NOT_YET
    assert judge(b, a, "beats", 0.1, 0.5, full_budget=False).verdict == NOT_YET  # the wrong direction


def test_beats_needs_both_significance_and_size():
    a, b = np.full(20, 0.05) + np.linspace(0, 1e-3, 20), np.zeros(20)  # significant but tiny
    r = judge(a, b, "beats", 0.1, 0.5, full_budget=True)
    assert r.p < 1e-6 and r.verdict == DOES_NOT
    a2, b2 = np.array([0.9, 0.0, 0.9]), np.array([0.0, 0.0, 0.0])  # large mean gap, not significant (p ~ 0.09)
    r2 = judge(a2, b2, "beats", 0.1, 0.5, full_budget=True)
    assert r2.p > 0.05 and r2.verdict == DOES_NOT


def test_similar_needs_both_to_learn():
    assert judge(np.array([0.95, 0.97]), np.array([0.93, 0.99]), "similar", 0.1, 0.5, True).verdict == REPRODUCES
    assert judge(np.zeros(3), np.zeros(3), "similar", 0.1, 0.5, False).verdict == NOT_YET  # 0 vs 0 says nothing
    assert judge(np.array([0.9, 0.9]), np.array([0.5, 0.6]), "similar", 0.1, 0.5, True).verdict == DOES_NOT


def test_one_seed_is_not_yet():
    assert judge(np.array([1.0]), np.array([0.0, 0.0]), "beats", 0.1, 0.5, True).verdict == NOT_YET


def test_final_step_and_area_under_the_curve_on_curves():
    """A learns earlier, both end at 1: 'beats' at the final step fails, 'beats_auc' holds; the last step both
    methods reached is used even when one method ran further."""
    steps_a = np.arange(0, 11) * 1000
    steps_b = np.arange(0, 9) * 1000
    ramp = np.clip((steps_a - 1000) / 3000, 0, 1)
    va = np.stack([ramp * (1 - 0.01 * k) for k in range(5)])
    vb = np.stack([np.clip((steps_b - 4000) / 3000, 0, 1) * (1 - 0.01 * k) for k in range(5)])
    at, a, b = claim_values(steps_a, va, steps_b, vb, "beats")
    assert at == 8000 and np.allclose(a, va[:, 8]) and np.allclose(b, vb[:, 8])
    assert judge(a, b, "beats", 0.1, 0.5, True).verdict == DOES_NOT
    at, a, b = claim_values(steps_a, va, steps_b, vb, "beats_auc")
    assert at == 8000 and np.allclose(a, va[:, :9].mean(1))
    assert judge(a, b, "beats_auc", 0.1, 0.5, True).verdict == REPRODUCES


def test_overall():
    assert overall([REPRODUCES, REPRODUCES]) == REPRODUCES
    assert overall([REPRODUCES, NOT_YET]) == NOT_YET
    assert overall([NOT_YET, DOES_NOT]) == DOES_NOT
    assert overall([]) == NOT_YET
    with pytest.raises(ValueError, match="kind"):
        judge(np.zeros(2), np.zeros(2), "better", 0.1, 0.5, True)
