"""One noise object per distribution: parameters defined once, one sampler for training and certification, and a
certificate that is a pure function of probabilities."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from rlcert.certify import GaussianCertifier, LaplaceCertifier, SSNCertifier, UniformCertifier
from rlcert.certify.models.digits import training_noise
from rlcert.certify.randomized.gaussian import GaussianNoise
from rlcert.certify.randomized.laplace import LaplaceNoise
from rlcert.certify.randomized.noise import NOISES, make_noise
from rlcert.certify.randomized.ssn import SSNNoise, ssn_transform
from rlcert.certify.randomized.uniform import UniformNoise

# (class, lambd per sigma from the papers: Gaussian std, Laplace scale sigma/sqrt2, uniform half-width sqrt3 sigma)
CONVERSIONS = [(GaussianNoise, 1.0), (LaplaceNoise, 1 / math.sqrt(2)), (UniformNoise, math.sqrt(3)),
               (SSNNoise, math.sqrt(3))]


@pytest.mark.parametrize("cls,per_sigma", CONVERSIONS)
def test_sigma_lambda_conversion_is_defined_once(cls, per_sigma):
    a, b = cls(sigma=0.3), cls(lambd=0.3 * per_sigma)
    assert a.lambd == pytest.approx(0.3 * per_sigma, rel=1e-15) and b.sigma == pytest.approx(0.3, rel=1e-15)
    with pytest.raises(ValueError, match="exactly one"):
        cls(sigma=0.3, lambd=0.3)
    with pytest.raises(ValueError, match="sigma"):
        cls(sigma=-1.0)


@pytest.mark.parametrize("cls,law", [
    (GaussianNoise, lambda n: stats.norm(scale=n.sigma)),
    (LaplaceNoise, lambda n: stats.laplace(scale=n.lambd)),
    (UniformNoise, lambda n: stats.uniform(loc=-n.lambd, scale=2 * n.lambd)),
])
def test_additive_samplers_follow_their_law_and_sigma_is_the_std(cls, law):
    """Kolmogorov-Smirnov against scipy's distribution (fixed seed), and the empirical std equals sigma."""
    noise = cls(sigma=0.7)
    x = torch.full((200_000,), 3.0)
    eps = (noise.sample(x, torch.Generator().manual_seed(0)) - 3.0).double().numpy()
    assert stats.kstest(eps, law(noise).cdf).pvalue > 1e-3
    assert eps.std() == pytest.approx(0.7, rel=0.01)
    # a law with the wrong conversion (e.g. Laplace scale = sigma) is rejected by the same test
    wrong = stats.norm(scale=0.7 * 1.1) if cls is GaussianNoise else law(cls(lambd=noise.lambd * 1.1))
    assert stats.kstest(eps, wrong.cdf).pvalue < 1e-6


def test_ssn_sampler_is_the_splitting_transform():
    noise = SSNNoise(lambd=0.3)
    x = torch.rand(5000, generator=torch.Generator().manual_seed(1))
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    s = torch.empty_like(x).uniform_(0.0, 0.6, generator=g2)
    assert torch.equal(noise.sample(x, g1), ssn_transform(x, s, 0.3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        noise.sample(x + 1.0)


@pytest.mark.parametrize("certifier", [GaussianCertifier(0.4), LaplaceCertifier(sigma=0.4), UniformCertifier(sigma=0.4),
                                       SSNCertifier(sigma=0.4)], ids=lambda c: c.name)
def test_training_and_certification_draw_from_one_object(certifier):
    """The training augmentation (by name, as scripts/train_digits.py does, or the certifier's own noise object)
    and the certifier's Monte Carlo buffer are the same draws for the same generator state."""
    x = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    by_name = training_noise(certifier.name, 0.4)(x, torch.Generator().manual_seed(4))
    by_object = training_noise(certifier.noise, 0.0)(x, torch.Generator().manual_seed(4))
    buf = torch.empty_like(x)
    certifier.perturb_(buf, x, torch.Generator().manual_seed(4))
    assert torch.equal(by_object, buf) and torch.equal(by_name, buf)
    assert type(make_noise(certifier.name, sigma=0.4)) is type(certifier.noise)
    assert certifier.sigma == pytest.approx(0.4) and certifier.lambd == certifier.noise.lambd


def test_certificates_are_pure_functions_of_probabilities():
    p = np.array([0.6, 0.9, 0.999])
    assert np.allclose(GaussianNoise(sigma=0.5).radius(p), 0.5 * stats.norm.ppf(p))
    assert np.allclose(LaplaceNoise(lambd=0.5).radius(p), -0.5 * np.log(2 * (1 - p)))
    assert np.allclose(LaplaceNoise(lambd=0.5, bound="lecuyer").radius(p), 0.25 * np.log(p / (1 - p)))
    assert np.allclose(UniformNoise(lambd=0.5).radius(p), 2 * 0.5 * (p - 0.5))
    assert np.allclose(SSNNoise(lambd=0.5).radius(p), 2 * 0.5 * (p - 0.5))
    # the certifier's certificate from counts uses the same function
    cert = GaussianCertifier(0.5, n=1000, alpha=0.001)
    (c,) = cert.certificates_from_counts(np.array([1]), np.array([[30, 970]]))
    assert c.radius == pytest.approx(float(cert.noise.radius(np.array([c.p_lower]))[0]), rel=1e-15)
    assert set(NOISES) >= {"gaussian", "laplace", "uniform", "ssn"}


def test_any_input_shape_and_range_for_additive_noises():
    """Tabular rows and normalised (negative, > 1) values are fine for Gaussian/Laplace/uniform; SSN refuses them
    with an error naming the method."""
    from rlcert.certify import BaseClassifier

    w = torch.tensor([1.0, -2.0, 0.5])
    clf = BaseClassifier(lambda z: (z @ w > 0).long(), 2, returns="labels")
    x = torch.tensor([[3.0, -1.0, 2.0], [-4.0, 2.5, 0.0]])  # far from [0, 1]
    for cert in (GaussianCertifier(0.5, n0=50, n=2000), LaplaceCertifier(sigma=0.5, n0=50, n=2000),
                 UniformCertifier(sigma=0.5, n0=50, n=2000)):
        c = cert.certify(clf, x)
        assert [k.prediction for k in c] == [1, 0]
        assert all(k.radius > 0 for k in c)
    with pytest.raises(ValueError, match=r"^SSNCertifier: this noise needs inputs in \[0, 1\]"):
        SSNCertifier(sigma=0.5, n0=50, n=100).certify(clf, x)


def _every_radius_function():
    """(name, radius(p), radius_two_bound(pa, pb) or None) for every pure certificate function of p_lower."""
    from rlcert.certify.adaptive.composition import adaptive_radius
    from rlcert.certify.randomized import gaussian, laplace, uniform, wasserstein
    from rlcert.certify.randomized.ablation import ablation_radius, ablation_radius_two_bound

    out = [(name, make_noise(name, sigma=0.3).radius, make_noise(name, sigma=0.3).radius_two_bound)
           for name in sorted(NOISES)]
    out += [("wasserstein-pixel", make_noise("wasserstein", sigma=0.3, domain="pixel").radius,
             make_noise("wasserstein", sigma=0.3, domain="pixel").radius_two_bound),
            ("wasserstein-l1", make_noise("wasserstein", sigma=0.3, ground="l1").radius, None),
            ("lecuyer", LaplaceNoise(sigma=0.3, bound="lecuyer").radius, None),
            ("gaussian_radius", lambda p: gaussian.gaussian_radius(p, 0.3),
             lambda a, b: gaussian.gaussian_radius_two_bound(a, b, 0.3)),
            ("laplace_radius", lambda p: laplace.laplace_radius(p, 0.3),
             lambda a, b: laplace.laplace_radius_two_bound(a, b, 0.3)),
            ("lipschitz_l1_radius", lambda p: uniform.lipschitz_l1_radius(p, 0.3),
             lambda a, b: uniform.lipschitz_l1_radius_two_bound(a, b, 0.3)),
            ("wasserstein_radius", lambda p: wasserstein.wasserstein_radius(p, 0.1),
             lambda a, b: wasserstein.wasserstein_radius_two_bound(a, b, 0.1)),
            ("adaptive_radius", lambda p: adaptive_radius(p, [0.5, 1.0], dim=4),
             lambda a, b: adaptive_radius(a, [0.5, 1.0], p_upper=b, dim=4)),
            ("ablation_radius", lambda p: ablation_radius(p, 64, 8),
             lambda a, b: ablation_radius_two_bound(a, b, 64, 8))]
    return out


@pytest.mark.parametrize("name,radius,two_bound", _every_radius_function(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_no_certificate_is_the_abstain_value_never_a_negative_radius(name, radius, two_bound):
    """p_lower <= 1/2 (or p_lower <= p_upper) certifies nothing: every radius function returns ABSTAIN (-1) there,
    as a scalar for a scalar and elementwise for arrays; just above the boundary the radius is >= 0 (the
    issue's wasserstein_radius(0.3, 0.1) was -0.021)."""
    from rlcert.certify.core.certificate import ABSTAIN

    below = [0.0, 0.1, 0.3, 0.5]
    assert all(float(radius(p)) == ABSTAIN for p in below), name
    above = np.array([math.nextafter(0.5, 1.0), 0.5 + 1e-12, 0.6, 0.99])
    got = np.asarray(radius(np.concatenate([below, above])), dtype=np.float64)
    assert np.all(got[:4] == ABSTAIN) and np.all(got[4:] >= 0), (name, got)
    assert got[-1] > 0
    if two_bound is not None:
        pa = np.array([0.3, 0.4, 0.45, 0.6, 0.6])
        pb = np.array([0.3, 0.5, 0.45, 0.2, math.nextafter(0.6, 0.0)])
        r2 = np.asarray(two_bound(pa, pb), dtype=np.float64)
        assert np.all(r2[:3] == ABSTAIN) and np.all(r2[3:] >= 0) and r2[3] > 0, (name, r2)
        assert float(two_bound(0.3, 0.4)) == ABSTAIN


def test_wasserstein_radius_of_the_issue():
    from rlcert.certify.core.certificate import ABSTAIN
    from rlcert.certify.randomized.wasserstein import wasserstein_radius

    assert float(wasserstein_radius(0.3, 0.1)) == ABSTAIN
    # the formula itself is unchanged where it certifies: sigma/4 ln(p/(1-p))
    assert float(wasserstein_radius(0.8, 0.1)) == pytest.approx(0.1 / 4 * math.log(4), rel=1e-14)
