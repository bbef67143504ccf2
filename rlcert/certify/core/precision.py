"""Precision of the base model's forward pass: ``fp32`` (default) or ``bf16``, optionally channels-last.

What is certified. A smoothing certificate holds for the smoothed classifier g(x) = argmax_c P[f(x + noise) = c]
of *whatever deterministic* base classifier f is sampled. With ``precision="bf16"`` the base classifier is

    f_bf16(z) = argmax of model(z) evaluated under ``torch.autocast(dtype=bfloat16, cache_enabled=False)``,

a deterministic function of the **fp32** noisy input z = x + noise: the noise is drawn in fp32 and added to x in
fp32 (the sampling engine never sees the precision), autocast then rounds z to bf16 inside the first matmul/conv
(ops outside autocast's lower-precision list, e.g. a normalisation in front of the model, stay fp32). So the
noise distribution is exactly the certified one, and counts, Clopper-Pearson bounds and radii are computed in
int64/float64 as in fp32. The certificate is for the smoothed classifier of f_bf16 -- the same bf16 model (same
weights, same autocast, same device type) must be the predictor in deployment (``certifier.predict`` with the
same classifier, or ``rlcert certify --mode predict`` equivalents with the same ``--precision``).

Why autocast and not a bf16 copy of the model: autocast keeps the fp32 weights as the only copy (a TorchScript,
``torch.export`` or user module needs no dtype surgery, and a model updated in place is never stale:
``cache_enabled=False`` recasts the weights on every call), and the input is never rounded before the model's
first lower-precision op. Outputs are returned as fp32 so that anything downstream (argmax, the adaptive
certifiers' query arithmetic, action scaling of policies) runs in fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: Any, name: str = "precision") -> str:
    """Return ``precision`` if it is one of ``PRECISIONS``, else raise a one-line ValueError naming ``name``."""
    if precision not in PRECISIONS:
        raise ValueError(f"{name} must be one of {PRECISIONS}, got {precision!r}")
    return str(precision)


@contextlib.contextmanager
def autocast(device: torch.device | str, precision: str) -> Iterator[None]:
    """The forward-pass context of ``precision`` on ``device``: nothing for fp32, bf16 autocast (no weight cache)
    for bf16. Only the base model's forward belongs inside it -- never the noise sampling."""
    if check_precision(precision) == "fp32":
        yield
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, cache_enabled=False):
        yield


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """x in channels-last memory format when it is an image batch (4-D), else unchanged (values never change)."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


def prepare_model(model: Any, channels_last: bool = False) -> Any:
    """``model`` with its 4-D weights in channels-last memory format when asked (in place; a no-op for non-modules
    and models without convolutions). Memory format changes strides only, never values."""
    if channels_last and isinstance(model, nn.Module):
        model.to(memory_format=torch.channels_last)
    return model


def run_forward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, precision: str = "fp32",
                channels_last: bool = False) -> torch.Tensor:
    """``fn(x)`` at ``precision`` (see the module docstring); floating outputs come back as fp32."""
    if channels_last:
        x = to_channels_last(x)
    with autocast(x.device, precision):
        out = fn(x)
    if precision != "fp32" and torch.is_floating_point(out) and out.dtype != torch.float32:
        out = out.float()
    return out


class PrecisionModule(nn.Module):
    """``module`` run at ``precision`` (optionally channels-last), returning fp32: a drop-in base network (e.g. the
    mask and base networks of the adaptive certifiers) whose bf16 forward keeps the surrounding arithmetic fp32."""

    def __init__(self, module: nn.Module, precision: str = "fp32", channels_last: bool = False) -> None:
        super().__init__()
        self.module = prepare_model(module, channels_last)
        self.precision = check_precision(precision)
        self.channels_last = bool(channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return run_forward(self.module, x, self.precision, self.channels_last)


def with_precision(module: nn.Module, precision: str = "fp32", channels_last: bool = False) -> nn.Module:
    """``module`` run at ``precision`` / ``channels_last`` and returning fp32 (unchanged when fp32 and not
    channels-last): for methods that load their own networks (e.g. ARS's base and mask models)."""
    return module if precision == "fp32" and not channels_last else PrecisionModule(module, precision, channels_last)
