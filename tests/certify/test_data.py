"""Inputs of any shape through the CLI: tabular .npz rows, a normalised 3x32x32 ImageFolder, CIFAR-10 batches."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from rlcert.certify.cli.certify import main
from rlcert.certify.cli.tsv import load_tsv
from rlcert.certify.io import load_cifar10, load_data, load_image_folder
from rlcert.certify.models.normalize import PRESETS, NormalizeLayer, parse_normalize

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit


class Linear2(nn.Module):
    """Logits (w.x + b, -(w.x + b)) on (B, d) rows (or flattened images)."""

    def __init__(self, w, b):
        super().__init__()
        self.register_buffer("w", torch.as_tensor(w, dtype=torch.float32))
        self.b = float(b)

    def forward(self, x):
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([s, -s], 1)


def test_gaussian_certificate_on_tabular_rows(tmp_path):
    """2-D rows of any range: the l2 radius never exceeds the distance to the model's decision boundary."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (30, 2)).astype(np.float32)
    w, b = np.array([1.0, -2.0]), 0.5
    y = (x @ w + b <= 0).astype(np.int64)
    data, model, out = tmp_path / "rows.npz", tmp_path / "lin.pt", tmp_path / "rows.tsv"
    np.savez(data, x=x, y=y)
    torch.jit.script(Linear2(w, b)).save(str(model))
    assert main(["--model", str(model), "--data", str(data), "--method", "gaussian", "--sigma", "1.0", "--n0", "20",
                 "--n", "2000", "--no-progress", "--out", str(out)]) == 0
    t = load_tsv(out)
    dist = np.abs(x @ w + b) / np.linalg.norm(w)
    ok = t["predict"] >= 0
    assert ok.sum() >= 20 and np.all(t["correct"][ok] == 1)
    assert np.all(t["radius"][ok] <= dist[t["idx"][ok]] + 1e-6)
    assert np.all(t["radius"][ok] > 0.5 * dist[t["idx"][ok]] - 1.2)  # not vacuous: close to the distance


def _write_image_folder(root, rng, ranges=((0, 115), (140, 255))):
    """Two classes of 32x32 RGB PNGs, 'dark' and 'light', pixels uniform in the given 0..255 ranges (3 each)."""
    for (name, (lo, hi)) in zip(("dark", "light"), ranges):
        (root / name).mkdir(parents=True)
        for i in range(3):
            arr = rng.integers(lo, hi + 1, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / name / f"img{i}.png")
    (root / "light" / "notes.txt").write_text("not an image")


def test_image_folder_loader_reads_pixels_classes_and_refuses_mixed_sizes(tmp_path):
    rng = np.random.default_rng(1)
    _write_image_folder(tmp_path / "imgs", rng)
    x, y, classes = load_image_folder(tmp_path / "imgs")
    assert x.shape == (6, 3, 32, 32) and x.dtype == np.float32 and classes == ["dark", "light"]
    assert list(y) == [0, 0, 0, 1, 1, 1]
    first = np.asarray(Image.open(tmp_path / "imgs" / "dark" / "img0.png"), dtype=np.float32) / 255
    assert np.array_equal(x[0], first.transpose(2, 0, 1))
    xs, ys = load_data(f"imagefolder:{tmp_path / 'imgs'}")
    assert np.array_equal(xs, x) and np.array_equal(ys, y)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "imgs" / "light" / "small.png")
    with pytest.raises(ValueError, match="share one size"):
        load_image_folder(tmp_path / "imgs")


def test_gaussian_certificate_on_a_normalised_image_folder(tmp_path):
    """3x32x32 ImageFolder certified through the CLI with --normalize cifar10: the model sees normalised inputs,
    the noise and the radius live in pixel units (Cohen et al.). Checked against the exact pixel-space l2 distance
    to the boundary of the (linear) normalised model."""
    rng = np.random.default_rng(2)
    _write_image_folder(tmp_path / "imgs", rng, ((112, 122), (134, 144)))  # near the boundary (mean pixel 0.5)
    mean, std = (torch.tensor(v) for v in PRESETS["cifar10"])
    # on normalised z: s = mean(z) - mean(z at pixel 0.5) -> "light" (class 1 = logit index 1) iff s > 0
    d = 3 * 32 * 32
    w_z = torch.full((d,), 1.0 / d)
    b_z = -float(((0.5 - mean) / std).mean())
    model_z = Linear2(-w_z, -b_z)  # logits (-s, s): class 1 iff s > 0
    path = tmp_path / "m.pt"
    torch.jit.script(model_z).save(str(path))
    out = tmp_path / "img.tsv"
    assert main(["--model", str(path), "--data", f"imagefolder:{tmp_path / 'imgs'}", "--normalize", "cifar10",
                 "--method", "gaussian", "--sigma", "1.0", "--n0", "20", "--n", "4000", "--no-progress",
                 "--out", str(out)]) == 0
    t = load_tsv(out)
    x, y, _ = load_image_folder(tmp_path / "imgs")
    # the same function in pixel space: s(x) = w_x . x + b_x with w_x[c] = 1 / (d std_c)
    w_x = (w_z.view(3, 32, 32) / std.view(3, 1, 1)).flatten().double().numpy()
    b_x = b_z - float((w_z.view(3, 32, 32) * (mean / std).view(3, 1, 1)).sum())
    s = x.reshape(6, -1).astype(np.float64) @ w_x + b_x
    assert np.all((s > 0) == (y == 1))
    dist = np.abs(s) / np.linalg.norm(w_x)
    assert np.all(t["correct"] == 1)
    assert np.all(t["radius"] <= dist[t["idx"]] + 1e-6)  # pixel-space distance: noise added before normalising
    assert np.all(t["radius"] > 0.6 * dist[t["idx"]])  # close to it: the check would catch normalised-space noise
    dist_z = np.abs(s) / float(w_z.norm())  # the distance in normalised units is ~4x larger
    assert np.all(dist_z > 3 * dist)


def test_cifar10_python_batches(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    batches = {}
    for name in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, 4))
        batches[name] = (data, labels)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
    x, y = load_cifar10(tmp_path, "test")
    assert x.shape == (4, 3, 32, 32) and np.array_equal(y, batches["test_batch"][1])
    assert np.array_equal(x, batches["test_batch"][0].reshape(4, 3, 32, 32) / np.float32(255))
    xt, yt = load_data(f"cifar10-train:{root}")
    assert xt.shape == (20, 3, 32, 32) and np.array_equal(yt[4:8], batches["data_batch_2"][1])
    with pytest.raises(ValueError, match="test_batch"):
        load_cifar10(tmp_path / "nowhere")


def test_normalize_layer_and_spec():
    layer = parse_normalize("0.5,0.25/0.5,0.25")
    x = torch.tensor([[[[1.0]], [[0.5]]]])
    assert torch.allclose(layer(x), torch.tensor([[[[1.0]], [[1.0]]]]))
    rows = NormalizeLayer([1.0, 2.0], [2.0, 4.0])(torch.tensor([[3.0, 6.0]]))
    assert torch.allclose(rows, torch.tensor([[1.0, 1.0]]))
    for bad in ("cifar", "1,2/3", "1/0", "a/b"):
        with pytest.raises(ValueError, match="^normalize must be one of"):
            parse_normalize(bad)
