"""Per-channel normalisation as the model's first layer, so noise is added in input (pixel) space (Cohen et al.).

Certified radii are in the units of the space the noise is added to. Normalising the data before certification
would put the noise (and the radius) in normalised units; ``NormalizeLayer`` inside the model keeps both in pixel
units: ``nn.Sequential(NormalizeLayer(mean, std), model)``. The CLI's ``--normalize`` does this for a loaded model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),  # Cohen et al.'s CIFAR-10 constants
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class NormalizeLayer(nn.Module):
    """(x - mean[c]) / std[c] along dim 1 of x (N, C, ...) (or (N, d) for tabular rows, one value per feature)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t, std_t = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        if mean_t.ndim != 1 or mean_t.shape != std_t.shape or len(mean_t) == 0:
            raise ValueError(f"mean and std must be equal-length non-empty lists, got {list(mean)}, {list(std)}")
        if not bool((std_t > 0).all()):
            raise ValueError(f"std must be > 0, got {list(std)}")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[1] != len(self.mean):
            raise ValueError(f"NormalizeLayer with {len(self.mean)} channels got input of shape {tuple(x.shape)}")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (x - self.mean.view(shape)) / self.std.view(shape)


def parse_normalize(spec: str, who: str = "normalize") -> NormalizeLayer:
    """``cifar10`` / ``imagenet`` or ``m1,m2,m3/s1,s2,s3`` (means / standard deviations per channel); errors name
    ``who`` (the CLI passes --normalize)."""
    if spec in PRESETS:
        return NormalizeLayer(*PRESETS[spec])
    mean, sep, std = spec.partition("/")
    try:
        if not sep:
            raise ValueError
        return NormalizeLayer([float(v) for v in mean.split(",")], [float(v) for v in std.split(",")])
    except ValueError as e:
        raise ValueError(f"{who} must be one of {sorted(PRESETS)} or MEAN1,MEAN2,../STD1,STD2,.. with std > 0, "
                         f"got {spec!r}{': ' + str(e) if str(e) else ''}") from None
