"""Deterministic (enumerating) certifiers: DSSN, variable-Lambda, deterministic l0, column/block smoothing."""
