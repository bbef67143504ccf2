"""Evaluation metrics over certification results (spec §1.5): abstains count as wrong and uncertified."""

from __future__ import annotations

import numpy as np


def certified_accuracy(radius: np.ndarray, correct: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Fraction of all points with a correct (non-abstained) prediction and certified radius >= r, for r in radii."""
    radius, correct = np.asarray(radius, dtype=np.float64), np.asarray(correct, dtype=bool)
    if len(radius) == 0:
        return np.zeros(len(np.atleast_1d(radii)))
    return np.array([np.mean(correct & (radius >= r)) for r in np.atleast_1d(radii)])


def average_certified_radius(radius: np.ndarray, correct: np.ndarray) -> float:
    """ACR = mean over **all** points of radius * 1[correct] (the area under the certified-accuracy curve)."""
    radius, correct = np.asarray(radius, dtype=np.float64), np.asarray(correct, dtype=bool)
    return float(np.mean(np.where(correct, radius, 0.0))) if len(radius) else 0.0
