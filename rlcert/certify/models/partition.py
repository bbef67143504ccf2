"""DPA/SS-DPA partition models: ``PartitionMLP`` + ``PartitionModel`` = one base model of an ensemble with its
per-partition normalisation (and, for SS-DPA, the shared unsupervised projection), saved one file per partition.
``train_partition`` trains one; ``rlcert.certify.poisoning.dpa.train_partitions`` splits a data set and trains a
shard of an ensemble (used by ``scripts/train_dpa.py`` and the deterministic demo).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn


class PartitionMLP(nn.Module):
    """Linear (hidden = 0) or one-hidden-layer MLP on flat features."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.in_features, self.hidden = in_features, hidden
        layers: list[nn.Module] = [nn.Linear(in_features, num_classes)] if hidden == 0 else [
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PartitionModel:
    """Base model i of a DPA/SS-DPA ensemble: ``predict(x)`` on samples (B, ...) -> (B,) labels.

    Inputs are multiplied by ``input_scale`` and flattened first (digits: x in [0, 1] times 16 = integer pixels)."""

    def __init__(self, net: PartitionMLP, mean: torch.Tensor, std: torch.Tensor, projection: torch.Tensor | None,
                 index: int, k: int, num_classes: int, mode: str, input_scale: float = 1.0) -> None:
        self.net, self.mean, self.std, self.projection = net.eval(), mean, std, projection
        self.index, self.k, self.num_classes, self.mode = index, k, num_classes, mode
        self.input_scale = input_scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1).float().cpu() * self.input_scale
        if self.projection is not None:
            z = z @ self.projection
        return (z - self.mean) / self.std

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.features(x)).argmax(1)

    def save(self, path: str | Path) -> None:
        """Atomic write (tmp file + rename): a finished partition is never half-written."""
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        torch.save({"state_dict": self.net.state_dict(), "in_features": self.net.in_features,
                    "hidden": self.net.hidden, "mean": self.mean, "std": self.std, "projection": self.projection,
                    "index": self.index, "k": self.k, "num_classes": self.num_classes, "mode": self.mode,
                    "input_scale": self.input_scale}, tmp)
        os.replace(tmp, path)


def load_partition_model(path: str | Path) -> PartitionModel:
    blob = torch.load(path, map_location="cpu", weights_only=False)
    net = PartitionMLP(blob["in_features"], blob["num_classes"], blob["hidden"])
    net.load_state_dict(blob["state_dict"])
    return PartitionModel(net, blob["mean"], blob["std"], blob["projection"], blob["index"], blob["k"],
                          blob["num_classes"], blob["mode"], blob.get("input_scale", 1.0))


def pca_projection(x: np.ndarray, dim: int) -> torch.Tensor:
    """Deterministic PCA basis (d, dim) of the unlabelled training samples (sign fixed: largest entry positive)."""
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc.astype(np.float64), full_matrices=False)
    basis = vt[:dim].T
    signs = np.sign(basis[np.abs(basis).argmax(0), np.arange(dim)])
    return torch.tensor(basis * signs, dtype=torch.float32)


def train_partition(x: np.ndarray, y: np.ndarray, index: int, k: int, mode: str, projection: torch.Tensor | None,
                    epochs: int, hidden: int, input_scale: float = 16.0, num_classes: int = 10) -> PartitionModel:
    """Base model ``index`` on its partition's integer samples x (n, d) (seed = index; full-batch Adam, fixed order:
    a deterministic function of the sorted partition). Per-partition normalisation (thesis footnote 5)."""
    torch.manual_seed(index)
    feats = torch.tensor(x, dtype=torch.float32)
    if projection is not None:
        feats = feats @ projection
    in_features = feats.shape[1]
    if len(x) == 0:  # empty partition: a deterministic model that always predicts class 0
        net = PartitionMLP(in_features, num_classes, hidden=0)
        for p in net.parameters():
            torch.nn.init.zeros_(p)
        return PartitionModel(net, torch.zeros(in_features), torch.ones(in_features), projection, index, k,
                              num_classes, mode, input_scale=input_scale)
    mean = feats.mean(0)
    std = feats.std(0, unbiased=False).clamp_min(1.0)
    z = (feats - mean) / std
    target = torch.tensor(y)
    net = PartitionMLP(in_features, num_classes, hidden=hidden)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(z), target)
        loss.backward()
        opt.step()
    return PartitionModel(net, mean, std, projection, index, k, num_classes, mode, input_scale=input_scale)
