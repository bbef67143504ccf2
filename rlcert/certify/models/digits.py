"""A tiny CNN for the 8x8 digits and its Gaussian-noise-augmented training (the demo's base classifier).

Noise is added to the [0, 1] input **before** the model (no normalisation inside), so certified radii are in
pixel units of [0, 1] images.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def digits_cnn(num_classes: int = 10, width: int = 16, in_channels: int = 1, hidden: int = 64) -> nn.Module:
    """Conv(C->w,3) ReLU Conv(w->2w,3,stride 2) ReLU, Linear(2w*4*4 -> hidden) ReLU Linear(hidden -> classes).

    Defaults (C = 1, w = 16, hidden 64; ~38k params) are the randomized-smoothing demo's model; the deterministic
    certifiers' digits models (``digits_dssn_cnn`` etc. below) use C = 1 or 2, w = 32, hidden 128."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * width * 16, hidden), nn.ReLU(), nn.Linear(hidden, num_classes),
    )


def digits_dssn_cnn() -> nn.Module:
    """CLI factory: 1-channel digits CNN (DSSN); weights from the deterministic demo's ``dssn.pt``."""
    return digits_cnn(in_channels=1, width=32, hidden=128)


def digits_null_cnn() -> nn.Module:
    """CLI factory: 2-channel (x, 1-x) NULL-encoded digits CNN (column/block smoothing); weights ``column.pt``."""
    return digits_cnn(in_channels=2, width=32, hidden=128)


def digits_bounds_cnn() -> nn.Module:
    """CLI factory: 2-channel [upper, lower] digits CNN (variable-Lambda, deterministic l0); weights
    ``variable-lambda.pt`` / ``deterministic-l0.pt``."""
    return digits_cnn(in_channels=2, width=32, hidden=128)


def add_noise(x: torch.Tensor, noise: str, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """x plus training noise of standard deviation ``sigma``: "gaussian", "laplace" (scale sigma/sqrt 2),
    "uniform" (U[-sqrt(3) sigma, sqrt(3) sigma]); or "ssn" (splitting noise with lambd = sqrt(3) sigma)."""
    if noise == "gaussian":
        return x + sigma * torch.randn(x.shape, generator=generator)
    if noise == "laplace":
        e = torch.empty((2, *x.shape)).exponential_(1.0, generator=generator)
        return x + (sigma / np.sqrt(2.0)) * (e[0] - e[1])
    if noise == "uniform":
        lam = sigma * np.sqrt(3.0)
        return x + (torch.rand(x.shape, generator=generator) * 2 - 1) * lam
    if noise == "ssn":
        from rlcert.certify.randomized.ssn import ssn_transform

        lam = sigma * np.sqrt(3.0)
        return ssn_transform(x, torch.rand(x.shape, generator=generator) * 2 * lam, lam)
    raise ValueError(f"noise must be 'gaussian', 'laplace', 'uniform' or 'ssn', got {noise!r}")


NoiseFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def train_digits_cnn(x: np.ndarray, y: np.ndarray, sigma: float = 0.25, epochs: int = 30,
                     noise: str | NoiseFn = "gaussian", lr: float = 3e-3, batch_size: int = 64, seed: int = 0,
                     log=print, model_fn: Callable[[], nn.Module] = digits_cnn) -> nn.Module:
    """Train ``model_fn()`` (built after seeding, so runs are reproducible) with noise augmentation (one fresh draw
    per image per epoch).

    x: (N, 1, 8, 8) float in [0, 1]; y: (N,) int. ``noise`` is a name for ``add_noise`` (with ``sigma``), or a
    callable ``noise(batch, generator) -> model input`` (e.g. a deterministic certifier's ablation/encoding; then
    ``sigma`` is unused). Adam, cosine learning-rate decay. Returns the model in eval mode.
    """
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = model_fn()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(xt), batch_size):
            idx = perm[i:i + batch_size]
            if callable(noise):
                xb = noise(xt[idx], gen)
            else:
                xb = add_noise(xt[idx], noise, sigma, gen) if sigma > 0 else xt[idx]
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yt[idx]).sum().item()
            total += len(idx)
        sched.step()
        if log is not None and (epoch + 1) % max(1, epochs // 5) == 0:
            log(f"epoch {epoch + 1}/{epochs} loss {loss_sum / total:.3f} noisy-train-acc {correct / total:.3f} "
                f"({time.perf_counter() - t0:.1f} s)")
    return model.eval()
