"""Deep Partition Aggregation (DPA) and Semi-Supervised DPA (SS-DPA) against training-set poisoning
(Levine 2023, Ch.7 / App. F; spec section 6).

DPA: the training set T (a **multiset** of labelled samples: the learner trains on duplicates as given) is split
into k partitions by a hash of each sample alone,
``P_i = {t : h(t) = i mod k}`` (``h`` = sum of the integer pixel values, as in the reference code); base model i is
trained on ``P_i`` only (deterministically: partition sorted lexicographically, seed = i). SS-DPA: the unlabelled
samples are sorted lexicographically and partition i gets sorted positions ``i, i + k, ...``; base model i may use
all unlabelled samples but only partition i's labels. Prediction: ``g(x) = argmax_c n_c(x)`` over the k votes,
smallest class index on ties.

Guarantee (Theorems 7.1/7.2, exact): with ``rho_bar = floor((n_c - max_{c'!=c}(n_c' + 1[c'<c]))/2)``, any
training set U with ``|T sym-diff U| <= rho_bar`` (DPA: insertions + deletions **counted with multiplicity**:
inserting a second copy of a sample already in T is one insertion, deleting one of two copies is one deletion; all
copies of a sample share its partition, so each such change alters one partition) -- or any relabelling of at
most ``rho_bar`` samples (SS-DPA) -- gives the same prediction at x. Requirements: the base learner is a
deterministic function of its partition (as a multiset), and for SS-DPA the unlabelled samples are distinct
(duplicates are rejected, Theorem 7.2).
Certification is the pure function ``certify_vote_matrix`` of the (N, k) matrix of base predictions.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcert.certify.core.certificate import Certificate
from rlcert.certify.core.certifier import Certifier
from rlcert.certify.core.checks import check_count
from rlcert.certify.core.classifier import as_batch
from rlcert.certify.core.registry import register
from rlcert.certify.core.votes import median_certified_robustness, vote_certificates
from rlcert.certify.models.partition import load_partition_model, pca_projection, train_partition

__all__ = ["pixel_sum_hash", "dpa_partition", "ssdpa_partition", "lexicographic_order", "partition_members",
           "certify_vote_matrix", "median_certified_robustness", "PartitionEnsemble", "DPA", "SSDPA",
           "train_partitions"]


def _flat_int(samples: np.ndarray, name: str = "samples") -> np.ndarray:
    arr = np.asarray(samples)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a leading sample axis")
    flat = arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:], dtype=np.int64)))
    if flat.dtype.kind == "f":
        if not np.all(flat == np.round(flat)):
            raise ValueError(f"{name} must be integer-valued (e.g. uint8 pixels) for hashing/sorting")
        flat = flat.astype(np.int64)
    return flat


def pixel_sum_hash(samples: np.ndarray) -> np.ndarray:
    """h(t) = sum of the sample's integer pixel values (all channels); shape (n,), int64. Depends on t alone."""
    return _flat_int(samples).astype(np.int64).sum(1)


def dpa_partition(samples: np.ndarray, k: int,
                  hash_fn: Callable[[np.ndarray], np.ndarray] = pixel_sum_hash) -> np.ndarray:
    """Partition index ``h(t) mod k`` of every sample; int64 (n,). ``hash_fn`` maps (n, ...) samples to (n,) ints."""
    k = check_count(k, "k (number of partitions)")
    return np.mod(np.asarray(hash_fn(np.asarray(samples)), dtype=np.int64), k)


def lexicographic_order(samples: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Indices sorting samples lexicographically by flattened pixel values (then by label if given)."""
    flat = _flat_int(samples)
    keys = [flat[:, j] for j in range(flat.shape[1] - 1, -1, -1)]  # np.lexsort: last key is primary
    if labels is not None:
        keys = [np.asarray(labels)] + keys
    return np.lexsort(keys) if keys else np.arange(flat.shape[0])


def ssdpa_partition(samples: np.ndarray, k: int) -> np.ndarray:
    """SS-DPA partition index of every (unlabelled) sample: its rank in lexicographic order, mod k.

    Raises ValueError on duplicate samples (Theorem 7.2 assumes distinct unlabelled samples)."""
    k = check_count(k, "k (number of partitions)")
    flat = _flat_int(samples)
    order = lexicographic_order(flat)
    s = flat[order]
    if len(s) > 1 and np.any(np.all(s[1:] == s[:-1], axis=1)):
        raise ValueError("SS-DPA needs distinct unlabelled samples; the training set has duplicates")
    ids = np.empty(len(flat), dtype=np.int64)
    ids[order] = np.arange(len(flat)) % k
    return ids


def partition_members(ids: np.ndarray, i: int, samples: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Indices of partition i, sorted lexicographically by (sample, label): the order base model i trains in."""
    idx = np.flatnonzero(np.asarray(ids) == i)
    lab = None if labels is None else np.asarray(labels)[idx]
    return idx[lexicographic_order(np.asarray(samples)[idx], lab)]


def certify_vote_matrix(votes: np.ndarray | Sequence[Sequence[int]], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) base-model predictions -> (prediction (N,), rho_bar (N,)); pure integer function (Thm 7.1/7.2)."""
    v = np.asarray(votes)
    if v.ndim != 2:
        raise ValueError(f"votes must have shape (N, k), got {v.shape}")
    if v.size and (v.min() < 0 or v.max() >= num_classes):
        raise ValueError(f"votes must be class indices in [0, {num_classes})")
    counts = np.stack([(v == c).sum(1) for c in range(num_classes)], 1)
    return vote_certificates(counts)


class PartitionEnsemble:
    """k base classifiers (objects with ``predict(x) -> (B,) labels``), one per partition, in partition order."""

    def __init__(self, members: Sequence[Any], num_classes: int) -> None:
        if len(members) < 1:
            raise ValueError("a partition ensemble needs at least one member")
        self.members = list(members)
        self.num_classes = num_classes

    @property
    def k(self) -> int:
        return len(self.members)

    @torch.no_grad()
    def predict_all(self, x: torch.Tensor) -> np.ndarray:
        """(N, k) int64 vote matrix."""
        return np.stack([m.predict(x).long().cpu().numpy() for m in self.members], 1)

    @classmethod
    def load(cls, folder: str | Path) -> PartitionEnsemble:
        """Load the ``partition_*.pt`` files written by ``scripts/train_dpa.py`` (all k must be present)."""
        files = sorted(Path(folder).glob("partition_*.pt"))
        if not files:
            raise ValueError(f"no partition_*.pt files in {folder}")
        models = [load_partition_model(f) for f in files]
        k = models[0].k
        if len(models) != k or [m.index for m in models] != list(range(k)):
            raise ValueError(f"{folder} holds {len(models)} of the k={k} partition models; train the missing shards")
        return cls(models, models[0].num_classes)


@register
class DPA(Certifier):
    """Deep Partition Aggregation: certified number of inserted/deleted training samples (see module docstring).

    ``certify(ensemble, x)`` takes a ``PartitionEnsemble`` (or uses the one loaded from ``--partitions-dir``)."""

    name = "dpa"
    norm = "poison"

    def __init__(self, ensemble: PartitionEnsemble | None = None) -> None:
        self.ensemble = ensemble

    def base_classifier(self) -> PartitionEnsemble | None:
        return self.ensemble

    def certify(self, classifier: Any, x: torch.Tensor) -> list[Certificate]:
        ens = classifier if isinstance(classifier, PartitionEnsemble) else self.ensemble
        if ens is None:
            raise ValueError(f"{type(self).__name__} needs a PartitionEnsemble: pass ensemble= or certify(ensemble, x) "
                             "(CLI: --partitions-dir)")
        votes = ens.predict_all(as_batch(x, who=f"{type(self).__name__}: x"))
        preds, rho = certify_vote_matrix(votes, ens.num_classes)
        counts = np.stack([(votes == c).sum(1) for c in range(ens.num_classes)], 1)
        return [Certificate(int(p), float(r), self.norm, None, c) for p, r, c in zip(preds, rho, counts)]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        from rlcert.certify.deterministic.enumeration import add_argument_once

        add_argument_once(parser, "--partitions-dir", type=Path, default=None,
                          help="folder of partition_*.pt models from scripts/train_dpa.py (dpa/ssdpa)")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> DPA:
        folder = getattr(args, "partitions_dir", None)
        if folder is None:
            raise ValueError(f"--method {cls.name} needs --partitions-dir (the partition_*.pt models written by "
                             "scripts/train_dpa.py)")
        return cls(PartitionEnsemble.load(folder))


@register
class SSDPA(DPA):
    """Semi-supervised DPA: certified number of label flips (same certificate, sort-based partitions)."""

    name = "ssdpa"
    norm = "label-flip"


def train_partitions(x: np.ndarray, y: np.ndarray, k: int, out: str | Path, mode: str = "dpa", start: int = 0,
                     stop: int | None = None, epochs: int = 200, hidden: int = 64, pca_dim: int = 10,
                     progress: bool = True) -> None:
    """Train base models ``start..stop-1`` of a k-partition DPA/SS-DPA ensemble into ``out/partition_*.pt``.

    x: (N, 1, 8, 8) images in [0, 1] on the 1/16 grid (the digits split); partitions hash (DPA) or sort (SS-DPA)
    the integer pixels x*16. Finished partition files are skipped (resumable, shardable by range). SS-DPA uses a
    PCA embedding of all unlabelled samples and linear heads (``hidden`` ignored)."""
    from tqdm import tqdm

    if mode not in ("dpa", "ssdpa"):
        raise ValueError(f"mode must be 'dpa' or 'ssdpa', got {mode!r}")
    stop = k if stop is None else stop
    x_int = np.rint(np.asarray(x, dtype=np.float64).reshape(len(x), -1) * 16).astype(np.int64)
    y = np.asarray(y, dtype=np.int64)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if mode == "dpa":
        ids, projection = dpa_partition(x_int, k), None
    else:
        ids, projection, hidden = ssdpa_partition(x_int, k), pca_projection(x_int, pca_dim), 0
    for i in tqdm(range(start, stop), desc=f"{mode} k={k}", disable=not progress):
        path = out / f"partition_{i:05d}.pt"
        if path.exists():
            continue
        idx = partition_members(ids, i, x_int, y if mode == "dpa" else None)
        train_partition(x_int[idx], y[idx], i, k, mode, projection, epochs, hidden).save(path)
