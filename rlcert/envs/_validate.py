"""Argument checks shared by the environments: clear messages naming the parameter and its allowed range."""

from __future__ import annotations

import numbers

import numpy as np


def positive_int(name: str, value: object, upper: int | None = None) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` unless it is an integer in [1, upper]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if value < 1 or (upper is not None and value > upper):
        rng = f"in [1, {upper}]" if upper is not None else ">= 1"
        raise ValueError(f"{name} must be an integer {rng}, got {value}")
    return int(value)


def positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` unless it is finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def action_array(action: object, shape: tuple[int, ...]) -> np.ndarray:
    """Convert an action to a float64 array of ``shape``; raise ``ValueError`` on wrong shape or NaN/inf."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"action must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("action must be finite (got NaN or inf)")
    return a
