"""Model and data loading for certification (``rlcert.certify.io``), local files only (no downloads).

Certification methods and the CLI load through this module (methods never import the CLI). Errors are one line and
name the parameter they are about (``who``: "data", "model", "weights" by default; the CLI passes its flags).

Models: ``load_model(spec, weights, device)``: a TorchScript file (``.pt``), a ``torch.export`` archive
(``.pt2``), or ``package.module:factory`` (called with no arguments) with an optional state dict ``weights``.
``resolve_device("auto" | "cpu" | "cuda")``. Outputs: ``check_output_file(path)`` before anything is written.

Data: ``load_data(spec)`` returns x float32 (N, ...) and y int64 (N,), and accepts:

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

import importlib
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcert.certify.core.classifier import check_device

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


def load_image_folder(root: str | Path, who: str = "data") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``root/<class>/<image>`` -> x (N, 3, H, W) float32 in [0, 1], y (N,) int64 (class = index of the sorted
    sub-folder name, as torchvision's ImageFolder), and the class names. Files are read in sorted order."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{who} imagefolder: {root} is not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{who} imagefolder: {root} has no class sub-folders (expected {root}/<class>/<image>)")
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
                raise ValueError(f"{who} imagefolder: {path} is {arr.shape[1]}x{arr.shape[0]}, the first image "
                                 f"was {size[1]}x{size[0]}; all images must share one size (no resizing is done)")
            images.append(arr.transpose(2, 0, 1))
            labels.append(k)
    if not images:
        raise ValueError(f"{who} imagefolder: no images with extensions {IMAGE_EXTENSIONS} under {root}")
    return np.stack(images), np.array(labels, dtype=np.int64), classes


def load_cifar10(root: str | Path, split: str = "test", who: str = "data") -> tuple[np.ndarray, np.ndarray]:
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
            raise ValueError(f"{who} cifar10: {path} not found (expected the CIFAR-10 python batches in {root})")
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{who} cifar10: {path} holds data of shape {data.shape}, expected (N, 3072)")
        xs.append(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
        ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def load_npz_xy(path: str | Path, who: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Arrays x and y of an .npz archive (no pickled objects), as stored. One-line ValueError naming ``who`` and
    the path when the file is missing, corrupt, not an .npz archive, holds object arrays, or lacks x / y."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{who} file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise ValueError(f"{who} {path}: missing array(s) {missing}; found {f.files}")
            return np.asarray(f["x"]), np.asarray(f["y"])
    except ValueError as e:
        if str(e).startswith(f"{who} {path}:"):
            raise
        raise ValueError(f"{who} {path}: not an .npz archive of numeric arrays x, y (object/pickled arrays are "
                         "refused; write it with numpy.savez)") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{who} {path}: cannot be read as an .npz archive (corrupt or truncated file: "
                         f"{type(e).__name__})") from None


def load_data(spec: str | Path, who: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """x (N, ...) float32 and y (N,) int64 from a data spec (see the module docstring); errors name ``who``."""
    s = str(spec)
    if s == "digits" or s.startswith("digits:"):
        return load_digits_split(s.split(":", 1)[1] if ":" in s else "test")
    if s.startswith(("cifar10:", "cifar10-train:")):
        kind, _, root = s.partition(":")
        x, y = load_cifar10(root, "train" if kind == "cifar10-train" else "test", who=who)
        return validate_dataset(x, y, source=s)
    if s.startswith("imagefolder:") or Path(s).is_dir():
        x, y, _ = load_image_folder(s.split(":", 1)[1] if s.startswith("imagefolder:") else s, who=who)
        return validate_dataset(x, y, source=s)
    path = Path(s)
    if path.suffix != ".npz":
        raise ValueError(f"{who} must be 'digits', a .npz file, imagefolder:DIR or cifar10:DIR, got {s!r}")
    x, y = load_npz_xy(path, who=who)
    return validate_dataset(x, y, source=s)


# ---- output files ------------------------------------------------------------------------------------------------
def check_output_file(path: str | Path, who: str = "out", also: tuple[Path, ...] = ()) -> Path:
    """One-line ValueError naming ``who`` unless ``path`` (and its companions ``also``, e.g. a settings file) can
    be written as a file: not a directory, and no existing file where one of its folders should be."""
    path = Path(path)
    for p in (path, *also):
        if p.is_dir():
            raise ValueError(f"{who} {path}: {p} is a directory; give a file path (e.g. {p / 'certify.tsv'})")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ValueError(f"{who} {path}: {blocker} is a file, not a directory")
    return path


# ---- models ------------------------------------------------------------------------------------------------------
def resolve_device(name: str | torch.device) -> torch.device:
    """"auto" -> cuda when available, else cpu; any other name is checked by ``check_device`` (one-line error)."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(name)


def _state_dict_mismatch(model: torch.nn.Module, state: dict[str, Any]) -> str | None:
    """A one-line summary of how ``state`` does not fit ``model`` (missing / unexpected keys, shape mismatches)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and hasattr(state[k], "shape")
              and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} tensor(s) of another shape (first: {k} is {tuple(state[k].shape)} in the file, "
                     f"{tuple(own[k].shape)} in the model)")
    if missing:
        parts.append(f"{len(missing)} missing (first: {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
    return "; ".join(parts) or None


def load_weights(model: torch.nn.Module, weights: str | Path, spec: str = "", who: str = "weights",
                 model_who: str = "model") -> torch.nn.Module:
    """Load the state dict file ``weights`` into ``model``; a file that is not a state dict, or one of another
    model, gives one line naming the file and the model (``spec``)."""
    path = Path(weights)
    if not path.is_file():
        raise ValueError(f"{who} file not found: {weights}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle, zip and torch errors alike: not a loadable state dict
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{who} {weights}: not a state dict saved with torch.save ({type(e).__name__}: "
                         f"{first[:120]})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{who} {weights}: holds a {type(state).__name__}, not a state dict (torch.save(model."
                         "state_dict(), path))")
    problem = _state_dict_mismatch(model, state)
    if problem is not None:
        raise ValueError(f"{who} {weights} do not fit {model_who} {spec or type(model).__name__}: {problem}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{who} {weights} do not fit {model_who} {spec}: {first}") from None
    return model


def load_model(spec: str, weights: str | Path | None, device: torch.device | str, who: str = "model",
               weights_who: str = "weights") -> torch.nn.Module:
    """A model in eval mode on ``device`` from a TorchScript file, a ``.pt2`` export archive, or ``module:factory``
    with an optional state dict ``weights`` (warns on stderr when a factory gets none). Errors name ``who`` /
    ``weights_who`` (the CLI passes its flags)."""
    device = torch.device(device)
    path = Path(spec)
    if path.is_file() and path.suffix == ".pt2":  # torch.export archive
        try:
            model = torch.export.load(str(path)).module()
        except Exception as e:  # noqa: BLE001 - report as a bad model file
            raise ValueError(f"{who} {spec}: not a torch.export archive ({type(e).__name__})") from None
        return model.to(device)
    if path.is_file():
        try:
            model = torch.jit.load(str(path), map_location=device)
        except Exception as e:  # noqa: BLE001 - report as a bad model file
            first = (str(e).strip().splitlines() or [""])[0]
            raise ValueError(f"{who} {spec}: not a TorchScript file ({e.__class__.__name__}: {first[:120]})") from None
    elif ":" in spec:
        mod, _, fn = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"{who} {spec}: cannot import factory ({e})") from None
        model = factory()
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"{who} {spec}: the factory returned a {type(model).__name__}, not an nn.Module")
        if weights is not None:
            load_weights(model, weights, spec, who=weights_who, model_who=who)
        else:
            print(f"warning: {who} factory without {weights_who}: using untrained weights", file=sys.stderr)
    else:
        raise ValueError(f"{who} must be an existing TorchScript file or package.module:factory, got {spec!r}")
    return model.to(device).eval()
