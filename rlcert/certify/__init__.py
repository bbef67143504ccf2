"""Randomized-smoothing certifiers (see the certification issues)."""
