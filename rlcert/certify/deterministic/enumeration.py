"""Helpers shared by the deterministic (enumerating) certifiers: input quantisation and vote counting."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from rlcert.certify.core.checks import check_count


def quantise(x: torch.Tensor, q: int, name: str = "x") -> torch.Tensor:
    """Map x in {0, 1/q, ..., 1} to int64 levels in {0, ..., q}; raise ValueError if x is off the grid.

    Deterministic l1/lp certificates only hold on the grid (spec 7.4), so an off-grid input is an error, not
    something to round silently. Tolerance 1e-4 level units (float32 images k/255 pass).
    """
    q = check_count(q, "q")
    scaled = x.double() * q
    levels = torch.round(scaled)
    if scaled.numel() and (scaled - levels).abs().max().item() > 1e-4:
        raise ValueError(f"{name} must be quantised to the grid {{0, 1/q, ..., 1}} with q={q}")
    if levels.numel() and (levels.min().item() < 0 or levels.max().item() > q):
        raise ValueError(f"{name} must lie in [0, 1]")
    return levels.long()


def count_votes(classifier: Any, batches: Iterable[torch.Tensor], num_classes: int) -> np.ndarray:
    """Run ``classifier.predict`` on every batch and count labels; returns int64 counts of shape (num_classes,)."""
    counts = torch.zeros(num_classes, dtype=torch.int64)
    for batch in batches:
        labels = classifier.predict(batch).long().cpu()
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"base classifier returned labels outside [0, {num_classes})")
        counts += torch.bincount(labels, minlength=num_classes)
    return counts.numpy()


def check_batch_size(batch_size: int) -> int:
    return check_count(batch_size, "batch_size")


def device_of(classifier: Any) -> torch.device:
    return torch.device(getattr(classifier, "device", "cpu"))


def add_argument_once(parser: Any, *flags: str, **kwargs: Any) -> None:
    """``parser.add_argument`` unless another certifier already added the same flag (e.g. the shared ``--q``)."""
    existing = getattr(parser, "_option_string_actions", {})
    if any(f in existing for f in flags):
        return
    parser.add_argument(*flags, **kwargs)


def enumerate_counts(classifier: Any, levels: torch.Tensor, n_outcomes: int, batch_size: int, num_classes: int,
                     encode: Any) -> np.ndarray:
    """Vote counts (n, num_classes) of every input row of ``levels`` (n, d) over all ``n_outcomes`` outcomes.

    The (input, outcome) pairs are flattened and evaluated ``batch_size`` at a time (several inputs share a forward
    pass when there are few outcomes). ``encode(rows (r, d), outcome (r, 1))`` builds the r base inputs; both
    arguments live on the classifier's device."""
    device = device_of(classifier)
    levels = levels.to(device)
    n = levels.shape[0]
    total = n * n_outcomes
    counts = torch.zeros(n, num_classes, dtype=torch.int64)
    for start in range(0, total, batch_size):
        flat = torch.arange(start, min(start + batch_size, total), device=device)
        ii, oo = flat // n_outcomes, flat % n_outcomes
        labels = classifier.predict(encode(levels[ii], oo[:, None])).long().cpu()
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"base classifier returned labels outside [0, {num_classes})")
        counts.index_put_((ii.cpu(), labels), torch.ones_like(labels), accumulate=True)
    return counts.numpy()


def add_quantisation_arguments(parser: argparse.ArgumentParser) -> None:
    """``--q`` and ``--offset-seed``, shared by the grid-based deterministic methods."""
    add_argument_once(parser, "--q", type=int, default=255, help="quantisation levels q: inputs on {0, 1/q, .., 1} "
                      "(default 255)")
    add_argument_once(parser, "--offset-seed", type=int, default=0,
                      help="seed of the fixed cyclic offsets v (part of the model; default 0)")
