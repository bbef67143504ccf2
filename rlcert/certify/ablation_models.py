"""Tiny base models for the deterministic-certifier demos on sklearn's 8x8 digits (no downloads).

``DigitsCNN``: a small CNN for (C, 8, 8) inputs (C = 1 for DSSN, 2 for the (x, 1-x) NULL encoding, 2 for
[upper, lower] variable-Lambda inputs). ``PartitionMLP`` + ``PartitionModel``: one DPA/SS-DPA base model with its
per-partition normalisation (and, for SS-DPA, the shared unsupervised projection), saved one file per partition.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """Conv(C->32, 3, p1)-ReLU-Conv(32->64, 3, s2, p1)-ReLU-FC(1024->128)-ReLU-FC(128->K) for 8x8 inputs.

    ``raw_encoding`` ("null" or "bounds", for 2-channel models) lets the model also accept a raw 1-channel image,
    read as "nothing ablated": (x, 1 - x) for the NULL encoding, [x, x] (zero-width bin) for [upper, lower]. This
    keeps the model usable by callers that probe it with raw inputs (the certify CLI)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, raw_encoding: str | None = None) -> None:
        super().__init__()
        if raw_encoding not in (None, "null", "bounds"):
            raise ValueError(f"raw_encoding must be None, 'null' or 'bounds', got {raw_encoding!r}")
        self.in_channels, self.raw_encoding = in_channels, raw_encoding
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.raw_encoding is not None and x.shape[1] * 2 == self.in_channels:
            x = torch.cat([x, 1 - x if self.raw_encoding == "null" else x], dim=1)
        return self.net(x)


def digits_dssn_cnn() -> DigitsCNN:
    """CLI factory: 1-channel digits CNN (DSSN); weights from the deterministic demo's ``dssn.pt``."""
    return DigitsCNN(1)


def digits_null_cnn() -> DigitsCNN:
    """CLI factory: (x, 1-x) NULL-encoded digits CNN (column/block smoothing); weights ``column.pt``."""
    return DigitsCNN(2, raw_encoding="null")


def digits_bounds_cnn() -> DigitsCNN:
    """CLI factory: [upper, lower] digits CNN (variable-Lambda, deterministic l0); weights
    ``variable-lambda.pt`` / ``deterministic-l0.pt``."""
    return DigitsCNN(2, raw_encoding="bounds")


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
