"""The deterministic vote-count certificate shared by DSSN, variable-Lambda, deterministic l0, column/block
smoothing and DPA/SS-DPA (Levine 2023, spec ``certifiers_thesis.md`` section 0.3).

Setting: N deterministic base evaluations give integer vote counts ``n_c``. The smoothed prediction is
``c = argmax_c n_c`` with ties broken towards the **smallest class index**. If an admissible perturbation can
change at most ``K`` of the N base outputs (each changed output moving at most one vote away from ``c`` and at
most one vote onto any other class), then ``c`` provably stays the prediction whenever

    n_c >= max_{c' != c} ( n_{c'} + 1[c' < c] ) + 2 K

i.e. whenever ``K <= Kbar = floor( (n_c - max_{c' != c}(n_{c'} + 1[c' < c])) / 2 )`` ("up to and including"
``Kbar``). Everything here is integer arithmetic on counts: no floats, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _as_counts(counts: np.ndarray | Sequence[int]) -> np.ndarray:
    arr = np.asarray(counts)
    if arr.ndim not in (1, 2):
        raise ValueError(f"counts must have shape (C,) or (N, C), got {arr.shape}")
    if arr.shape[-1] < 2:
        raise ValueError(f"counts need at least 2 classes, got {arr.shape[-1]}")
    if arr.dtype.kind == "f":
        if not np.all(arr == np.round(arr)):
            raise ValueError("counts must be integers")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"counts must be an integer array, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if np.any(arr < 0):
        raise ValueError("counts must be >= 0")
    return arr


def vote_certificates(counts: np.ndarray | Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Batched certificate. ``counts``: int array (N, C) of vote counts (or (C,) for one input).

    Returns ``(prediction, kbar)``, int64 arrays of shape (N,) (or scalars' 0-d arrays for 1-D input):
    ``prediction`` = first argmax (smallest index among tied maxima); ``kbar`` = largest number of base outputs
    that may change while the prediction provably stays (always >= 0).
    """
    arr = _as_counts(counts)
    single = arr.ndim == 1
    arr2 = arr[None] if single else arr
    n, c = arr2.shape
    pred = np.argmax(arr2, axis=1)  # numpy returns the first maximum: smallest-index tie-break
    top = arr2[np.arange(n), pred]
    bump = (np.arange(c)[None, :] < pred[:, None]).astype(np.int64)  # 1[c' < c]
    rival = arr2 + bump
    rival[np.arange(n), pred] = np.iinfo(np.int64).min
    gap = top - rival.max(axis=1)  # >= 0 because pred is the first argmax
    kbar = gap // 2  # floor for nonnegative integers
    if single:
        return pred[0], kbar[0]
    return pred, kbar


def vote_certificate(counts: np.ndarray | Sequence[int]) -> tuple[int, int]:
    """One input: ``counts`` of shape (C,) -> ``(prediction, kbar)`` as Python ints (see ``vote_certificates``)."""
    arr = _as_counts(counts)
    if arr.ndim != 1:
        raise ValueError(f"vote_certificate takes one count vector of shape (C,), got {arr.shape}")
    pred, kbar = vote_certificates(arr)
    return int(pred), int(kbar)


def is_certified(counts: np.ndarray | Sequence[int], k: int) -> bool:
    """True iff changing any ``k`` base outputs cannot change the prediction (``n_c >= max(n_c' + 1[c'<c]) + 2k``)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return vote_certificate(counts)[1] >= k


def median_certified_robustness(radii: Sequence[float], correct: Sequence[bool],
                                convention: str = "strict") -> float | None:
    """Median certified robustness over a test set (thesis 2.3 / 7.3; spec sections 0.4 and 6.4).

    ``radii[i]`` is the certificate of point i, ``correct[i]`` whether its prediction is right; wrong points count
    as -infinity. ``convention="strict"``: the largest rho with certified accuracy CA(rho) >= 0.5 (thesis 2.3;
    {N/A, N/A, 1, 2, 3} -> 1). ``convention="table7.1"``: ``1 + strict`` for integer radii, i.e. the smallest attack
    size at which CA drops below 50% -- the quantity printed in Table 7.1 (DPA/SS-DPA). Returns None ("N/A")
    when CA(0) < 0.5.
    """
    if convention not in ("strict", "table7.1"):
        raise ValueError(f"convention must be 'strict' or 'table7.1', got {convention!r}")
    r = np.asarray(radii, dtype=float)
    ok = np.asarray(correct, dtype=bool)
    if r.shape != ok.shape or r.ndim != 1 or r.size == 0:
        raise ValueError(f"radii and correct must be equal-length non-empty 1-D sequences, got {r.shape}, {ok.shape}")
    eff = np.where(ok, r, -np.inf)
    need = math.ceil(r.size / 2)  # CA(rho) >= 0.5  <=>  #{eff >= rho} >= ceil(N/2)
    strict = float(np.sort(eff)[::-1][need - 1])
    if strict < 0:  # includes -inf: fewer than half the points correct (and certified at 0)
        return None
    return strict if convention == "strict" else strict + 1
