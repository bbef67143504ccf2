"""Randomized ablation (thesis Ch. 2): Delta(rho) against exact combinatorics, the sampler against uniformity,
Theorem 2.1 by enumeration, and the Monte-Carlo certificate by a calibration run. Each soundness check also shows
that a certificate one step too generous is caught."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy.stats import binom, chisquare

from rlcert.certify.core.certificate import ABSTAIN
from rlcert.certify.core.classifier import BaseClassifier
from rlcert.certify.core.stats import cp_lower
from rlcert.certify.randomized.ablation import (
    RandomAblation,
    RandomizedAblationCertifier,
    ablation_delta,
    ablation_radius,
    ablation_radius_two_bound,
    encode_null,
    log_retention,
)


def exact_retention(rho: int, d: int, k: int) -> Fraction:
    """C(d - rho, k) / C(d, k) as an exact rational (Python big integers)."""
    return Fraction(math.comb(d - rho, k), math.comb(d, k))


def exact_radius(p: float, d: int, k: int) -> int:
    """Largest rho with p - Delta(rho) > 1/2, all in exact rationals (linear scan from the float estimate)."""
    target = Fraction(3, 2) - Fraction(p)
    if not exact_retention(0, d, k) > target:
        return -1
    lo, hi = 0, d - k  # binary search on the exact monotone condition
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if exact_retention(mid, d, k) > target:
            lo = mid
        else:
            hi = mid - 1
    return lo


# ---- Delta(rho) -------------------------------------------------------------------------------------------------
def test_delta_fixtures():
    assert ablation_delta(0, 64, 4) == 0.0
    for d, k in [(64, 4), (784, 45), (50176, 1000)]:
        assert ablation_delta(1, d, k) == pytest.approx(k / d, rel=1e-12)
        deltas = [ablation_delta(r, d, k) for r in range(0, min(d, 60))]
        assert all(a < b for a, b in zip(deltas, deltas[1:]))
    assert ablation_delta(9, 64, 4) == pytest.approx(0.463223, abs=5e-7)  # Fig. 6.2 of the thesis
    assert ablation_delta(61, 64, 4) == 1.0 and log_retention(61, 64, 4) == -math.inf
    assert ablation_delta(60, 64, 4) == pytest.approx(1 - 1 / math.comb(64, 4), abs=1e-15)


def test_delta_equals_brute_force_subset_enumeration():
    """Delta(rho) = fraction of the k-subsets of [d] that hit a fixed rho-set, by enumerating every subset."""
    for d in range(1, 9):
        for k in range(1, d + 1):
            subsets = list(itertools.combinations(range(d), k))
            for rho in range(0, d + 1):
                hit = sum(1 for s in subsets if min(s) < rho)  # changed pixels = {0, ..., rho-1}
                exact = Fraction(hit, len(subsets))
                got = ablation_delta(rho, d, k)
                assert abs(got - exact) < 1e-13, (d, k, rho)
                # one subset fewer (a Delta one step too small, i.e. too generous) is outside the tolerance
                assert abs(got - (exact - Fraction(1, len(subsets)))) > 1e-13 or hit == 0


@pytest.mark.parametrize("k", [500, 1000, 2000])
def test_log_space_matches_big_integers_at_imagenet_size(k):
    d = 224 * 224
    for rho in [1, 2, 17, 34, 69, 300, 5000, d - k]:
        exact = exact_retention(rho, d, k)
        # log of an exact rational: numerator/denominator are huge ints; math.log handles big ints exactly enough
        log_exact = math.log(exact.numerator) - math.log(exact.denominator)
        assert log_retention(rho, d, k) == pytest.approx(log_exact, rel=1e-11, abs=1e-12)
        assert ablation_delta(rho, d, k) == pytest.approx(float(1 - exact), rel=1e-11)


@pytest.mark.parametrize("d,k,cap", [(784, 45, 11), (784, 40, 13), (784, 10, 52), (1024, 75, 9), (1024, 150, 4),
                                     (50176, 500, 69), (50176, 1000, 34), (50176, 2000, 17)])
def test_radius_caps_at_n10000_alpha005_match_spec_and_exact_rationals(d, k, cap):
    """All 10,000 votes for c_A at alpha = 0.05: p_lower = 0.05^(1/10000); the caps of spec 1.4."""
    p = cp_lower(10_000, 10_000, 0.05)
    assert p == pytest.approx(0.99970047, abs=1e-8)
    r = int(ablation_radius(p, d, k))
    assert r == cap == exact_radius(p, d, k)
    # exact check of the certificate and of one step more
    assert Fraction(p) - (1 - exact_retention(r, d, k)) > Fraction(1, 2)
    assert not Fraction(p) - (1 - exact_retention(r + 1, d, k)) > Fraction(1, 2)


def test_radius_matches_exact_rationals_on_random_p():
    rng = np.random.default_rng(0)
    for d, k in [(64, 8), (784, 45), (1024, 100), (50176, 1000)]:
        ps = rng.uniform(0.45, 1.0, size=12)
        got = ablation_radius(ps, d, k)
        assert got.shape == ps.shape
        assert list(got) == [exact_radius(float(p), d, k) for p in ps]
    assert int(ablation_radius(0.5, 64, 8)) == -1 and int(ablation_radius(0.5000001, 64, 8)) == 0


def brute_force_radius(p: Fraction, d: int, k: int, p_upper: Fraction | None = None) -> int:
    """Largest rho with p - Delta(rho) > 1/2 (or > p_upper + Delta(rho)), Delta counted by enumerating every k-subset
    of [d] and the subsets that avoid a fixed rho-set {0..rho-1}; -1 when rho = 0 fails. No formula, no float."""
    subsets = list(itertools.combinations(range(d), k))
    best = -1
    for rho in range(0, d + 1):
        delta = Fraction(sum(1 for s in subsets if min(s) < rho), len(subsets))
        ok = p - delta > (Fraction(1, 2) if p_upper is None else p_upper + delta)
        if not ok:
            break
        best = rho
    return best


@pytest.mark.parametrize("p,d,k", [(1.0, 4, 2), (0.875, 8, 3), (1.0, 12, 6)])
def test_exact_ties_certify_nothing_beyond_the_tie(p, d, k):
    """The issue's ties: p - Delta(1) == 1/2 exactly, so rho = 1 is not certified (float log sums said 1)."""
    assert Fraction(p) - (1 - exact_retention(1, d, k)) == Fraction(1, 2)
    assert int(ablation_radius(p, d, k)) == 0 == brute_force_radius(Fraction(p), d, k)


def test_radius_equals_brute_force_at_every_tie_and_its_neighbours():
    """For every tiny (d, k) and rho: p = 1/2 + Delta(rho) exactly (a tie) when it is a float, and the floats one ulp
    either side; plus non-dyadic rationals (Fraction) at the ties. Brute force over all subsets decides."""
    checked = ties = 0
    for d in range(2, 9):
        for k in range(1, d):
            total = math.comb(d, k)
            for rho in range(1, d - k + 1):
                tie = Fraction(1, 2) + 1 - Fraction(math.comb(d - rho, k), total)
                if tie > 1:
                    continue
                candidates = [tie] if tie.denominator & (tie.denominator - 1) else []  # non-dyadic: exact only
                if not candidates:  # dyadic: the float is the tie itself
                    f = float(tie)
                    assert Fraction(f) == tie
                    ties += 1
                    candidates = [f, math.nextafter(f, 0.0)] + ([math.nextafter(f, 2.0)] if f < 1 else [])
                for p in candidates:
                    want = brute_force_radius(Fraction(p), d, k)
                    assert int(ablation_radius(p, d, k)) == want, (p, d, k)
                    q = 1 - Fraction(p)  # two-bound with p_upper = 1 - p_lower is Corollary 2.1 again
                    if isinstance(p, float):
                        q = float(q)
                    assert int(ablation_radius_two_bound(p, q, d, k)) == want, (p, d, k)
                    checked += 1
    assert ties >= 10 and checked >= 40, (ties, checked)


def test_two_bound_radius():
    d, k = 784, 45
    got = int(ablation_radius_two_bound(0.9, 0.05, d, k))
    assert 0.9 - ablation_delta(got, d, k) > 0.05 + ablation_delta(got, d, k)
    assert not 0.9 - ablation_delta(got + 1, d, k) > 0.05 + ablation_delta(got + 1, d, k)
    # with p_upper = 1 - p_lower it reduces to Corollary 2.1
    for p in [0.6, 0.9, 0.999]:
        assert int(ablation_radius_two_bound(p, 1 - p, d, k)) == int(ablation_radius(p, d, k))
    assert int(ablation_radius_two_bound(0.4, 0.4, d, k)) == -1


# ---- the noise object ---------------------------------------------------------------------------------------------
def test_encoding_keeps_exactly_k_pixels_with_all_channels():
    noise = RandomAblation(k=7)
    x = torch.rand(3, 3, 5, 6)  # colour: 3 -> 6 channels, d = 30
    enc = encode_null(x)
    assert enc.shape == (3, 6, 5, 6)
    out = torch.empty(200, 6, 5, 6)
    noise.ablate_(out, enc[1], torch.Generator().manual_seed(0))
    pair_sums = out[:, :3] + out[:, 3:]  # (m, 3, 5, 6): 1 for real pixels, 0 for NULL
    assert torch.all(((pair_sums - 1).abs() < 1e-6) | (pair_sums == 0))
    kept = pair_sums[:, 0] > 0.5
    assert torch.equal(kept, pair_sums[:, 1] > 0.5) and torch.equal(kept, pair_sums[:, 2] > 0.5)  # channels together
    assert torch.all(kept.flatten(1).sum(1) == 7)
    assert torch.equal(out[:, :3][kept[:, None].expand(-1, 3, -1, -1)],
                       x[1][None].expand(200, -1, -1, -1)[kept[:, None].expand(-1, 3, -1, -1)])


def test_sampler_uniform_over_subsets_chi_square():
    """Every one of the C(5, 2) = 10 subsets equally likely (chi-square over 20,000 draws of the certifier's
    sampler); a sampler 5% biased towards one subset is rejected by the same test."""
    d, k, m = 5, 2, 20_000
    cert = RandomizedAblationCertifier(k)
    x = torch.full((1, 1, 1, d), 0.5)
    enc = encode_null(x)[0]
    out = torch.empty(m, 2, 1, d)
    cert.perturb_(out, enc, torch.Generator().manual_seed(1))
    kept = (out[:, 0, 0] + out[:, 1, 0]) > 0.5  # (m, d)
    subsets = list(itertools.combinations(range(d), k))
    index = {s: i for i, s in enumerate(subsets)}
    codes = [index[tuple(np.flatnonzero(row))] for row in kept.numpy()]
    counts = np.bincount(codes, minlength=len(subsets))
    assert chisquare(counts).pvalue > 1e-3
    biased = counts.copy()
    biased[0] += m // 20  # 5% extra mass on one subset
    assert chisquare(biased * m / biased.sum()).pvalue < 1e-6
    # per-pixel inclusion frequency k/d at a larger size
    mask = RandomAblation(10).keep_mask(20_000, 64, torch.Generator().manual_seed(2), "cpu")
    freq = mask.mean(0).numpy()
    assert np.abs(freq - 10 / 64).max() < 5 * math.sqrt((10 / 64) * (54 / 64) / 20_000)


def test_augment_same_or_independent_per_batch():
    noise = RandomAblation(4)
    x = torch.rand(16, 1, 4, 4)
    shared = noise.augment(x, torch.Generator().manual_seed(0), same_for_batch=True)
    indep = noise.augment(x, torch.Generator().manual_seed(0), same_for_batch=False)
    kept_s = (shared[:, 0] + shared[:, 1]) > 0.5
    kept_i = (indep[:, 0] + indep[:, 1]) > 0.5
    assert torch.all(kept_s == kept_s[:1]) and torch.all(kept_s.flatten(1).sum(1) == 4)
    assert not torch.all(kept_i == kept_i[:1]) and torch.all(kept_i.flatten(1).sum(1) == 4)
    assert torch.equal(noise.sample(x, torch.Generator().manual_seed(0)), indep)  # sample = independent draws


# ---- Theorem 2.1 by enumeration (spec 9.1.2) -----------------------------------------------------------------
def _exact_probs(f, x: torch.Tensor, k: int, num_classes: int) -> np.ndarray:
    """p_i(x) for every input of x (N, 1, 1, d) by enumerating all k-subsets (ablations built by encode_null)."""
    d = x.shape[-1]
    subsets = list(itertools.combinations(range(d), k))
    masks = torch.zeros(len(subsets), d)
    for i, s in enumerate(subsets):
        masks[i, list(s)] = 1
    enc = encode_null(x)  # (N, 2, 1, d)
    abl = enc[:, None] * masks[None, :, None, None, :]  # (N, S, 2, 1, d)
    labels = f(abl.reshape(-1, 2, 1, d)).reshape(len(x), len(subsets))
    return np.stack([(labels == c).double().mean(1).numpy() for c in range(num_classes)], axis=1)


def _parity_classifier(z: torch.Tensor) -> torch.Tensor:
    """spec 9.1.2: class = parity of the number of retained 1s, or class 2 if all retained pixels are 0."""
    ones = (z[:, 0] > 0.5).flatten(1).sum(1)
    return torch.where(ones == 0, torch.full_like(ones, 2), ones % 2)


def _hit_classifier(z: torch.Tensor) -> torch.Tensor:
    """class 1 iff some retained pixel is 1 (the tight case of Theorem 2.1 at x = 0)."""
    return ((z[:, 0] > 0.5).flatten(1).sum(1) > 0).long()


@pytest.mark.parametrize("f,num_classes", [(_parity_classifier, 3), (_hit_classifier, 2)])
def test_theorem_2_1_and_certificate_by_enumeration(f, num_classes):
    d, k = 6, 2
    xs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=d))).reshape(-1, 1, 1, d)
    p = _exact_probs(f, xs, k, num_classes)  # (64, K)
    dist = (xs.reshape(64, 1, d) != xs.reshape(1, 64, d)).sum(-1).numpy()
    deltas = np.array([ablation_delta(r, d, k) for r in range(d + 1)])
    gap = np.abs(p[:, None, :] - p[None, :, :]).max(-1)  # (64, 64)
    assert np.all(gap <= deltas[dist] + 1e-12)
    # certificate from the exact p_A: g unchanged within the radius (strict majority, so no ties)
    g = p.argmax(1)
    for i in range(64):
        r = int(ablation_radius(p[i, g[i]], d, k))
        if r >= 0:
            assert np.all(g[dist[i] <= r] == g[i])
            assert np.all(p[dist[i] <= r, g[i]] > 0.5)
    if f is _hit_classifier:
        # Theorem 2.1 is tight: |p(x') - p(x)| = Delta exactly for x = 0, so a Delta one subset smaller fails
        tight = gap[0] == deltas[dist[0]]
        assert tight[dist[0] > 0].all()
        too_small = np.maximum(deltas - 1 / math.comb(d, k), 0)
        assert np.any(gap[0] > too_small[dist[0]] + 1e-12)
        # and radius + 1 is unsound: at x = 0, p_0 = 1 certifies r = 1; a 2-pixel change flips g
        r0 = int(ablation_radius(p[0, 0], d, k))
        assert r0 == 1 and np.any(g[dist[0] == r0 + 1] != g[0])


# ---- Monte-Carlo certificate: calibration -------------------------------------------------------------------------
def _avoid_set_classifier(s: int) -> BaseClassifier:
    """class 0 iff none of the first s pixel positions is retained (NULL-encoded input (B, 2, 1, d))."""
    def f(z: torch.Tensor) -> torch.Tensor:
        kept = (z[:, 0, 0, :s] + z[:, 1, 0, :s]) > 0.5
        return kept.any(1).long()
    return BaseClassifier(f, 2, returns="labels")


def test_certificate_calibration_and_one_step_too_generous_is_caught():
    """300 certifications of one input with a known p_0 = C(d-s, k)/C(d, k) = 0.6709 (just below the threshold of
    radius 9): the certified radius exceeds the true-p radius (8) in at most alpha of the runs (binomial
    tolerance), and p_lower exceeds p_0 as rarely; radius + 1 fails the same check."""
    d, k, s, reps, alpha = 100, 2, 18, 300, 0.1
    p_true = float(exact_retention(s, d, k))
    r_true = exact_radius(p_true, d, k)
    assert r_true == 8
    cert = RandomizedAblationCertifier(k, n0=16, n=4000, alpha=alpha, batch=4000, seed=3)
    x = torch.full((reps, 1, 1, d), 0.5)
    certs = cert.certify(_avoid_set_classifier(s), x)
    radius = np.array([c.radius if not c.abstained else -1 for c in certs])
    preds = np.array([c.prediction for c in certs])
    p_low = np.array([c.p_lower for c in certs])
    assert set(preds) <= {0, ABSTAIN}
    limit = binom.ppf(0.999, reps, alpha)
    assert int(np.sum(radius > r_true)) <= limit
    assert int(np.sum(p_low[preds == 0] > p_true)) <= limit
    assert int(np.sum(np.where(preds == 0, radius + 1, -1) > r_true)) > limit  # one step too generous
    # the counts come from the sampler: their mean is the true p_0
    n0_counts = np.array([c.counts[0] for c in certs])
    assert abs(n0_counts.mean() / 4000 - p_true) < 4 * math.sqrt(p_true * (1 - p_true) / (4000 * reps))


def test_certify_seeded_and_batch_independent():
    cert = RandomizedAblationCertifier(3, n0=10, n=200, alpha=0.05, batch=150, seed=7)
    x = torch.rand(5, 1, 4, 4)
    clf = _avoid_set_classifier(2)
    all5 = cert.certify(clf, x, seeds=[10, 11, 12, 13, 14])
    one = cert.certify(clf, x[3:4], seeds=[13])
    assert all5[3] == one[0] and np.array_equal(all5[3].counts, one[0].counts)
    assert all5[3].norm == "l0"


def test_base_input_and_bad_parameters():
    cert = RandomizedAblationCertifier(5)
    b = cert.base_input(torch.rand(2, 3, 4, 4))
    assert b.shape == (1, 6, 4, 4) and int(((b[:, :3] + b[:, 3:]) > 0.5).sum()) == 3 * 5
    with pytest.raises(ValueError, match="k"):
        RandomizedAblationCertifier(0)
    with pytest.raises(ValueError, match=r"k \(retained pixels\) must be in \[1, d=4\]"):
        cert.certify(_avoid_set_classifier(1), torch.rand(2, 1, 1, 4))
    with pytest.raises(ValueError, match=r"k \(retained pixels\) must be in \[1, d=16\]"):
        RandomizedAblationCertifier(17).certify(_avoid_set_classifier(1), torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match="channel axis"):
        RandomizedAblationCertifier(2).certify(_avoid_set_classifier(1), torch.rand(4, 16))
    with pytest.raises(ValueError, match="rho"):
        log_retention(-1, 10, 2)
