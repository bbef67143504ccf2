"""Variable-Lambda (fractional l_p / ECM) and deterministic l0: design identities, MILP, brute-force soundness."""

import argparse
import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch

from rlcert.certify.core.classifier import BaseClassifier
from rlcert.certify.deterministic.lambda_design import (
    PUBLISHED_WEIGHTS,
    LambdaDesign,
    floor_design,
    milp_design,
    power_ecm,
    real_valued_distribution,
)
from rlcert.certify.deterministic.variable_lambda import DeterministicL0, VariableLambda, bounds_x2q

FIG_4_3B = LambdaDesign(5, 10, {2: 1, 3: 2})  # Lambda = 2/5 once, Lambda = 3/5 twice, 2 inf outcomes


def test_fig_4_3b_split_counts():
    assert FIG_4_3B.split_counts().tolist() == [0, 3, 6, 8, 8, 8]
    widths, rs = FIG_4_3B.outcomes()
    assert widths.tolist() == [2, 2, 3, 3, 3, 3, 3, 3, 0, 0] and rs.tolist() == [0, 1, 0, 1, 2, 0, 1, 2, 0, 0]
    # independent count: number of outcomes whose (lower, upper) differ for values k/5 apart
    for xl, yl in itertools.product(range(6), repeat=2):
        ux, lx = bounds_x2q(torch.tensor(xl), torch.from_numpy(widths), torch.from_numpy(rs), 5)
        uy, ly = bounds_x2q(torch.tensor(yl), torch.from_numpy(widths), torch.from_numpy(rs), 5)
        assert int(((ux != uy) | (lx != ly)).sum()) == FIG_4_3B.split_counts()[abs(xl - yl)]


def test_bounds_formula_and_inf():
    # float reference of Eq. 4.4-4.5 for Lambda = j/q, s = (r + .5)/q
    q = 7
    for j in range(1, q + 1):
        for r in range(j):
            for xl in range(q + 1):
                lam, s, x = j / q, (r + 0.5) / q, xl / q
                u = lam * np.ceil((x - s) / lam) + s
                up2, lo2 = bounds_x2q(torch.tensor(xl), torch.tensor(j), torch.tensor(r), q)
                assert abs(up2.item() / (2 * q) - min(u, 1)) < 1e-9
                assert abs(lo2.item() / (2 * q) - max(u - lam, 0)) < 1e-9
    up2, lo2 = bounds_x2q(torch.tensor(3), torch.tensor(0), torch.tensor(0), q)
    assert (up2.item(), lo2.item()) == (2 * q, 0)


@pytest.mark.parametrize("key, p, used", [("1/2", 0.5, 985), ("1/3", 1 / 3, 980)])
def test_published_designs(key, p, used):
    d = LambdaDesign(255, 1000, PUBLISHED_WEIGHTS[key])
    g = power_ecm(p)
    assert d.num_finite == used
    assert d.is_below(g)  # never exceeds g
    assert d.deficit(g) <= 0.0201
    scaled = d.scaled(3)
    assert scaled.budget == 3000
    assert np.allclose(scaled.split_probability(), d.split_probability() / 3)


def test_real_valued_distribution_matches_g():
    # p = 1, alpha = 3 is Theorem 4.1 (Lambda = 1 w.p. 1/alpha, else inf): Pr^split(z) = z / alpha
    v, p_inf = real_valued_distribution(power_ecm(1.0, alpha=3.0), 9)
    assert np.allclose(v[1:9], 0) and abs(v[9] - 1 / 3) < 1e-12 and abs(p_inf - 2 / 3) < 1e-12
    for g in (power_ecm(0.5), power_ecm(1 / 3), power_ecm(0.5, alpha=2.0), lambda z: 1 - (1 - np.asarray(z)) ** 2):
        q = 12
        v, p_inf = real_valued_distribution(g, q)
        assert np.all(v >= 0) and abs(v.sum() + p_inf - 1) < 1e-12
        k = np.arange(q + 1)
        split = np.array([sum(min(kk, j) * v[j] / j for j in range(1, q + 1)) for kk in k])
        assert np.allclose(split, g(k / q), atol=1e-12)


def test_milp_never_exceeds_g_and_approaches_it():
    g = power_ecm(0.5)
    q = 10
    deficits = []
    for budget in (20, 50, 200, 1000):
        d = milp_design(g, q, budget, time_limit=20)
        assert d.is_below(g)
        assert d.num_finite <= budget
        deficits.append(d.deficit(g))
        fl = floor_design(g, q, budget)
        assert fl.is_below(g) and fl.deficit(g) < (q * q + q) / (2 * budget)
        assert deficits[-1] <= fl.deficit(g) + 1e-12
    assert deficits[-1] < 0.005 and deficits[-1] < deficits[0]
    # general concave g
    g2 = lambda z: np.sqrt(np.asarray(z)) * 0.5 + 0.5 * np.asarray(z)  # noqa: E731
    d = milp_design(g2, 8, 100, time_limit=20)
    assert d.is_below(g2) and d.deficit(g2) < 0.05


def _grid(q, d):
    return torch.tensor(list(itertools.product(range(q + 1), repeat=d)), dtype=torch.float32) / q


def _table_clf(q, width, num_classes, rng, structured):
    """Hard f on [upper, lower] inputs (B, 2d): random table on the (2q*upper, 2q*lower) codes, or a linear score."""
    if structured:
        w = torch.from_numpy(rng.normal(size=(2 * width, num_classes))).float()
        return BaseClassifier(lambda z: (z @ w).argmax(1), num_classes, returns="labels")
    table = torch.from_numpy(rng.integers(0, num_classes, size=(2 * q + 1,) * (2 * width)))

    def f(z):
        return table[tuple(torch.round(z * 2 * q).long().T)]
    return BaseClassifier(f, num_classes, returns="labels")


@pytest.mark.parametrize("setting", ["fig43b", "milp_p05", "milp_p033"])
def test_brute_force_soundness(setting):
    rng = np.random.default_rng(0)
    if setting == "fig43b":
        q, d, cert_kw = 5, 2, dict(design=FIG_4_3B, p=None, g=lambda z: np.interp(np.asarray(z) * 5, range(6),
                                                                                  [0, .3, .6, .8, .8, .8]))
    else:
        p = 0.5 if setting == "milp_p05" else 1 / 3
        q, d = 4, 3
        cert_kw = dict(design=milp_design(power_ecm(p), q, 12, time_limit=10), p=p, alpha=2.0)
    grid = _grid(q, d)
    levels = np.round(grid.numpy() * q).astype(int)
    violations = certified = 0
    for trial in range(4):
        cert = VariableLambda(seed=trial, batch_size=7, **cert_kw)
        clf = _table_clf(q, d, 3, rng, structured=trial >= 2)
        res = cert.certify(clf, grid)
        preds = np.array([c.prediction for c in res])
        kbars = [vote_kbar(c.counts) for c in res]
        s = cert.design.split_counts()
        changed = s[np.abs(levels[:, None, :] - levels[None, :, :])].sum(-1)  # sum_i S(|X_i - Y_i|)
        exact_ok = changed <= np.array(kbars)[:, None]
        violations += int((exact_ok & (preds[:, None] != preds[None, :])).sum())
        if cert.p is not None:  # the reported l_p radius is inside the exact region
            dist = (np.abs(levels[:, None, :] - levels[None, :, :]) / q) ** cert.p
            radii = np.array([c.radius for c in res])
            in_ball = dist.sum(-1) ** (1 / cert.p) <= radii[:, None] + 1e-12
            assert not np.any(in_ball & ~exact_ok)
            violations += int((in_ball & (preds[:, None] != preds[None, :])).sum())
            certified += int((radii > 0).sum())
        certified += int(sum(k > 0 for k in kbars))
    assert violations == 0
    assert certified > 0


def vote_kbar(counts):
    from rlcert.certify.core.votes import vote_certificate
    return vote_certificate(counts)[1]


def test_deterministic_l0_structure_and_soundness():
    cert = DeterministicL0(alpha=3, q=4, unit="feature", seed=0)
    x = torch.tensor([[0.0, 0.25, 0.5, 0.75, 1.0, 0.5]])
    enc = torch.cat([cert.encode(x, b) for b in range(3)])  # (3, 12): [upper(6), lower(6)]
    upper, lower = enc[:, :6], enc[:, 6:]
    kept = ~((upper == 1) & (lower == 0))
    assert kept.sum(0).tolist() == [1] * 6  # each feature kept in exactly one of alpha evaluations
    xs = x.expand(3, 6)
    assert torch.allclose(upper[kept], torch.clamp(xs[kept] + 0.125, max=1.0))  # value kept: (x +- 0.5/q)
    assert torch.allclose(lower[kept], torch.clamp(xs[kept] - 0.125, min=0.0))
    # same encoding as variable-Lambda with the l0 design {Lambda = 1/q once, alpha - 1 inf} on the grid
    vl = VariableLambda(LambdaDesign(4, 3, {1: 1}), p=None, g=lambda z: (np.asarray(z) > 0) / 3.0, seed=0)
    for b in range(3):
        assert torch.allclose(vl.encode(x, b), cert.encode(x, b))
    # brute force: d = 6 binary-ish features (q = 2 levels), arbitrary replacements at up to kbar positions
    rng = np.random.default_rng(0)
    q, d = 2, 6
    allx = torch.tensor(list(itertools.product([0.0, 0.5, 1.0], repeat=d)))
    violations = certified = 0
    for trial in range(3):
        cert = DeterministicL0(alpha=3, q=q, unit="feature", seed=trial)
        w = torch.from_numpy(rng.normal(size=(2 * d, 3))).float()
        clf = BaseClassifier(lambda z, w=w: (z @ w).argmax(1), 3, returns="labels")
        res = cert.certify(clf, allx)
        preds = np.array([c.prediction for c in res])
        radii = np.array([int(c.radius) for c in res])
        l0 = (allx[:, None, :] != allx[None, :, :]).sum(-1).numpy()
        violations += int(((l0 <= radii[:, None]) & (preds[:, None] != preds[None, :])).sum())
        certified += int((radii > 0).sum())
    assert violations == 0 and certified > 0


def test_l0_pixel_unit_shares_channels():
    cert = DeterministicL0(alpha=4, q=255, unit="pixel", seed=0)
    keep = cert.keep_index((3, 5, 5)).reshape(3, 5, 5)
    assert torch.equal(keep[0], keep[1]) and torch.equal(keep[0], keep[2])
    feat = DeterministicL0(alpha=4, q=255, unit="feature", seed=0).keep_index((3, 5, 5)).reshape(3, 5, 5)
    assert not torch.equal(feat[0], feat[1])


def test_cli_and_validation():
    parser = argparse.ArgumentParser()
    VariableLambda.add_arguments(parser)
    DeterministicL0.add_arguments(parser)
    args = parser.parse_args(["--p", "0.5", "--lambda-alpha", "2"])
    vl = VariableLambda.from_arguments(args)
    assert vl.budget == 2000 and vl.norm == "lp:0.5"
    assert vl.base_input(torch.zeros(3, 3, 4, 4)).shape == (1, 6, 4, 4)
    args = parser.parse_args(["--l0-alpha", "5", "--l0-unit", "feature", "--q", "4"])
    l0 = DeterministicL0.from_arguments(args)
    assert (l0.alpha, l0.unit, l0.q) == (5, "feature", 4)
    assert l0.base_input(torch.zeros(3, 7)).shape == (1, 14)
    with pytest.raises(ValueError, match="published"):
        VariableLambda.from_arguments(parser.parse_args(["--p", "0.7"]))
    with pytest.raises(ValueError, match="never exceed"):
        VariableLambda(LambdaDesign(4, 4, {1: 4}), p=0.5)
    with pytest.raises(ValueError, match="alpha"):
        DeterministicL0(alpha=0)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_ecm_and_lp_modes_share_one_radius_convention(alpha):
    """Same design, same alpha: the ECM radius D (units of sum_i g(|x_i - y_i|), g of the alpha = 1 design) and
    the l_p radius r satisfy D = r^p, and D is sound by brute force over all level differences (and one step too
    generous, 2 D, is not: a difference vector with sum g <= 2 D changes more than Kbar evaluations)."""
    import itertools

    q, d, p = 4, 3, 0.5
    g = power_ecm(p)
    design = milp_design(g, q, 12, time_limit=10)
    lp = VariableLambda(design, p=p, alpha=alpha)
    ecm = VariableLambda(design, p=None, g=g, alpha=alpha)
    s = ecm.design.split_counts()
    diffs = np.array(list(itertools.product(range(q + 1), repeat=d)))
    changed = s[diffs].sum(1)
    dist = g(diffs / q).sum(1)
    too_generous_caught = False
    for kbar in range(0, int(changed.max()) + 1):
        assert ecm.radius(kbar) == pytest.approx(lp.radius(kbar) ** p, rel=1e-12)
        inside = dist <= ecm.radius(kbar) + 1e-12
        assert np.all(changed[inside] <= kbar)
        too_generous_caught |= bool(np.any(changed[dist <= 2 * ecm.radius(kbar) + 1e-12] > kbar))
    assert too_generous_caught


def test_design_check_is_exact_at_float_ties():
    """S(k) <= B g(k/q) is the Lipschitz guarantee, so it must not be decided with a float tolerance in the unsound
    direction. B = 201391449, q = 2, g = z^p (p the float 1/3): B (1/2)^p = 159844499 - 8.8e-10 (a continued-fraction
    convergent), which rounds to exactly 159844499 in float64; S(1) = 159844499 exceeds g by 8.8e-10 votes and
    was accepted by floor(B g + 1e-9). Exact ties (p = 1/2: (1/4)^(1/2) = 1/2) stay accepted."""
    from decimal import Decimal, localcontext

    p, budget, n = 1 / 3, 201_391_449, 159_844_499
    g = power_ecm(p)
    with localcontext() as ctx:  # the reference: 100 digits, the float p as an exact rational
        ctx.prec = 100
        fp = Fraction(p)
        exact = budget * (Decimal(fp.numerator) / fp.denominator * Decimal(0.5).ln()).exp()
    assert Decimal(n - 1) < exact < Decimal(n) and float(budget * g(0.5)) == n
    assert not LambdaDesign(2, budget, {1: n}).is_below(g)
    assert LambdaDesign(2, budget, {1: n - 1}).is_below(g)
    # exact equality is allowed (inclusive), one more vote is not: checked against Fraction arithmetic
    half = power_ecm(0.5)
    for s in range(495, 506):
        want = Fraction(s, 1000) ** 2 <= Fraction(1, 4)
        assert LambdaDesign(4, 1000, {1: s}).is_below(half) == want, s
    assert LambdaDesign(4, 1000, {1: 500}).is_below(half) and not LambdaDesign(4, 1000, {1: 501}).is_below(half)
    # alpha scales g: z^p / alpha, capped at 1
    assert LambdaDesign(4, 1000, {1: 250}).is_below(power_ecm(0.5, alpha=2.0))
    assert not LambdaDesign(4, 1000, {1: 251}).is_below(power_ecm(0.5, alpha=2.0))


@pytest.mark.parametrize("key, p", [("1/2", 0.5), ("1/3", 1 / 3)])
def test_reported_radius_never_exceeds_the_exact_value(key, p):
    """The l_p radius is inclusive, so rounding must go down: against D^(1/p) in 60-digit arithmetic (D = alpha
    Kbar / B and p exact rationals of the floats). Plain float D ** (1 / p) overshoots, e.g. p = 1/2, Kbar/B =
    1/10: 0.1 ** 2 = 0.010000000000000002 > 1/100."""
    from decimal import Decimal, localcontext

    design = LambdaDesign(255, 1000, PUBLISHED_WEIGHTS[key])
    fp = Fraction(p)
    over = 0
    for alpha in (1.0, 3.0):
        cert = VariableLambda(design, p=p, alpha=alpha)
        for kbar in range(0, 3000, 7):
            got = cert.radius(kbar)
            d = Fraction(alpha) * kbar / cert.budget
            with localcontext() as ctx:
                ctx.prec = 60
                dd = Decimal(d.numerator) / Decimal(d.denominator)
                exact = Decimal(0) if d == 0 else (dd.ln() * fp.denominator / fp.numerator).exp()
                assert Decimal(got) <= exact, (alpha, kbar)
                assert Decimal(got) >= exact * (1 - Decimal("1e-13")), (alpha, kbar)
                over += Decimal(float(d) ** (1.0 / p)) > exact
    assert over > 0  # the plain float formula does overshoot somewhere on this grid
