"""Argument checks shared by every certifier: bad values raise ValueError naming the parameter and its range."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_positive(value: Any, name: str) -> float:
    """Return ``value`` as a float or raise ValueError unless it is finite and > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int or raise ValueError unless it is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
