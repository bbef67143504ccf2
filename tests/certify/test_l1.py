import math

import numpy as np
import pytest
import torch
from scipy.stats import kstest
from scipy.stats import laplace as laplace_dist

from rlcert.certify import BaseClassifier, LaplaceCertifier, SSNCertifier, UniformCertifier
from rlcert.certify.randomized.laplace import laplace_radius, laplace_radius_two_bound, lecuyer_radius
from rlcert.certify.randomized.ssn import ssn_transform
from rlcert.certify.randomized.uniform import lipschitz_l1_radius
from tests.certify.helpers import threshold_classifier


# ---------------------------------------------------------------- Laplace (seed 002)
def test_laplace_threshold_closed_form():
    lam, t, x1 = 0.5, 1.0, 0.2
    p_a = 1 - 0.5 * math.exp(-(t - x1) / lam)
    assert p_a == pytest.approx(0.8990517410026723, rel=1e-12)
    assert laplace_radius(p_a, lam) == pytest.approx(t - x1, abs=1e-12)
    # the exact smoothed probability flips just beyond the radius (tightness, Theorem 3)
    assert laplace_dist.cdf(t - (x1 + 0.8 + 1e-6), scale=lam) < 0.5


def test_laplace_mc_certificate_threshold():
    x = torch.zeros(1, 3)
    x[0, 0] = 0.2
    cert = LaplaceCertifier(lambd=0.5, n0=100, n=100_000, alpha=0.001).certify(threshold_classifier(1.0), x)[0]
    assert cert.prediction == 0 and cert.norm == "l1"
    assert 0.7 < cert.radius <= 0.8


def test_laplace_bound_algebra():
    p = np.linspace(0.5, 0.9999, 200)
    tight, lec = laplace_radius(p, 1.0), lecuyer_radius(p, 1.0)
    assert np.all(tight[1:] > lec[1:]) and tight[0] == lec[0] == -1  # p_lower = 1/2 certifies nothing (strict)
    # Theorem 1 with p_B = 1 - p_A equals Theorem 2
    assert np.allclose(laplace_radius_two_bound(p[1:], 1 - p[1:], 1.0), tight[1:], rtol=1e-12)
    assert laplace_radius_two_bound(0.6, 0.3, 1.0) == pytest.approx(0.35667494, abs=1e-8)
    assert laplace_radius_two_bound(0.5, 0.1, 1.0) == pytest.approx(0.80471896, abs=1e-8)
    assert laplace_radius_two_bound(0.9, 0.001, 1.0) == pytest.approx(3.40119738, abs=1e-8)
    assert laplace_radius_two_bound(0.8, 0.05, 1.0) == pytest.approx(math.log(4), abs=1e-12)
    lam = 1 / math.sqrt(2)  # equal-variance table of spec §3.7
    assert laplace_radius(0.9, lam) == pytest.approx(1.1380444617808732, rel=1e-12)
    assert lecuyer_radius(0.99, lam) == pytest.approx(1.6246202031975399, rel=1e-12)


def test_laplace_sampler_scale_and_conventions():
    cert = LaplaceCertifier(sigma=1.0)
    assert cert.lambd == pytest.approx(1 / math.sqrt(2)) and cert.sigma == pytest.approx(1.0)
    out = torch.empty(200_000, 1)
    cert.perturb_(out, torch.tensor([0.3]), torch.Generator().manual_seed(0))
    v = out.numpy().ravel() - 0.3
    assert v.var() == pytest.approx(2 * cert.lambd ** 2, rel=0.02)  # std = sqrt(2) lambda
    assert np.mean(np.abs(v)) == pytest.approx(cert.lambd, rel=0.02)  # E|X| = lambda for Laplace
    assert kstest(v, laplace_dist(scale=cert.lambd).cdf).pvalue > 1e-4  # whole distribution, incl. the sign
    assert np.isfinite(v).all()
    with pytest.raises(ValueError, match="exactly one"):
        LaplaceCertifier(lambd=1.0, sigma=1.0)
    with pytest.raises(ValueError, match="lambd"):
        LaplaceCertifier(lambd=-1.0)
    with pytest.raises(ValueError, match="bound"):
        LaplaceCertifier(lambd=1.0, bound="loose")


def test_laplace_lecuyer_mode_smaller():
    x = torch.tensor([[0.2]])
    kw = dict(lambd=0.5, n0=50, n=20_000, alpha=0.001)
    tight = LaplaceCertifier(**kw).certify(threshold_classifier(1.0), x)[0]
    lec = LaplaceCertifier(bound="lecuyer", **kw).certify(threshold_classifier(1.0), x)[0]
    assert tight.p_lower == lec.p_lower and 0 < lec.radius < tight.radius <= 0.8


# ---------------------------------------------------------------- uniform additive
@pytest.mark.parametrize("d", [0.1, 0.3])
def test_uniform_threshold_closed_form(d):
    lam, t = 0.5, 1.0
    p_a = (d + lam) / (2 * lam)  # P(x1 + eps < t) with eps ~ U[-lam, lam], x1 = t - d
    assert lipschitz_l1_radius(p_a, lam) == pytest.approx(d, abs=1e-12)
    x = torch.tensor([[t - d, 0.0]])
    cert = UniformCertifier(lambd=lam, n0=100, n=100_000, alpha=0.001).certify(threshold_classifier(t), x)[0]
    assert cert.prediction == 0 and d - 0.02 < cert.radius <= d


def test_uniform_sampler_and_sigma_convention():
    u = UniformCertifier(sigma=0.5)
    assert u.lambd == pytest.approx(0.5 * math.sqrt(3))
    out = torch.empty(100_000, 2)
    u.perturb_(out, torch.zeros(2), torch.Generator().manual_seed(0))
    assert out.abs().max() <= u.lambd and out.std().item() == pytest.approx(0.5, rel=0.02)


# ---------------------------------------------------------------- SSN
def brute_ssn(x: float, s: float, lam: float) -> float:
    cuts = [s + 2 * lam * k for k in range(-10, 11)]
    lower = max([c for c in cuts if c < x] + [0.0])
    upper = min([c for c in cuts if c >= x] + [1.0])
    return (max(lower, 0.0) + min(upper, 1.0)) / 2


@pytest.mark.parametrize("lam", [0.1, 0.37, 0.5, 1.5])
def test_ssn_transform_matches_bins(lam):
    rng = np.random.default_rng(0)
    xs, ss = rng.uniform(0, 1, 300), rng.uniform(0, 2 * lam, 300)
    got = ssn_transform(torch.tensor(xs), torch.tensor(ss), lam).numpy()
    assert np.allclose(got, [brute_ssn(a, b, lam) for a, b in zip(xs, ss)], atol=1e-12)
    if lam >= 0.5:  # Eq. 3.7
        assert np.allclose(got, (np.minimum(ss, 1) + (xs > ss)) / 2, atol=1e-12)


def test_ssn_change_probability_is_lipschitz():
    lam, x, x2 = 0.3, 0.2, 0.27
    s = torch.rand(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 * lam
    changed = (ssn_transform(torch.tensor(x), s, lam) != ssn_transform(torch.tensor(x2), s, lam)).double().mean()
    assert changed.item() == pytest.approx(abs(x2 - x) / (2 * lam), abs=0.003)


def test_ssn_threshold_closed_form():
    # lam = 0.75: x~ > 1/2 iff s < x, so P(class 1) = x / (2 lam); class 0 radius = lam - x (flip at x' = lam)
    lam, x1 = 0.75, 0.25
    assert lipschitz_l1_radius(1 - x1 / (2 * lam), lam) == pytest.approx(lam - x1, abs=1e-12)
    clf = BaseClassifier(lambda z: (z[:, 0] > 0.5).long(), 2, returns="labels")  # x~ = 1/2 (s >= 1) -> class 0
    cert = SSNCertifier(lambd=lam, n0=100, n=100_000, alpha=0.001).certify(clf, torch.tensor([[x1, 0.9]]))[0]
    assert cert.prediction == 0 and lam - x1 - 0.02 < cert.radius <= lam - x1


def test_ssn_rejects_unbounded_inputs():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SSNCertifier(lambd=0.5, n=10).certify(threshold_classifier(0.5), torch.tensor([[1.5, 0.0]]))
