"""DPA / SS-DPA: exhaustive poisoning and label-flip brute force on a tiny universe, invariances, arithmetic."""

import itertools

import numpy as np
import pytest
import torch

from rlcert.certify.poisoning.dpa import (
    DPA,
    SSDPA,
    PartitionEnsemble,
    certify_vote_matrix,
    dpa_partition,
    partition_members,
    pixel_sum_hash,
    ssdpa_partition,
)

K_PART = 7
NUM_CLASSES = 3


def toy_hash(samples):
    return 5 * np.asarray(samples).reshape(len(samples), -1)[:, 0] + 3  # label independent, spreads over k = 7


def one_nn(samples, labels, xs):
    """Deterministic 1-NN learner over a partition sorted by (sample, label), for all xs at once; an empty
    partition predicts class 0; distance ties go to the first sample in sorted order."""
    xs = np.asarray(xs, dtype=float)
    if len(samples) == 0:
        return np.zeros(len(xs), dtype=np.int64)
    d = np.abs(samples[None, :, 0] - xs[:, None])
    return labels[np.argmin(d, axis=1)]


def dpa_predict_all(train, labels, xs):
    """(len(xs), k) base predictions of the DPA ensemble trained on the set {(train[i], labels[i])}."""
    ids = dpa_partition(train, K_PART, hash_fn=toy_hash)
    votes = np.zeros((len(xs), K_PART), dtype=np.int64)
    for i in range(K_PART):
        idx = partition_members(ids, i, train, labels)
        votes[:, i] = one_nn(train[idx], labels[idx], xs)
    return votes


XS = np.arange(-0.25, 12.0, 0.5)


def test_dpa_exhaustive_insert_delete():
    rng = np.random.default_rng(0)
    universe = [(s, y) for s in range(12) for y in range(NUM_CLASSES)]
    checks = violations = 0
    for _trial in range(2):
        pick = rng.choice(len(universe), 10, replace=False)
        tset = {universe[j] for j in pick}
        train = np.array([[s] for s, _ in sorted(tset)])
        labels = np.array([y for _, y in sorted(tset)])
        pred, rho = certify_vote_matrix(dpa_predict_all(train, labels, XS), NUM_CLASSES)
        inside = sorted(tset)
        outside = [t for t in universe if t not in tset]
        for size in range(1, int(rho.max()) + 1):  # every poisoned set U with |T sym-diff U| = size
            hit = rho >= size
            for n_del in range(size + 1):
                for dels in itertools.combinations(inside, n_del):
                    for ins in itertools.combinations(outside, size - n_del):
                        u = sorted((tset - set(dels)) | set(ins))
                        ut = np.array([[s] for s, _ in u]).reshape(-1, 1)
                        ul = np.array([y for _, y in u])
                        p, _ = certify_vote_matrix(dpa_predict_all(ut, ul, XS[hit]), NUM_CLASSES)
                        checks += int(hit.sum())
                        violations += int((p != pred[hit]).sum())
    assert violations == 0
    assert checks > 1000


def ssdpa_predict_all(train, labels, xs):
    ids = ssdpa_partition(train, K_PART)
    votes = np.zeros((len(xs), K_PART), dtype=np.int64)
    for i in range(K_PART):
        idx = partition_members(ids, i, train)
        votes[:, i] = one_nn(train[idx], labels[idx], xs)
    return votes


def test_ssdpa_exhaustive_label_flips():
    rng = np.random.default_rng(1)
    checks = violations = 0
    for _trial in range(4):
        train = np.sort(rng.choice(14, 12, replace=False))[:, None]
        labels = (train[:, 0] // 5 + (rng.random(12) < 0.15)) % NUM_CLASSES
        pred, rho = certify_vote_matrix(ssdpa_predict_all(train, labels, XS), NUM_CLASSES)
        for size in range(1, int(rho.max()) + 1):
            hit = rho >= size
            for who in itertools.combinations(range(len(train)), size):
                for shifts in itertools.product([1, 2], repeat=size):
                    new = labels.copy()
                    new[list(who)] = (new[list(who)] + np.array(shifts)) % NUM_CLASSES
                    p, _ = certify_vote_matrix(ssdpa_predict_all(train, new, XS[hit]), NUM_CLASSES)
                    checks += int(hit.sum())
                    violations += int((p != pred[hit]).sum())
    assert violations == 0
    assert checks > 1000


def test_invariances():
    rng = np.random.default_rng(2)
    samples = rng.integers(0, 256, size=(40, 2, 3))
    labels = rng.integers(0, 3, 40)
    ids = dpa_partition(samples, 5)
    assert np.array_equal(ids, pixel_sum_hash(samples) % 5)
    perm = rng.permutation(40)
    assert np.array_equal(dpa_partition(samples[perm], 5), ids[perm])
    for i in range(5):  # same members in the same (sorted) order after shuffling
        a = partition_members(ids, i, samples, labels)
        b = perm[partition_members(ids[perm], i, samples[perm], labels[perm])]
        assert np.array_equal(a, b)
    # inserting one sample changes exactly one partition
    extra = rng.integers(0, 256, size=(1, 2, 3))
    ids2 = dpa_partition(np.concatenate([samples, extra]), 5)
    assert np.array_equal(ids2[:40], ids)
    # SS-DPA: balanced, label independent, shuffle invariant, duplicates rejected
    sid = ssdpa_partition(samples, 6)
    sizes = np.bincount(sid, minlength=6)
    assert sizes.max() - sizes.min() <= 1
    assert np.array_equal(ssdpa_partition(samples[perm], 6), sid[perm])
    with pytest.raises(ValueError, match="distinct"):
        ssdpa_partition(np.concatenate([samples, samples[:1]]), 6)
    with pytest.raises(ValueError, match="k"):
        dpa_partition(samples, 0)


def test_certificate_arithmetic():
    votes = np.array([[0] * 50, [1] * 50, [0, 0, 0, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1, 1]], dtype=object)
    p, r = certify_vote_matrix(np.array(votes[:2].tolist()), 2)
    assert p.tolist() == [0, 1] and r.tolist() == [25, 24]
    p, r = certify_vote_matrix(np.array([votes[2], votes[3]]), 2)
    assert p.tolist() == [1, 0] and r.tolist() == [0, 1]
    with pytest.raises(ValueError, match="class indices"):
        certify_vote_matrix(np.array([[0, 3]]), 2)


def test_certifier_on_ensemble():
    class Const:
        def __init__(self, c):
            self.c = c

        def predict(self, x):
            return torch.full((x.shape[0],), self.c, dtype=torch.long)

    ens = PartitionEnsemble([Const(c) for c in [2, 2, 2, 1, 2, 0, 2]], num_classes=3)
    (c,) = DPA().certify(ens, torch.zeros(1, 4))
    assert (c.prediction, c.radius, c.norm) == (2, 1.0, "poison")  # floor((5 - (1 + 1))/2)
    assert c.counts.tolist() == [1, 1, 5]
    (c,) = SSDPA(ens).certify(None, torch.zeros(1, 4))
    assert c.norm == "label-flip" and c.radius == 1.0
    with pytest.raises(ValueError, match="PartitionEnsemble"):
        DPA().certify(None, torch.zeros(1, 4))


def test_partition_model_roundtrip_and_incomplete_folder(tmp_path):
    from rlcert.certify.models.partition import PartitionMLP, PartitionModel

    torch.manual_seed(0)
    k = 3
    for i in range(k):
        net = PartitionMLP(4, 3, hidden=5 if i else 0)
        PartitionModel(net, torch.zeros(4), torch.ones(4), None, i, k, 3, "dpa", input_scale=2.0).save(
            tmp_path / f"partition_{i:05d}.pt")
    ens = PartitionEnsemble.load(tmp_path)
    x = torch.rand(5, 4)
    votes = ens.predict_all(x)
    assert votes.shape == (5, 3)
    assert np.array_equal(votes[:, 0], ens.members[0].net(x * 2.0).argmax(1).numpy())
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries
    (tmp_path / "partition_00001.pt").unlink()
    with pytest.raises(ValueError, match="partition models"):
        PartitionEnsemble.load(tmp_path)
    with pytest.raises(ValueError, match="no partition"):
        PartitionEnsemble.load(tmp_path / "empty")


def three_nn_majority(samples, labels, xs):
    """A learner that counts duplicates: majority label (ties: smallest class) among the 3 nearest training
    samples, copies included (a sample present twice can fill two of the three places); empty -> class 0."""
    xs = np.asarray(xs, dtype=float)
    if len(samples) == 0:
        return np.zeros(len(xs), dtype=np.int64)
    d = np.abs(samples[None, :, 0] - xs[:, None])
    near = np.argsort(d, axis=1, kind="stable")[:, :3]
    counts = np.stack([(labels[near] == c).sum(1) for c in range(NUM_CLASSES)], 1)
    return counts.argmax(1)


def dpa_predict_multiset(train, labels, xs):
    ids = dpa_partition(train, K_PART, hash_fn=toy_hash)
    votes = np.zeros((len(xs), K_PART), dtype=np.int64)
    for i in range(K_PART):
        idx = partition_members(ids, i, train, labels)
        votes[:, i] = three_nn_majority(train[idx], labels[idx], xs)
    return votes


def test_dpa_counts_insertions_and_deletions_with_multiplicity():
    """The training set is a multiset and the learner counts copies: every U reached from T by at most rho_bar
    single-copy insertions/deletions (inserting a second copy of a present sample counts as one) keeps the
    prediction; one more change than rho_bar does flip some prediction (the certificate is not too generous)."""
    rng = np.random.default_rng(1)
    universe = [(s, y) for s in range(10) for y in range(2)]
    checks = violations = flips_one_beyond = 0
    for _trial in range(2):
        base = [universe[j] for j in rng.choice(len(universe), 6, replace=False)]
        t = sorted(base + base[:3])  # three samples present twice
        train, labels = np.array([[s] for s, _ in t]), np.array([y for _, y in t])
        pred, rho = certify_vote_matrix(dpa_predict_multiset(train, labels, XS), NUM_CLASSES)

        def neighbours(multiset):
            for j in range(len(multiset)):  # delete one copy
                yield multiset[:j] + multiset[j + 1:]
            for u in universe:  # insert one copy (also of a sample already present)
                yield sorted(multiset + [u])

        frontier = {tuple(t)}
        for size in (1, 2):
            frontier = {tuple(u) for m in frontier for u in neighbours(list(m))}
            for u in frontier:
                ut = np.array([[s] for s, _ in u]).reshape(-1, 1)
                ul = np.array([y for _, y in u], dtype=np.int64)
                p, _ = certify_vote_matrix(dpa_predict_multiset(ut, ul, XS), NUM_CLASSES)
                certified = rho >= size
                checks += int(certified.sum())
                violations += int((p[certified] != pred[certified]).sum())
                flips_one_beyond += int(((rho == size - 1) & (p != pred)).sum())
    assert violations == 0
    assert checks > 500
    assert flips_one_beyond > 0
