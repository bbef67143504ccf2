"""DSSN: closed-form fixtures from the thesis and brute-force soundness on tiny quantised domains."""

import argparse
import itertools

import numpy as np
import pytest
import torch

from rlcert.certify.core.classifier import BaseClassifier
from rlcert.certify.deterministic.dssn import DSSN, dssn_midpoints_x4q, dssn_midpoints_x4q_large, num_splits


def test_fig_3_1b_fixture():
    # q = 4, Lambda = 5/4 (N = 5), x = 1/4: splits s = 1/8, 3/8, 5/8, 7/8, 9/8 give x~ = 9/16, 3/16, 5/16, 7/16, 1/2
    r = torch.arange(5)
    got = dssn_midpoints_x4q(torch.tensor(1), r, 5, 4)
    assert got.tolist() == [9, 3, 5, 7, 8]  # in units of 1/16


def test_general_formula_equals_lambda_ge_half_formula():
    for q in range(1, 9):
        for n in range(q, 3 * q + 1):
            levels = torch.arange(q + 1)[:, None]
            r = torch.arange(n)[None, :]
            assert torch.equal(dssn_midpoints_x4q(levels, r, n, q), dssn_midpoints_x4q_large(levels, r, q))


@pytest.mark.parametrize("q", [4, 5, 6])
def test_split_counts_match_lemma_c2(q):
    # for |x - y| = t/q exactly min(t, N) of the N outcomes put x and y in different bins (Eq. 3.17, Lemma C.2)
    for n in range(1, 3 * q + 1):
        r = torch.arange(n)
        for xl, yl in itertools.product(range(q + 1), repeat=2):
            diff = (dssn_midpoints_x4q(torch.tensor(xl), r, n, q) != dssn_midpoints_x4q(torch.tensor(yl), r, n, q))
            assert int(diff.sum()) == min(abs(xl - yl), n)


def test_marginals_are_uniform_on_half_steps():
    cert = DSSN(lam=1.0, q=4, seed=3)  # N = 8
    v = cert.offsets(7)
    for i in range(7):
        s = sorted(((j + int(v[i])) % 8) for j in range(8))
        assert s == list(range(8))


def test_degenerate_zero_offsets_eq_3_20():
    # v = 0, Lambda > 1: the fraction of outcomes with every coordinate at 1/2 is (N - q)/N
    q, n = 4, 7
    x = torch.tensor([[0, 1, 3, 4, 2]])
    r = torch.arange(n)[:, None].expand(n, 5)
    xt = dssn_midpoints_x4q(x, r, n, q)
    assert int((xt == 2 * q).all(1).sum()) == n - q


def test_num_splits_sigma_mapping():
    # spec 9.2.7: N = floor(2 sqrt(3) sigma 255)
    assert [num_splits(np.sqrt(3) * s, 255) for s in (0.15, 0.5, 3.5)] == [132, 441, 3091]
    with pytest.raises(ValueError, match="lambda"):
        num_splits(0.0, 255)
    with pytest.raises(ValueError, match="lambda"):
        DSSN(lam=0.1, q=4)


def _all_grid(q, d):
    return torch.tensor(list(itertools.product(range(q + 1), repeat=d)), dtype=torch.float32) / q


def _table_classifier(q, d, num_classes, rng, structured):
    """Hard base classifier on x~ (multiples of 1/(4q)): a random lookup table, or argmax of a random linear map."""
    if structured:
        w = torch.from_numpy(rng.normal(size=(d, num_classes))).float()
        b = torch.from_numpy(rng.normal(size=num_classes) * 0.3).float()
        return BaseClassifier(lambda z: (z.flatten(1) @ w + b).argmax(1), num_classes, returns="labels")
    table = torch.from_numpy(rng.integers(0, num_classes, size=(4 * q + 1,) * d))

    def f(z):
        idx = torch.round(z.flatten(1) * 4 * q).long()
        return table[tuple(idx.T)]
    return BaseClassifier(f, num_classes, returns="labels")


@pytest.mark.parametrize("n_split", [1, 2, 3, 5, 6, 8])
def test_brute_force_soundness(n_split):
    """For every grid input x and every grid y with ||x - y||_1 <= rho(x) (inclusive) the prediction is the same."""
    q, violations, certified = 4, 0, 0
    rng = np.random.default_rng(n_split)
    for trial in range(6):
        d = 2 if trial % 2 == 0 else 3
        cert = DSSN(lam=n_split / (2 * q), q=q, seed=trial, batch_size=4)
        assert cert.n_splits == n_split
        clf = _table_classifier(q, d, 3, rng, structured=trial >= 2)
        grid = _all_grid(q, d)
        res = cert.certify(clf, grid)
        preds = np.array([c.prediction for c in res])
        radii = np.array([round(c.radius * q) for c in res])  # integer l1 radius in grid steps
        assert all(int(c.counts.sum()) == n_split for c in res)
        levels = np.round(grid.numpy() * q).astype(int)
        dist = np.abs(levels[:, None, :] - levels[None, :, :]).sum(-1)
        violations += int(((dist <= radii[:, None]) & (preds[:, None] != preds[None, :])).sum())
        certified += int((radii > 0).sum())
    assert violations == 0
    if n_split >= 3:
        assert certified > 0  # the check is not vacuous


def test_exact_counts_by_direct_enumeration():
    # counts equal an independent per-outcome evaluation written from the formula with floats (half steps)
    q, lam = 5, 0.7  # N = 7
    cert = DSSN(lam=lam, q=q, seed=1)
    x = torch.tensor([[0.0, 0.2, 1.0, 0.6]])
    v = cert.offsets(4).numpy()
    n = cert.n_splits
    big = n / q
    expected = []
    for j in range(n):
        s = ((j + v) % n + 0.5) / q
        u = big * np.ceil((x.numpy()[0] - s) / big) + s
        expected.append((np.minimum(u, 1) + np.maximum(u - big, 0)) / 2)
    got = torch.stack([cert.smooth(x, j)[0] for j in range(n)]).numpy()
    assert np.allclose(got, np.array(expected), atol=1e-6)


def test_off_grid_input_rejected_and_cli_arguments():
    cert = DSSN(lam=0.5, q=4)
    clf = BaseClassifier(lambda z: torch.zeros(z.shape[0], dtype=torch.long), 2, returns="labels")
    with pytest.raises(ValueError, match="quantised"):
        cert.certify(clf, torch.tensor([[0.1, 0.5]]))
    parser = argparse.ArgumentParser()
    DSSN.add_arguments(parser)
    args = parser.parse_args(["--lambda", "0.5", "--q", "4"])
    built = DSSN.from_arguments(args)
    assert built.n_splits == 4 and built.q == 4
    assert DSSN.from_arguments(parser.parse_args(["--sigma", "0.5", "--q", "255"])).n_splits == 441
    with pytest.raises(ValueError, match="--lambda"):
        DSSN.from_arguments(parser.parse_args([]))
    with pytest.raises(ValueError, match="exactly one"):
        DSSN.from_arguments(parser.parse_args(["--sigma", "0.5", "--lambda", "1"]))
    # constant classifier: unanimous class 0 -> floor(N/2)/q
    (c,) = built.certify(clf, torch.tensor([[0.25, 0.5]]))
    assert c.prediction == 0 and c.radius == 2 / 4


def test_soft_lipschitz_of_the_coupling():
    """Spec 9.2.3(i): for any f into [0, 1] (random table on x~), p(x) = mean_j f(x~_j) is q/N-Lipschitz in l1."""
    rng = np.random.default_rng(5)
    q, d = 4, 2
    grid = _all_grid(q, d)
    levels = np.round(grid.numpy() * q).astype(int)
    dist = np.abs(levels[:, None, :] - levels[None, :, :]).sum(-1) / q
    for n_split in (1, 3, 5, 8):
        cert = DSSN(lam=n_split / (2 * q), q=q, seed=n_split)
        table = torch.from_numpy(rng.random((4 * q + 1,) * d))
        p = np.zeros(len(grid))
        for j in range(n_split):
            idx = torch.round(cert.smooth(grid, j) * 4 * q).long()
            p += table[tuple(idx.T)].numpy() / n_split
        assert np.all(np.abs(p[:, None] - p[None, :]) <= dist * q / n_split + 1e-12)
