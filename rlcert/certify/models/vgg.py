"""A VGG-style CIFAR-size CNN (3x32x32 -> K logits; 64-128-256 channels) for throughput and precision studies."""

from __future__ import annotations

from torch import nn


def vgg_cifar(num_classes: int = 10, widths: tuple[int, int, int] = (64, 128, 256), hidden: int = 256) -> nn.Module:
    """Three blocks of two 3x3 conv + ReLU (``widths`` channels) each followed by 2x2 max-pooling, then
    Linear(widths[-1] * 4 * 4 -> hidden) ReLU Linear(hidden -> num_classes). Defaults: ~1.9M parameters,
    ~0.15 GMAC per 3x32x32 input."""
    layers: list[nn.Module] = []
    c = 3
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c = w
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def mlp(in_dim: int = 32, hidden: int = 256, layers: int = 2, out_dim: int = 8) -> nn.Module:
    """A policy-size MLP: ``layers`` hidden Linear + ReLU layers of width ``hidden``, then Linear(-> out_dim)."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    return nn.Sequential(*mods, nn.Linear(d, out_dim))
