"""ARS (Shaikh et al.): f-DP algebra, budget split, averaging, information flow, noise scale, calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.optimize import brentq
from scipy.stats import norm as normal
from torch import nn

from rlcert.certify import GaussianCertifier
from rlcert.certify.adaptive import (
    AdaptiveCertifier,
    AdaptivePipeline,
    ARSModel,
    GaussianQueries,
    StaticMaskModel,
    VanillaSmoothingModel,
    adaptive_radius,
    averaging_coefficients,
    composed_mu,
    effective_sigma,
    gaussian_tradeoff,
    split_sigma2,
)
from rlcert.certify.core.stats import cp_lower


# ---- A1 budget split and radius -------------------------------------------------------------------------
def test_budget_split_values():
    s2 = split_sigma2(0.75, 1.0)
    assert s2 == pytest.approx(1.133893419027682, abs=1e-12)
    assert 1 / 1.0 ** 2 + 1 / s2 ** 2 == pytest.approx(1 / 0.75 ** 2, abs=1e-12)
    r = adaptive_radius(0.99, [1.0, s2], p_upper=0.01, dim=6912)
    assert r == pytest.approx(0.020986212051659268, abs=1e-12)
    assert r == pytest.approx(0.75 * normal.ppf(0.99) / math.sqrt(6912), abs=1e-12)
    assert split_sigma2(0.75, 1e9) == pytest.approx(0.75, rel=1e-9) and split_sigma2(0.75, math.inf) == 0.75
    for bad in (0.75, 0.5):
        with pytest.raises(ValueError, match="sigma1"):
            split_sigma2(0.75, bad)


@pytest.mark.parametrize("sigma1", [0.8, 1.0, 3.0, 50.0])
def test_budget_split_leaves_radius_unchanged_for_same_counts(sigma1):
    """Same counts -> ARS(sigma1, sigma2) radius == vanilla Gaussian radius at sigma, divided by sqrt(d)."""
    sigma, d = 0.5, 3 * 12 * 12
    counts = np.array([[5, 995], [120, 880], [400, 600], [700, 300]])
    c_hat = counts.argmax(1)
    gauss = GaussianCertifier(sigma=sigma, n=1000, alpha=0.001).certificates_from_counts(c_hat, counts)
    ars = AdaptiveCertifier(n=1000, alpha=0.001)
    ars._sigmas, ars._dim = (sigma1, split_sigma2(sigma, sigma1)), d
    got = ars.certificates_from_counts(c_hat, counts)
    for g, a in zip(gauss, got):
        assert a.prediction == g.prediction
        assert a.radius == pytest.approx(g.radius / math.sqrt(d), rel=1e-12, abs=1e-15)
    assert any(g.radius > 0 for g in gauss)
    # forgetting the first step's cost (certifying with sigma2 alone) is more generous: caught
    ars._sigmas = (split_sigma2(sigma, sigma1),)
    assert any(b.radius > g.radius / math.sqrt(d) * (1 + 1e-9) for b, g in zip(ars.certificates_from_counts(
        c_hat, counts), gauss))


# ---- A2 f-DP machinery -------------------------------------------------------------------------------------
def test_tradeoff_and_prop61_by_root_finding():
    assert gaussian_tradeoff(0.3, 0.0) == pytest.approx(0.7, abs=1e-12)
    a = np.linspace(0.01, 0.99, 50)
    assert np.all(np.diff(gaussian_tradeoff(a, 1.0)) <= 0)
    assert gaussian_tradeoff(0.2, 0.5) > gaussian_tradeoff(0.2, 1.5)
    sigma, pl, pu = 0.5, 0.8, 0.15
    f = lambda r: gaussian_tradeoff(1 - pl, r / sigma) - (1 - gaussian_tradeoff(pu, r / sigma))  # noqa: E731
    r_star = brentq(f, 1e-9, 5.0, xtol=1e-14)
    assert r_star == pytest.approx(0.4695136557666768, abs=1e-9)
    assert adaptive_radius(pl, [sigma], p_upper=pu) == pytest.approx(r_star, abs=1e-9)


def test_composition_matches_two_dimensional_likelihood_ratio_test():
    """Trade-off of N(0, I2) vs N((0.7, 1.1), I2) by Monte Carlo of the optimal (likelihood-ratio) test."""
    mu = np.array([0.7, 1.1])
    rng = np.random.default_rng(0)
    z0 = rng.normal(size=(400_000, 2))
    z1 = rng.normal(size=(400_000, 2)) + mu
    t = np.quantile(z0 @ mu, 1 - 0.05)          # reject H0 when mu.z > t, level 0.05
    type2 = float(np.mean(z1 @ mu <= t))
    assert type2 == pytest.approx(0.6334531573588004, abs=3e-3)
    assert gaussian_tradeoff(0.05, composed_mu(mu)) == pytest.approx(0.6334531573588004, abs=1e-12)
    assert effective_sigma([1.0, 2.0, math.inf]) == pytest.approx(1 / math.sqrt(1.25), abs=1e-12)


# ---- A3 averaging and noise scale -----------------------------------------------------------------------
def test_averaging_unbiased_and_minimum_variance():
    torch.manual_seed(0)
    d, s1, s2 = 20, 1.0, 1.2
    w = torch.rand(3, d, dtype=torch.float64)
    c1, c2 = averaging_coefficients(w, s1, s2)
    torch.testing.assert_close(c1 + w * c2, torch.ones_like(w), atol=1e-12, rtol=0)
    v2 = (w.pow(2).sum(1, keepdim=True) * s2 ** 2 / d).expand_as(w)
    var = lambda a, b: a ** 2 * s1 ** 2 + b ** 2 * v2  # noqa: E731
    best = var(c1, c2)
    for t in torch.linspace(-0.5, 1.5, 41, dtype=torch.float64):   # other unbiased pairs: c1 = t, c2 = (1-t)/w
        assert bool((var(torch.full_like(w, t), (1 - t) / w) >= best - 1e-12).all())


def test_averaging_ones_mask_and_printed_values():
    w = torch.ones(1, 10, dtype=torch.float64)
    s1, sigma = 1.0, 0.75
    s2 = split_sigma2(sigma, s1)
    c1, c2 = averaging_coefficients(w, s1, s2, "variance_consistent")
    var = c1 ** 2 * s1 ** 2 + c2 ** 2 * s2 ** 2 * 10 / 10
    torch.testing.assert_close(var, torch.full_like(w, 0.5625), atol=1e-12, rtol=0)
    p1, p2 = averaging_coefficients(w, s1, s2, "as_printed")
    assert float(p1[0, 0]) == pytest.approx(0.9278350515463918, abs=1e-12)
    assert float(p2[0, 0]) == pytest.approx(0.07216494845360821, abs=1e-12)
    z1, z2 = averaging_coefficients(torch.zeros(2, 5), s1, s2)
    assert torch.equal(z1, torch.ones(2, 5)) and torch.equal(z2, torch.zeros(2, 5))


def test_noise_scale_recomputed_per_sample_from_mask():
    d = 4000
    x = torch.zeros(2, d, dtype=torch.float64)
    w = torch.stack([torch.ones(d), torch.linspace(0, 1, d) ** 3]).double()
    g = torch.Generator().manual_seed(0)
    q = GaussianQueries(x, [1.0, 2.0], "linf", g)
    q(0)
    m2 = q(1, w)
    expect = 2.0 * w.norm(dim=1) / math.sqrt(d)
    assert float(expect[1]) < 0.8 * float(expect[0])
    torch.testing.assert_close(m2.std(dim=1), expect, rtol=0.05, atol=0)
    # a fixed scale (the pitfall) would give row 1 the std of row 0: the check above would fail
    assert abs(float(m2[1].std()) - float(expect[0])) > 0.1 * float(expect[0])
    with pytest.raises(ValueError, match="already queried"):
        q(1, w)


def test_sensitivity_of_masked_query():
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = int(rng.integers(1, 50))
        w, delta = rng.uniform(0, 1, d), rng.uniform(-1, 1, d) * rng.uniform(0, 2)
        assert np.linalg.norm(w * delta) <= np.linalg.norm(w) * np.abs(delta).max() + 1e-12


# ---- information flow -------------------------------------------------------------------------------------
class RecordingMask(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, m1: torch.Tensor) -> torch.Tensor:
        self.seen.append(m1.detach().clone())
        return torch.zeros_like(m1)


class LeakyARS(ARSModel):
    """A broken ARS whose mask network reads the clean input (what the test must catch)."""

    def pipeline(self, q):
        s1, s2 = q.sigmas
        m1 = q(0)
        w = self.mask(q._x)
        m2 = q(1, w)
        c1, c2 = averaging_coefficients(w, s1, s2, self.averaging)
        return self.base_net(c1 * m1 + c2 * m2)


def _mask_saw_only_noisy_inputs(model: ARSModel, x: torch.Tensor, sigma1: float) -> bool:
    model.mask_net.seen.clear()
    model(x.expand(2000, *x.shape[1:]), torch.Generator().manual_seed(1))
    seen = torch.cat(model.mask_net.seen)
    resid = seen - x
    return bool((resid.abs() > 0).all()) and abs(float(resid.std()) - sigma1) < 0.05 * sigma1


@pytest.mark.parametrize("cls, ok", [(ARSModel, True), (LeakyARS, False)])
def test_mask_network_never_sees_clean_input(cls, ok):
    x = torch.rand(1, 1, 6, 6)
    model = cls(RecordingMask(), nn.Sequential(nn.Flatten(), nn.Linear(36, 2)), sigma=0.5, num_classes=2,
                sigma1=1.0)
    assert _mask_saw_only_noisy_inputs(model, x, float(model.sigma1())) is ok


# ---- equivalence with plain Gaussian smoothing ------------------------------------------------------------
class Capture(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.last = None

    def forward(self, z):
        self.last = z.detach().clone()
        return torch.zeros(len(z), 2)


class OnesMask(nn.Module):
    def forward(self, m1):
        return torch.ones_like(m1)


@pytest.mark.parametrize("sigma1, averaging, same", [
    (1.0, "variance_consistent", True), (1e6, "variance_consistent", True), (1e6, "as_printed", True),
    (1.0, "as_printed", False),
])
def test_ones_mask_is_gaussian_smoothing_in_distribution(sigma1, averaging, same):
    """x_hat ~ N(x, sigma^2 I) for an all-ones mask with the consistent averaging (any sigma1) and as sigma1 -> inf;
    the printed averaging at sigma1 = 1 is not (variance 0.868 vs 0.5625 at d = 10): the KS test catches it."""
    sigma, d = 0.75, 10
    cap = Capture()
    model = ARSModel(OnesMask(), cap, sigma, 2, sigma1=sigma1, averaging=averaging, mask_activation="none")
    x = torch.linspace(-1, 1, d, dtype=torch.float64)[None]
    model.double()
    model(x.expand(20000, d), torch.Generator().manual_seed(0))
    z = ((cap.last - x) / sigma).reshape(-1).numpy()
    p = stats.kstest(z, "norm").pvalue
    assert bool(p > 1e-4) is same


def _linear_base(a: torch.Tensor, b: float) -> nn.Module:
    lin = nn.Linear(len(a), 1).double()
    with torch.no_grad():
        lin.weight[:] = a[None]
        lin.bias[:] = b
    return nn.Sequential(nn.Flatten(), lin, _TwoLogits())


class _TwoLogits(nn.Module):
    def forward(self, s):
        return torch.cat([-s, s], dim=1)


def test_ars_ones_mask_counts_match_gaussian_certifier():
    """Same model, ones mask: ARS (sigma1 = 1) and Cohen's certifier estimate the same p_A (within MC error)."""
    torch.manual_seed(0)
    d, sigma = 8, 0.5
    a, b = torch.randn(d, dtype=torch.float64), 0.3
    x = torch.randn(1, d, dtype=torch.float64)
    ars = ARSModel(OnesMask(), _linear_base(a, b), sigma, 2, sigma1=1.0, mask_activation="none").double()
    c_ars = AdaptiveCertifier(n0=50, n=20000, alpha=0.001, batch=5000).certify(ars, x)[0]
    from rlcert.certify import BaseClassifier
    base = BaseClassifier(_linear_base(a, b), 2)
    c_g = GaussianCertifier(sigma=sigma, n0=50, n=20000, alpha=0.001, batch=5000).certify(base, x)[0]
    p_exact = normal.cdf(abs(float(x[0] @ a + b)) / (sigma * float(a.norm())))
    for c in (c_ars, c_g):
        assert abs(c.counts.max() / 20000 - p_exact) < 4 * math.sqrt(p_exact * (1 - p_exact) / 20000) + 1e-4
    assert c_ars.prediction == c_g.prediction


# ---- calibration (A4): constant mask, linear base, exact p --------------------------------------------------
class ConstMask(nn.Module):
    def __init__(self, w0: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("w0", w0)

    def forward(self, m1):
        return self.w0.expand_as(m1)


def test_certificate_calibration_and_exact_soundness():
    """Failure rate P(p_lower > p_true) <= alpha over 300 runs; the point estimate as 'bound' fails the same check.
    And the ARS l-inf radius from the exact p never exceeds the exact l-inf distance to the boundary."""
    torch.manual_seed(1)
    d, sigma, s1, alpha, n, runs = 6, 0.6, 1.0, 0.05, 300, 300
    a, b = torch.randn(d, dtype=torch.float64), 0.2
    w0 = torch.rand(d, dtype=torch.float64) * 0.8 + 0.2
    x = torch.randn(1, d, dtype=torch.float64) * 0.3
    model = ARSModel(ConstMask(w0), _linear_base(a, b), sigma, 2, sigma1=s1, mask_activation="none").double()
    s1_, s2_ = model.noise_sigmas()
    c1, c2 = averaging_coefficients(w0[None], s1_, s2_)
    v = c1 ** 2 * s1_ ** 2 + c2 ** 2 * (w0.norm() ** 2 * s2_ ** 2 / d)
    margin = float(x[0] @ a + b)
    p_true = normal.cdf(abs(margin) / math.sqrt(float((a ** 2 * v[0]).sum())))
    cert = AdaptiveCertifier(n0=20, n=n, alpha=alpha, batch=n, seed=3)
    out = cert.certify(model, x.expand(runs, d), seeds=list(range(runs)))
    top = int(margin > 0)
    n_a = np.array([c.counts[top] for c in out])
    fails = int((cp_lower(n_a, n, alpha) > p_true).sum())
    limit = stats.binom.ppf(1 - 1e-4, runs, alpha)
    assert fails <= limit
    assert int((n_a / n > p_true).sum()) > limit          # a too-generous bound (the point estimate) is caught
    r_exact_p = adaptive_radius(p_true, model.noise_sigmas(), dim=d)
    assert r_exact_p <= abs(margin) / float(a.abs().sum()) + 1e-12


def test_static_and_vanilla_models_and_user_pipeline():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(2, 1, 4, 4)
    cert = AdaptiveCertifier(n0=10, n=100, alpha=0.01, batch=50)
    for model in (VanillaSmoothingModel(base, 0.5, 3), StaticMaskModel(base, 0.5, 3, (1, 4, 4))):
        assert model.noise_sigmas() == (0.5,)
        assert len(cert.certify(model, x)) == 2
    # a user's three-step l2 pipeline: radius uses sigma_eff of all three steps
    def fn(q):
        m1 = q(0)
        m2 = q(1, (m1 > 0.5).float())
        m3 = q(2)
        return base((m1 + m2 + m3) / 3)
    pipe = AdaptivePipeline(fn, (1.0, 2.0, 2.0), 3, norm="l2")
    c = cert.certify(pipe, x)[0]
    if not c.abstained:
        assert c.radius == pytest.approx(effective_sigma((1.0, 2.0, 2.0)) * normal.ppf(c.p_lower), rel=1e-12)
    assert c.norm == "l2"


def test_predict_runs_full_pipelines():
    """PREDICT through the pipeline: a base that always answers class 2 is predicted as 2; a coin flip abstains."""
    x = torch.rand(3, 1, 4, 4)
    const = AdaptivePipeline(lambda q: torch.full((q.shape[0],), 2, dtype=torch.long) + 0 * q(0)[:, 0, 0, 0].long(),
                             (0.5,), 3)
    cert = AdaptiveCertifier(n=100, alpha=0.01, batch=50)
    assert cert.predict(const, x).tolist() == [2, 2, 2]
    coin = AdaptivePipeline(lambda q: (q(0)[:, 0, 0, 0] > x[0, 0, 0, 0]).long(), (0.5,), 2)
    assert (cert.predict(coin, x[:1].expand(20, 1, 4, 4), seeds=list(range(20))) == -1).mean() > 0.8


def test_learned_sigma1_trains_and_keeps_the_split():
    base = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    model = ARSModel(nn.Conv2d(1, 1, 3, padding=1), base, 0.5, 2, sigma1=1.0, learn_sigma1=True)
    assert model.sigma1_theta.requires_grad
    loss = nn.functional.cross_entropy(model(torch.rand(8, 1, 4, 4)), torch.zeros(8, dtype=torch.long))
    loss.backward()
    assert model.sigma1_theta.grad is not None and model.mask_net.weight.grad is not None
    s1, s2 = model.noise_sigmas()
    assert s1 == pytest.approx(1.0, rel=1e-6) and 1 / s1 ** 2 + 1 / s2 ** 2 == pytest.approx(4.0, rel=1e-6)
