"""Randomized smoothing: one noise object per distribution and the certifier built on it."""
