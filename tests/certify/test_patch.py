"""Column/block smoothing: counting lemma, encoding, and exhaustive patch-attack soundness on small images."""

import argparse
import itertools
import math

import numpy as np
import pytest
import torch

from rlcert.certify.core.classifier import BaseClassifier
from rlcert.certify.deterministic.patch import (
    BlockSmoothing,
    ColumnSmoothing,
    affected_on_axis,
    axis_masks,
    encode_null,
)


def test_encoding_and_wraparound():
    x = torch.rand(2, 3, 5, 6)
    enc = encode_null(x)
    assert enc.shape == (2, 6, 5, 6)
    assert torch.allclose(enc[:, :3] + enc[:, 3:], torch.ones(2, 3, 5, 6))
    cert = ColumnSmoothing(2)
    ab = cert.ablate(x)  # (N, P, 2C, H, W)
    assert ab.shape == (2, 6, 6, 5, 6)
    kept = (ab[0, 5].sum((0, 1)) > 0).nonzero().flatten().tolist()
    assert kept == [0, 5]  # band starting at the last column wraps to column 0
    assert torch.all(ab[0, 5][:, :, 1:5] == 0)  # NULL is all zeros
    blk = BlockSmoothing(2)
    ab = blk.ablate(x)
    assert ab.shape == (2, 30, 6, 5, 6)
    last = ab[0, -1].sum(0) > 0  # corner (4, 5) wraps on both axes
    assert sorted(map(tuple, last.nonzero().tolist())) == [(0, 0), (0, 5), (4, 0), (4, 5)]


def test_counting_lemma():
    for size in range(5, 13):
        for s in range(1, 5):
            for m in range(1, 5):
                assert affected_on_axis(size, s, 1, m) == min(m + s - 1, size)
                # independent count straight from the definition, any stride
                for stride in (1, 2, 3):
                    starts = range(0, size, stride)
                    want = max(sum(any(((p + t) % size) in range(a, a + m) for t in range(s)) for p in starts)
                               for a in range(size - m + 1))
                    assert affected_on_axis(size, s, stride, m) == want
    blk = BlockSmoothing(3)
    assert blk.affected(7, 9, 2) == 16 and blk.affected(7, 9, 5) == 49
    assert axis_masks(6, 2, 2).shape == (3, 6)


def _table_voter(patterns_table, num_classes):
    """Base classifier on (N, 2, H, W) encoded single-channel binary images, abstaining on empty regions.

    Each visible pixel is (1, 0) for white / (0, 1) for black; NULL is (0, 0). The votes (possibly several classes)
    depend on the popcount of the visible white pixels and a random table keyed by (popcount, #visible)."""

    def model(z):
        white = z[:, 0].flatten(1).sum(1).round().long()
        visible = (z[:, 0] + z[:, 1]).flatten(1).sum(1).round().long()
        votes = patterns_table[white, visible].float()  # (B, C) 0/1
        return torch.log(votes * 0.9 + 1e-3)  # softmax >= 0.3 iff the class voted (<= 3 classes)
    return BaseClassifier(model, num_classes)


def _check_patch_soundness(cert, images, clf, max_contents=64, rng=None):
    res = cert.certify(clf, images)
    h, w = images.shape[2:]
    checks = violations = 0
    for img, c in zip(images, res):
        m = int(c.radius)
        if m == 0:
            continue
        contents = list(itertools.product([0.0, 1.0], repeat=m * m))
        if len(contents) > max_contents:
            pick = rng.choice(np.arange(1, len(contents) - 1), max_contents - 2, replace=False)
            contents = [contents[0], contents[-1]] + [contents[i] for i in pick]  # constant patches always tried
        attacked = []
        for a, b in itertools.product(range(h - m + 1), range(w - m + 1)):
            for content in contents:
                z = img.clone()
                z[:, a:a + m, b:b + m] = torch.tensor(content).reshape(1, m, m)
                attacked.append(z)
        preds = [r.prediction for r in cert.certify(clf, torch.stack(attacked))]
        checks += len(preds)
        violations += sum(p != c.prediction for p in preds)
    return res, checks, violations


def _structured_images(rng, n, h, w, p_keep=0.85):
    imgs = []
    for _ in range(n):
        base = rng.integers(0, 2, size=(h, 1)) * np.ones((1, w))  # rows constant -> columns similar
        noise = rng.random((h, w)) > p_keep
        imgs.append(np.where(noise, 1 - base, base))
    return torch.tensor(np.array(imgs), dtype=torch.float32)[:, None]


@pytest.mark.parametrize("theta", [None, 0.3])
def test_column_exhaustive_soundness(theta):
    rng = np.random.default_rng(0)
    h, w, num_classes = 3, 10, 3
    table = torch.from_numpy((rng.random((h * w + 1, h * w + 1, num_classes)) < 0.25).astype(np.int64))
    for white in range(h * w + 1):
        table[white, :, white % num_classes] = 1
    table[:, 0] = 0  # nothing visible: abstain
    clf = _table_voter(table, num_classes)
    cert = ColumnSmoothing(1, theta=theta, batch_size=512)
    images = _structured_images(rng, 60, h, w)
    res, checks, violations = _check_patch_soundness(cert, images, clf, rng=rng)
    assert violations == 0
    assert checks > 1000  # non-vacuous: some images certified and attacked exhaustively
    assert all(int(c.counts.sum()) <= w * num_classes for c in res)


def test_column_stride_soundness():
    rng = np.random.default_rng(1)
    h, w, num_classes = 3, 9, 3
    table = torch.zeros(h * w + 1, h * w + 1, num_classes, dtype=torch.int64)
    for white in range(h * w + 1):
        table[white, :, (white // 2) % num_classes] = 1
    clf = _table_voter(table, num_classes)
    cert = ColumnSmoothing(2, stride=2)
    images = _structured_images(rng, 40, h, w, p_keep=0.95)
    _, checks, violations = _check_patch_soundness(cert, images, clf, rng=rng)
    assert violations == 0 and checks > 0


def test_block_exhaustive_soundness():
    rng = np.random.default_rng(2)
    h = w = 6
    num_classes = 3
    table = torch.zeros(37, 37, num_classes, dtype=torch.int64)
    for white in range(37):
        for vis in range(1, 37):
            table[white, vis, int(2 * white > vis)] = 1  # majority colour of the visible block
    clf = _table_voter(table, num_classes)
    cert = BlockSmoothing(1, theta=0.3, batch_size=2048)
    imgs = (torch.rand(30, 1, h, w, generator=torch.Generator().manual_seed(0)) > 0.9).float()
    imgs[15:] = 1 - imgs[15:]
    res, checks, violations = _check_patch_soundness(cert, imgs, clf, max_contents=16, rng=rng)
    assert violations == 0
    assert checks > 100


def test_degenerate_models_and_cli():
    x = torch.rand(4, 1, 6, 6)
    abstain = BaseClassifier(lambda z: torch.full((z.shape[0], 3), -10.0).index_fill(1, torch.tensor([0]), -9.0), 3)
    res = ColumnSmoothing(2, theta=0.9).certify(abstain, x)
    assert all(c.prediction == 0 and c.radius == 0 and c.counts.sum() == 0 for c in res)
    const = BaseClassifier(lambda z: torch.full((z.shape[0],), 2, dtype=torch.long), 3, returns="labels")
    res = ColumnSmoothing(2).certify(const, x)
    # n_2 = 6 vs max(n_0 + 1, n_1 + 1) = 1: kbar = 2, K(m) = m + 1 <= 2 -> m = 1
    assert all(c.prediction == 2 and c.radius == 1 for c in res)
    parser = argparse.ArgumentParser()
    ColumnSmoothing.add_arguments(parser)
    BlockSmoothing.add_arguments(parser)
    args = parser.parse_args(["--band-width", "3", "--theta", "0.3", "--stride", "2"])
    col = ColumnSmoothing.from_arguments(args)
    assert (col.size, col.theta, col.stride) == (3, 0.3, 2)
    assert col.base_input(x).shape == (1, 2, 6, 6)
    with pytest.raises(ValueError, match="theta"):
        ColumnSmoothing(2, theta=1.5)
    with pytest.raises(ValueError, match="shape"):
        ColumnSmoothing(2).certify(const, torch.rand(3, 6))


def test_digits_cli_factories_take_what_the_certifier_feeds():
    """The CLI probes models with ``certifier.base_input(x)``: the 2-channel factories take the (x, 1-x) encoding
    (and [upper, lower] bounds), and a raw 1-channel image is a shape error, not silently re-encoded."""
    from rlcert.certify.deterministic.variable_lambda import DeterministicL0
    from rlcert.certify.models import digits_bounds_cnn, digits_null_cnn

    x = torch.rand(3, 1, 8, 8)
    m = digits_null_cnn()
    assert m(ColumnSmoothing(2).base_input(x)).shape == (1, 10)
    assert m(BlockSmoothing(3).base_input(x)).shape == (1, 10)
    assert digits_bounds_cnn()(DeterministicL0(4, q=16).base_input(x)).shape == (1, 10)
    with pytest.raises(RuntimeError):
        m(x)


def test_row_smoothing_is_transposed_column_smoothing():
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(2 * 5 * 7, 4, generator=gen)
    x = torch.rand(6, 1, 5, 7, generator=gen)

    def model(z):
        return z.flatten(1) @ w

    def model_t(z):  # the same function of the transposed image
        return z.transpose(2, 3).flatten(1) @ w

    rows = ColumnSmoothing(2, orientation="rows").certify(BaseClassifier(model, 4), x)
    cols = ColumnSmoothing(2).certify(BaseClassifier(model_t, 4), x.transpose(2, 3))
    for a, b in zip(rows, cols):
        assert (a.prediction, a.radius) == (b.prediction, b.radius)
        assert np.array_equal(a.counts, b.counts)
    assert ColumnSmoothing(2, orientation="rows").affected(5, 9, 3) == 4
    with pytest.raises(ValueError, match="orientation"):
        ColumnSmoothing(2, orientation="diagonal")


def test_multi_band_and_block_counting():
    # App. E.4: a 5x5 patch with s = 4 touches exactly 4 grid blocks wherever it is
    blk = BlockSmoothing(4, retain=2)
    assert blk.units_touched(16, 16, 5) == 4
    g = 16
    assert blk.affected(16, 16, 5) == math.comb(g, 2) - math.comb(g - 4, 2)
    assert blk.masks(16, 16).shape == (math.comb(g, 2), 1, 16, 16)
    assert torch.all(blk.masks(16, 16).sum((1, 2, 3)) == 32)  # two 4x4 blocks each
    col = ColumnSmoothing(3, retain=2)  # 10 columns -> G = 4 units (3, 3, 3, 1 columns)
    assert col.masks(3, 10).shape == (6, 1, 3, 10)
    # exact K by brute force over patch positions and all subsets
    for m in range(1, 4):
        units = col.unit_masks(3, 10)[:, 0, 0].bool()
        subsets = list(itertools.combinations(range(len(units)), 2))
        want = max(sum(any(units[u, a:a + m].any() for u in sub) for sub in subsets) for a in range(10 - m + 1))
        assert col.affected(3, 10, m) == want
    with pytest.raises(ValueError, match="stride"):
        ColumnSmoothing(2, retain=2, stride=2)
    with pytest.raises(ValueError, match="retain"):
        ColumnSmoothing(3, retain=5).certify(
            BaseClassifier(lambda z: torch.zeros(z.shape[0], dtype=torch.long), 2, returns="labels"),
            torch.rand(1, 1, 3, 10))


def test_multi_band_exhaustive_soundness():
    rng = np.random.default_rng(4)
    h, w, num_classes = 3, 8, 3
    table = torch.zeros(h * w + 1, h * w + 1, num_classes, dtype=torch.int64)
    for white in range(h * w + 1):
        for vis in range(1, h * w + 1):
            table[white, vis, int(3 * white > vis) + int(3 * white > 2 * vis)] = 1
    clf = _table_voter(table, num_classes)
    cert = ColumnSmoothing(1, retain=2)  # G = 8 units, 28 evaluations, K(m) = C(8,2) - C(8-m,2)
    images = _structured_images(rng, 40, h, w, p_keep=0.9)
    res, checks, violations = _check_patch_soundness(cert, images, clf, rng=rng)
    assert violations == 0 and checks > 100
    assert all(int(c.counts.sum()) == 28 for c in res)
