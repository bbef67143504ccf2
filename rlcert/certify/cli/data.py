"""Data for certification: ``.npz`` files (x in [0, 1], shape (N, C, H, W) float; y int (N,)) or bundled digits.

``load_data("digits")`` is scikit-learn's ``load_digits`` (1797 8x8 grey images, 10 classes, shipped with
scikit-learn; no download) reshaped to (N, 1, 8, 8) and scaled from 0..16 to [0, 1]. A fixed, stratified split
(seed 0) keeps the last 400 images for testing: ``split="train"`` / ``"test"`` (the CLI uses "test").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIGITS_TEST_SIZE = 400


def validate_dataset(x: np.ndarray, y: np.ndarray, source: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Check x (N, C, H, W) finite floats in [0, 1] and y (N,) integer labels >= 0; return float32 / int64."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4:
        raise ValueError(f"{source}: x must have shape (N, C, H, W), got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{source}: x must be floating point in [0, 1], got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError(f"{source}: x contains NaN or infinite values")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(f"{source}: x must lie in [0, 1], got range [{x.min()}, {x.max()}]")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{source}: y must have shape ({x.shape[0]},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"{source}: y must hold integer labels >= 0, got dtype {y.dtype}")
    return x.astype(np.float32, copy=False), y.astype(np.int64, copy=False)


def load_digits_split(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits as x (N, 1, 8, 8) float32 in [0, 1] and y (N,) int64; split "train", "test" or "all"."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    if split == "all":
        return x, y
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=DIGITS_TEST_SIZE, random_state=0, stratify=y)
    return (x_tr, y_tr) if split == "train" else (x_te, y_te)


def load_data(spec: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``"digits"`` (test split), ``"digits:train"``/``"digits:all"``, or a path to an ``.npz`` with arrays x, y."""
    s = str(spec)
    if s == "digits" or s.startswith("digits:"):
        return load_digits_split(s.split(":", 1)[1] if ":" in s else "test")
    path = Path(s)
    if path.suffix != ".npz":
        raise ValueError(f"--data must be 'digits' or a .npz file, got {s!r}")
    if not path.is_file():
        raise ValueError(f"--data file not found: {s}")
    with np.load(path) as f:
        missing = [k for k in ("x", "y") if k not in f.files]
        if missing:
            raise ValueError(f"--data {s}: missing array(s) {missing}; found {f.files}")
        return validate_dataset(f["x"], f["y"], source=s)
