import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from rlcert.certify.core.stats import binom_pvalue_one_sided, binom_pvalue_two_sided, cp_lower, cp_upper

# spec certifiers_papers.md §1.2 regression table (one-sided, scipy beta quantile)
CP_TABLE = [
    (100000, 100000, 0.001, 0.9999309248330094),
    (99000, 100000, 0.001, 0.9889893403774748),
    (90000, 100000, 0.001, 0.8970364962238291),
    (70000, 100000, 0.001, 0.6955035151951914),
    (50500, 100000, 0.001, 0.5001089517395879),
    (100, 100, 0.001, 0.933254300796991),
    (70, 100, 0.01, 0.5819060383879295),
    (10, 10, 0.05, 0.7411344491069477),
    (7, 10, 0.05, 0.39337578389458766),
    (0, 10, 0.05, 0.0),
]


@pytest.mark.parametrize("k,n,alpha,expected", CP_TABLE)
def test_cp_lower_table(k, n, alpha, expected):
    assert cp_lower(k, n, alpha) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n,alpha", [(1, 0.3), (10, 0.05), (100, 0.001), (100000, 0.001)])
def test_cp_lower_all_successes_is_alpha_root(n, alpha):
    assert cp_lower(n, n, alpha) == pytest.approx(alpha ** (1 / n), rel=1e-12)


@pytest.mark.parametrize("k,n", [(1, 7), (3, 10), (55, 100), (99, 100), (612, 1000), (9000, 10000)])
@pytest.mark.parametrize("alpha", [0.001, 0.05])
def test_cp_matches_scipy_binomtest_exact_interval(k, n, alpha):
    # independent implementation: scipy's exact (Clopper-Pearson) two-sided interval at level 2 alpha
    ci = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
    assert cp_lower(k, n, alpha) == pytest.approx(ci.low, rel=1e-9)
    assert cp_upper(k, n, alpha) == pytest.approx(ci.high, rel=1e-9)
    ci2 = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="exact")
    assert cp_lower(k, n, alpha, mode="two_sided") == pytest.approx(ci2.low, rel=1e-9)


def test_cp_lower_defining_property():
    # the bound p solves P[Bin(n, p) >= k] = alpha
    k, n, alpha = 37, 50, 0.01
    p = cp_lower(k, n, alpha)
    assert binom.sf(k - 1, n, p) == pytest.approx(alpha, rel=1e-8)


def test_two_sided_more_conservative_and_vectorised():
    k = np.array([0, 5, 50, 99, 100])
    lo1, lo2 = cp_lower(k, 100, 0.01), cp_lower(k, 100, 0.01, mode="two_sided")
    assert lo1.shape == (5,) and np.all(lo2 <= lo1) and np.all(lo2[1:] < lo1[1:])
    assert cp_upper(100, 100, 0.01) == 1.0


def test_pvalue_regression_values():
    assert binom_pvalue_one_sided(60, 100) == pytest.approx(0.028443966820490444, rel=1e-9)
    assert binom_pvalue_one_sided(66, 100) == pytest.approx(0.0008949651957434264, rel=1e-9)
    assert binom_pvalue_two_sided(60, 90) == pytest.approx(0.0020602656809630745, rel=1e-9)
    assert binom_pvalue_two_sided(66, 100) == pytest.approx(0.0017899303914868528, rel=1e-9)
    assert binom_pvalue_two_sided(0, 0) == 1.0
    # smallest rejecting counts at alpha = 0.001 (spec §1.3)
    assert binom_pvalue_one_sided(65, 100) > 0.001 >= binom_pvalue_one_sided(66, 100)
    assert binom_pvalue_two_sided(66, 100) > 0.001 >= binom_pvalue_two_sided(67, 100)
    assert binom_pvalue_one_sided(60, 100) == pytest.approx(binom.sf(59, 100, 0.5), rel=1e-12)


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, math.nan, "x"])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        cp_lower(5, 10, alpha)


def test_bad_counts():
    with pytest.raises(ValueError, match="n must be"):
        cp_lower(0, 0, 0.01)
    with pytest.raises(ValueError, match="k must"):
        cp_lower(11, 10, 0.01)
    with pytest.raises(ValueError, match="mode"):
        cp_lower(1, 10, 0.01, mode="both")
