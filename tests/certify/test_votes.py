"""The shared vote-count certificate: hand-built ties and brute force over all labelings of a few outputs."""

import itertools

import numpy as np
import pytest

from rlcert.certify.core.votes import (
    is_certified,
    median_certified_robustness,
    vote_certificate,
    vote_certificates,
)


@pytest.mark.parametrize("counts, pred, kbar", [
    ([5, 5], 0, 0),            # tie -> smaller index, radius 0 (spec 9.2.6)
    ([4, 6], 1, 0),            # floor((6 - 4 - 1)/2) = 0
    ([2, 8], 1, 2),            # floor((8 - 2 - 1)/2) = 2
    ([3, 5], 1, 0),            # spec 9.6.3
    ([5, 3], 0, 1),
    ([50, 0, 0], 0, 25),       # unanimous k=50: class 0 gets floor(k/2)
    ([0, 50, 0], 1, 24),       # ... a class > 0 only floor((k-1)/2)
    ([0, 0, 0], 0, 0),         # all abstain: class 0, nothing certified (Ch.6 degenerate case)
    ([3, 7, 7, 1], 1, 0),      # tie for top between 1 and 2 -> class 1
    ([9, 7, 7, 1], 0, 1),      # runner-up tie: max(n_c' + 1[c'<c]) = 7
    ([7, 9, 0, 0], 1, 0),      # 9 - (7 + 1) = 1 -> 0
    ([6, 9, 0, 0], 1, 1),      # 9 - 7 = 2 -> 1
])
def test_hand_built(counts, pred, kbar):
    assert vote_certificate(counts) == (pred, kbar)


def test_equality_case_is_certified_only_for_smaller_index():
    # n_c - n_c' = 2K exactly: certified iff c < c' (Thm 6.1/6.2 tie semantics)
    assert is_certified([6, 2], 2) and not is_certified([2, 6], 2)
    assert vote_certificate([6, 2])[1] == 2
    assert vote_certificate([2, 6])[1] == 1
    # the worst-case attack moving 2 votes produces the tie (4, 4) -> still class 0
    assert vote_certificate([4, 4])[0] == 0


def test_batched_matches_single():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 6, size=(500, 4))
    pred, kbar = vote_certificates(counts)
    for row, p, k in zip(counts, pred, kbar):
        assert (p, k) == vote_certificate(row)


def _smoothed(labels: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.stack([(labels == c).sum(-1) for c in range(num_classes)], -1)
    return counts.argmax(-1)


@pytest.mark.parametrize("n_out, num_classes", [(5, 3), (6, 3), (4, 4)])
def test_brute_force_single_vote(n_out, num_classes):
    """Every labeling of n_out base outputs vs every labeling within Hamming distance kbar: zero violations,
    and the certificate is tight (some labeling at distance kbar + 1 changes the prediction)."""
    labs = np.array(list(itertools.product(range(num_classes), repeat=n_out)))
    g = _smoothed(labs, num_classes)
    counts = np.stack([(labs == c).sum(1) for c in range(num_classes)], 1)
    pred, kbar = vote_certificates(counts)
    assert np.array_equal(pred, g)
    dist = (labs[:, None, :] != labs[None, :, :]).sum(-1)
    violations = (dist <= kbar[:, None]) & (g[:, None] != g[None, :])
    assert violations.sum() == 0
    reachable = (dist == kbar[:, None] + 1) & (g[:, None] != g[None, :])
    tight = reachable.any(1) | (kbar + 1 > n_out)
    assert tight.all()


def test_brute_force_multi_vote():
    """Ch.6 model: each output is any subset of classes (multi-vote or abstain)."""
    n_out, num_classes = 4, 3
    subsets = np.array(list(itertools.product([0, 1], repeat=num_classes)))  # (8, C)
    idx = np.array(list(itertools.product(range(len(subsets)), repeat=n_out)))  # (4096, n_out)
    votes = subsets[idx]  # (M, n_out, C)
    counts = votes.sum(1)
    pred, kbar = vote_certificates(counts)
    dist = (idx[:, None, :] != idx[None, :, :]).sum(-1)
    violations = (dist <= kbar[:, None]) & (pred[:, None] != pred[None, :])
    assert violations.sum() == 0
    assert kbar.max() >= 1  # the check is not vacuous


def test_bad_input():
    with pytest.raises(ValueError, match="at least 2 classes"):
        vote_certificate([3])
    with pytest.raises(ValueError, match=">= 0"):
        vote_certificate([3, -1])
    with pytest.raises(ValueError, match="integer"):
        vote_certificate([0.5, 1])


def test_median_conventions():
    # thesis 2.3: {N/A, N/A, 1, 2, 3} -> 1
    assert median_certified_robustness([0, 0, 1, 2, 3], [False, False, True, True, True]) == 1
    # spec 6.4 / 9.6.3: {-1, -1, 0, 3, 5, 5} -> strict 3, Table 7.1 style 4
    radii = [0, 0, 0, 3, 5, 5]
    correct = [False, False, True, True, True, True]
    assert median_certified_robustness(radii, correct) == 3
    assert median_certified_robustness(radii, correct, convention="table7.1") == 4
    # brute force against the definition CA(r) >= 0.5
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 9))
        r = rng.integers(0, 6, n)
        ok = rng.random(n) < 0.7
        ca = [np.mean(ok & (r >= rho)) for rho in range(8)]
        good = [rho for rho in range(8) if ca[rho] >= 0.5]
        want = max(good) if good else None
        assert median_certified_robustness(r, ok) == want
        assert median_certified_robustness(r, ok, "table7.1") == (None if want is None else want + 1)
    assert median_certified_robustness([1, 1], [False, True]) == 1
    assert median_certified_robustness([1, 1, 1], [False, False, True]) is None
