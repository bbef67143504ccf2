"""Data for certification, read from local files only (no downloads): returns x float32 (N, ...) and y int64 (N,).

``load_data(spec)`` accepts:

* ``digits`` / ``digits:train`` / ``digits:all``: scikit-learn's ``load_digits`` (1797 8x8 grey images, 10
  classes, shipped with scikit-learn) as (N, 1, 8, 8) in [0, 1] (pixel / 16). A fixed stratified split (seed 0)
  keeps 400 images for testing; ``digits`` is that test split.
* ``path/to/file.npz`` with arrays ``x`` (N, ...) floating point of **any shape and range** (tabular rows,
  observation vectors, normalised or raw images) and ``y`` (N,) integer labels >= 0.
* ``imagefolder:DIR`` (or a directory with one sub-folder per class): the torchvision ``ImageFolder`` layout
  ``DIR/<class>/<image>``; classes are the sorted sub-folder names, images are read with PIL, converted to RGB and
  scaled to [0, 1]: x (N, 3, H, W). All images must share one size (no resizing is done).
* ``cifar10:DIR`` / ``cifar10-train:DIR``: the CIFAR-10 "python version" batches (``test_batch`` /
  ``data_batch_1..5``, in DIR or in ``DIR/cifar-10-batches-py``): x (N, 3, 32, 32) in [0, 1].

The [0, 1] range and grids are not checked here: methods that need them (SSN, DSSN, variable-Lambda, l0, patch
smoothing) check their own inputs and name the requirement. torchvision is not needed (nor used): the loaders read
the same on-disk formats with PIL and pickle.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

DIGITS_TEST_SIZE = 400
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def validate_dataset(x: np.ndarray, y: np.ndarray, source: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Check x (N, ...) finite floats (N >= 1, at least one feature) and y (N,) integer labels >= 0; return float32 /
    int64. No range check: methods that need [0, 1] or a grid check it themselves."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{source}: x must have shape (N, ...) with N >= 1 and at least one feature, got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{source}: x must be floating point (e.g. uint8 images scaled to [0, 1]), got dtype "
                         f"{x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError(f"{source}: x contains NaN or infinite values")
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


def load_image_folder(root: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``root/<class>/<image>`` -> x (N, 3, H, W) float32 in [0, 1], y (N,) int64 (class = index of the sorted
    sub-folder name, as torchvision's ImageFolder), and the class names. Files are read in sorted order."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--data imagefolder: {root} is not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"--data imagefolder: {root} has no class sub-folders (expected {root}/<class>/<image>)")
    images, labels, size = [], [], None
    for k, name in enumerate(classes):
        for path in sorted((root / name).rglob("*")):
            if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
                continue
            with Image.open(path) as img:
                arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
            if size is None:
                size = arr.shape
            elif arr.shape != size:
                raise ValueError(f"--data imagefolder: {path} is {arr.shape[1]}x{arr.shape[0]}, the first image "
                                 f"was {size[1]}x{size[0]}; all images must share one size (no resizing is done)")
            images.append(arr.transpose(2, 0, 1))
            labels.append(k)
    if not images:
        raise ValueError(f"--data imagefolder: no images with extensions {IMAGE_EXTENSIONS} under {root}")
    return np.stack(images), np.array(labels, dtype=np.int64), classes


def load_cifar10(root: str | Path, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 python batches -> x (N, 3, 32, 32) float32 in [0, 1], y (N,) int64. ``root`` holds ``test_batch``
    and ``data_batch_1..5`` (or a ``cifar-10-batches-py`` folder with them)."""
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    names = ("test_batch",) if split == "test" else CIFAR10_TRAIN
    xs, ys = [], []
    for name in names:
        path = root / name
        if not path.is_file():
            raise ValueError(f"--data cifar10: {path} not found (expected the CIFAR-10 python batches in {root})")
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"--data cifar10: {path} holds data of shape {data.shape}, expected (N, 3072)")
        xs.append(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
        ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def load_data(spec: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """x (N, ...) float32 and y (N,) int64 from a ``--data`` spec (see the module docstring)."""
    s = str(spec)
    if s == "digits" or s.startswith("digits:"):
        return load_digits_split(s.split(":", 1)[1] if ":" in s else "test")
    if s.startswith(("cifar10:", "cifar10-train:")):
        kind, _, root = s.partition(":")
        x, y = load_cifar10(root, "train" if kind == "cifar10-train" else "test")
        return validate_dataset(x, y, source=s)
    if s.startswith("imagefolder:") or Path(s).is_dir():
        x, y, _ = load_image_folder(s.split(":", 1)[1] if s.startswith("imagefolder:") else s)
        return validate_dataset(x, y, source=s)
    path = Path(s)
    if path.suffix != ".npz":
        raise ValueError(f"--data must be 'digits', a .npz file, imagefolder:DIR or cifar10:DIR, got {s!r}")
    if not path.is_file():
        raise ValueError(f"--data file not found: {s}")
    with np.load(path) as f:
        missing = [k for k in ("x", "y") if k not in f.files]
        if missing:
            raise ValueError(f"--data {s}: missing array(s) {missing}; found {f.files}")
        return validate_dataset(f["x"], f["y"], source=s)
