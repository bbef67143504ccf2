import math

import numpy as np
import pytest
import torch
from scipy.stats import binom, norm

from rlcert.certify import ABSTAIN, BaseClassifier, GaussianCertifier
from rlcert.certify.core.stats import cp_lower
from rlcert.certify.randomized.gaussian import gaussian_radius, gaussian_radius_two_bound
from tests.certify.helpers import linear_classifier

W, B, X = torch.tensor([3.0, 4.0]), -1.0, torch.tensor([[1.0, 1.0]])  # margin 6, distance 1.2 (spec §7 G1)


def test_radius_closed_form():
    p_a = norm.cdf(2.4)
    assert p_a == pytest.approx(0.9918024640754038, rel=1e-12)
    assert gaussian_radius(p_a, 0.5) == pytest.approx(1.2, abs=1e-12)
    for p in (0.6, 0.9, 0.999):  # multiclass identity with p_B = 1 - p_A
        assert gaussian_radius_two_bound(p, 1 - p, 0.7) == pytest.approx(gaussian_radius(p, 0.7), rel=1e-12)
    assert gaussian_radius(cp_lower(100000, 100000, 0.001), 1.0) == pytest.approx(3.8114565633899145, rel=1e-9)


def test_linear_classifier_radius_below_distance_and_tight():
    cert = GaussianCertifier(0.5, n0=100, n=100_000, alpha=0.001).certify(linear_classifier(W, B), X)[0]
    assert cert.prediction == 1 and cert.norm == "l2"
    assert 1.15 < cert.radius <= 1.2
    assert cert.counts.sum() == 100_000


def test_radius_never_exceeds_distance_many_points():
    torch.manual_seed(0)
    w = torch.randn(5)
    x = torch.randn(40, 5)
    dist = ((x @ w + 0.3).abs() / w.norm()).numpy()
    side = (x @ w + 0.3 > 0).long().numpy()
    certs = GaussianCertifier(1.0, n0=50, n=2000, alpha=0.001).certify(linear_classifier(w, 0.3), x)
    for c, d, s in zip(certs, dist, side):
        if not c.abstained:
            assert c.prediction == s
            assert c.radius <= d
    assert sum(not c.abstained for c in certs) > 20


def test_radius_converges_to_distance_as_n_grows():
    clf = linear_classifier(W, B)
    gaps = []
    for n in (1000, 10_000, 100_000):
        r = np.mean([c.radius for c in GaussianCertifier(0.5, n0=20, n=n, alpha=0.001).certify(
            clf, X.repeat(4, 1), seeds=[0, 1, 2, 3])])
        gaps.append(1.2 - r)
    assert all(g > 0 for g in gaps)
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.05


def test_calibration_lower_bound_exceeds_truth_at_most_alpha():
    # 1-D threshold at 0, x = 0.4, sigma = 1: p_A = Phi(0.4) exactly. Many seeded repeats in one call.
    reps, n, alpha = 3000, 200, 0.05
    p_a = norm.cdf(0.4)
    clf = BaseClassifier(lambda z: (z[:, 0] > 0).long(), 2, returns="labels")
    certs = GaussianCertifier(1.0, n0=1, n=n, alpha=alpha).certify(clf, torch.full((reps, 1), 0.4))
    mask = np.array([c.counts.argmax() == 1 for c in certs])  # runs whose bound is about class 1
    p_low = np.array([cp_lower(c.counts[1], n, alpha) for c in certs])
    exceed = int(np.sum(p_low > p_a))
    assert exceed <= binom.ppf(1 - 1e-6, reps, alpha)
    # sensitivity check: the naive estimate n_A/n exceeds p_A about half of the time, so the test can fail
    naive = np.array([c.counts[1] / n for c in certs])
    assert np.sum(naive > p_a) > 0.4 * reps
    # the reported p_lower of certified runs is exactly cp_lower of the estimation counts
    assert all(c.p_lower == pytest.approx(p) for c, p, m in zip(certs, p_low, mask) if c.prediction == 1 and m)


def test_two_bound_radius_below_distance():
    cert = GaussianCertifier(0.5, n0=100, n=20_000, alpha=0.001, two_bound=True).certify(
        linear_classifier(W, B), X)[0]
    assert cert.prediction == 1 and cert.p_upper is not None and 0 < cert.radius <= 1.2


def test_abstain_on_coin_flip_classifier():
    gen = torch.Generator().manual_seed(0)
    coin = BaseClassifier(lambda z: torch.randint(0, 2, (len(z),), generator=gen), 2, returns="labels")
    certs = GaussianCertifier(0.1, n0=10, n=500, alpha=0.01).certify(coin, torch.zeros(500, 3))
    assert sum(not c.abstained for c in certs) <= binom.ppf(1 - 1e-6, 500, 0.01)
    assert all(c.radius == 0.0 and c.prediction == ABSTAIN for c in certs if c.abstained)


@pytest.mark.parametrize("variant", ["one_sided", "two_sided"])
def test_predict_calibration_on_coin_flips(variant):
    gen = torch.Generator().manual_seed(1)
    coin = BaseClassifier(lambda z: torch.randint(0, 2, (len(z),), generator=gen), 2, returns="labels")
    reps, alpha = 3000, 0.01
    out = GaussianCertifier(0.1).predict(coin, torch.zeros(reps, 2), n=100, alpha=alpha, variant=variant)
    assert np.sum(out != ABSTAIN) <= binom.ppf(1 - 1e-6, reps, alpha)


def test_predict_abstains_when_n_too_small_for_alpha():
    const = BaseClassifier(lambda z: torch.ones(len(z), dtype=torch.long), 2, returns="labels")
    g = GaussianCertifier(0.25)
    x = torch.zeros(3, 2)
    # one-sided: smallest p-value with n samples is 0.5**n; two-sided: 2 * 0.5**n
    assert np.all(g.predict(const, x, n=6, alpha=0.01, variant="one_sided") == ABSTAIN)   # 0.0156 > 0.01
    assert np.all(g.predict(const, x, n=7, alpha=0.01, variant="one_sided") == 1)         # 0.0078 <= 0.01
    assert np.all(g.predict(const, x, n=7, alpha=0.01, variant="two_sided") == ABSTAIN)   # 0.0156 > 0.01
    assert np.all(g.predict(const, x, n=8, alpha=0.01, variant="two_sided") == 1)
    assert np.all(g.predict(linear_classifier(W, B), X, n=1000, alpha=0.001) == 1)


def test_predict2_returns_plurality_below_half():
    # three classes at 0.45 / 0.35 / 0.20: PREDICT2 can return class 0 although p_A < 1/2, PREDICT1 cannot
    def f(z):
        cuts = torch.tensor([norm.ppf(0.45), norm.ppf(0.80)], dtype=z.dtype)
        return torch.bucketize(z[:, 0], cuts)  # class 0 w.p. 0.45, 1 w.p. 0.35, 2 w.p. 0.20 at x = 0

    clf = BaseClassifier(f, 3, returns="labels")
    g = GaussianCertifier(1.0)
    assert g.predict(clf, torch.zeros(1, 1), n=20000, alpha=0.001, variant="two_sided")[0] == 0
    assert g.predict(clf, torch.zeros(1, 1), n=20000, alpha=0.001, variant="one_sided")[0] == ABSTAIN


def test_seeded_reproducibility_and_batch_independence():
    clf = linear_classifier(torch.tensor([1.0, -2.0]), 0.1)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(3))
    a = GaussianCertifier(0.5, n0=30, n=777, batch=100, seed=5).certify(clf, x)
    b = GaussianCertifier(0.5, n0=30, n=777, batch=100, seed=5).certify(clf, x)
    assert [(c.prediction, c.radius) for c in a] == [(c.prediction, c.radius) for c in b]
    assert all(np.array_equal(c.counts, d.counts) for c, d in zip(a, b))
    # input 4 certified alone (with its index as seed) equals input 4 certified among others
    alone = GaussianCertifier(0.5, n0=30, n=777, batch=100, seed=5).certify(clf, x[4:5], seeds=[4])[0]
    assert np.array_equal(alone.counts, a[4].counts) and alone.radius == a[4].radius
    other = GaussianCertifier(0.5, n0=30, n=777, batch=100, seed=6).certify(clf, x)
    assert any(not np.array_equal(c.counts, d.counts) for c, d in zip(a, other))


@pytest.mark.parametrize("kwargs,match", [
    (dict(sigma=0.0), "sigma"), (dict(sigma=-1.0), "sigma"), (dict(sigma=math.nan), "sigma"),
    (dict(sigma=None), "sigma"), (dict(sigma=0.5, alpha=0.0), "alpha"), (dict(sigma=0.5, alpha=1.0), "alpha"),
    (dict(sigma=0.5, alpha=math.nan), "alpha"), (dict(sigma=0.5, n=0), "n must"),
    (dict(sigma=0.5, n0=0), "n0"), (dict(sigma=0.5, batch=0), "batch"), (dict(sigma=0.5, n=2.5), "n must"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianCertifier(**kwargs)


def test_bad_inputs():
    g, clf = GaussianCertifier(0.5, n=10, n0=1), linear_classifier(W, B)
    with pytest.raises(ValueError, match="shape"):
        g.certify(clf, torch.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        g.certify(clf, torch.tensor([[1.0, math.nan]]))
    with pytest.raises(ValueError, match="seeds"):
        g.certify(clf, X, seeds=[1, 2])
    with pytest.raises(ValueError, match="variant"):
        g.predict(clf, X, variant="three")
    bad = BaseClassifier(lambda z: torch.full((len(z),), 5), 2, returns="labels")
    with pytest.raises(ValueError, match="outside"):
        g.certify(bad, X)


def test_two_bound_refused_for_a_noise_without_that_certificate():
    from rlcert.certify.core.smoothing import SmoothingCertifier

    class OneBoundOnly(SmoothingCertifier):
        name, norm = "one-bound-only", "l2"

        def perturb_(self, out, x, generator):
            out.copy_(x.expand_as(out))

        def radius(self, p_lower):
            return np.zeros_like(p_lower)

    OneBoundOnly(two_bound=False)
    with pytest.raises(ValueError, match="two_bound=True is not available for OneBoundOnly"):
        OneBoundOnly(two_bound=True)
    GaussianCertifier(sigma=0.5, two_bound=True)  # Gaussian has one
