"""A tiny CNN for the 8x8 digits and its noise-augmented training (the demo's base classifier), plus the CLI factories.

Training noise is a ``rlcert.certify.randomized.noise.Noise`` object -- the one the certifier samples from -- added
to the [0, 1] input **before** the model (no normalisation inside), so certified radii are in pixel units.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from rlcert.certify.randomized.noise import Noise, make_noise


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


NoiseFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def training_noise(noise: str | Noise | NoiseFn, sigma: float) -> NoiseFn | None:
    """The augmentation ``(batch, generator) -> model input``: a ``Noise`` object's ``sample`` (the same law the
    certifier uses), a noise name built with ``make_noise(name, sigma=sigma)``, or any callable as is. None (clean
    training) for a name with sigma = 0."""
    if isinstance(noise, Noise):
        return noise.sample
    if isinstance(noise, str):
        return None if sigma == 0 else make_noise(noise, sigma=sigma).sample
    if callable(noise):
        return noise
    raise ValueError(f"noise must be a noise name, a Noise object or a callable, got {noise!r}")


def train_digits_cnn(x: np.ndarray, y: np.ndarray, sigma: float = 0.25, epochs: int = 30,
                     noise: str | Noise | NoiseFn = "gaussian", lr: float = 3e-3, batch_size: int = 64, seed: int = 0,
                     log=print, model_fn: Callable[[], nn.Module] = digits_cnn,
                     device: str | torch.device = "cpu") -> nn.Module:
    """Train ``model_fn()`` (built after seeding, so runs are reproducible) with noise augmentation (one fresh draw
    per image per epoch).

    x: (N, 1, 8, 8) float in [0, 1]; y: (N,) int. ``noise`` is a ``rlcert.certify.randomized.noise.Noise`` (e.g.
    ``certifier.noise``: training and certification then share one noise object), a noise name ("gaussian",
    "laplace", "uniform", "ssn"; built with standard deviation ``sigma``; sigma = 0 trains clean), or a callable
    ``noise(batch, generator) -> model input`` (e.g. a deterministic certifier's ablation/encoding). Adam, cosine
    learning-rate decay. ``device``: where the model, the data and the noise live (the batch order is drawn on the
    CPU; on CUDA the noise uses its own generator seeded with ``seed``). Returns the model in eval mode.
    """
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    augment = training_noise(noise, sigma)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = torch.device(device)
    noise_gen = gen if device.type == "cpu" else torch.Generator(device=device).manual_seed(seed)
    model = model_fn().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    xt = torch.as_tensor(x, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y, dtype=torch.int64, device=device)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen).to(device)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(xt), batch_size):
            idx = perm[i:i + batch_size]
            xb = xt[idx] if augment is None else augment(xt[idx], noise_gen)
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
