"""Base-classifier adaptor: anything that maps a batch of inputs to class labels, and the input conversions every
certifier shares (numpy / any dtype -> the model's dtype on its device; one-line shape and device errors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from rlcert.certify.core.precision import check_precision, prepare_model, run_forward


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``; ValueError (one line, naming the parameter) when it is not a device name or
    names an accelerator this machine does not have (e.g. ``device="cuda"`` without CUDA)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={str(device)!r}: CUDA is not available on this machine (use the cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={str(device)!r}: MPS is not available on this machine (use the cpu)")
    return dev


def model_dtype(model: Any) -> torch.dtype:
    """The floating dtype of a model's first floating parameter (else buffer); float32 for callables and
    parameter-free modules. Inputs are cast to it."""
    if isinstance(model, nn.Module):
        for t in (*model.parameters(), *model.buffers()):
            if t.is_floating_point():
                return t.dtype
    return torch.float32


def error_line(e: BaseException) -> str:
    """The informative line of an exception raised inside a model: the first line, or for TorchScript (whose
    message is a serialized traceback) the last one (e.g. "RuntimeError: mat1 and mat2 shapes cannot be ...")."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    return lines[-1] if "TorchScript" in lines[0] else lines[0]


def expected_input(model: Any) -> str | None:
    """A short description of the input a module expects, read off its first layer with parameters (Linear: the
    last axis; ConvNd: the channel axis; TorchScript modules by their original class), or None when unknown."""
    if not isinstance(model, nn.Module):
        return None
    for m in model.modules():
        kind = getattr(m, "original_name", type(m).__name__)
        if isinstance(m, nn.Linear) or (kind == "Linear" and hasattr(m, "in_features")):
            return f"(B, {m.in_features})" if m is model else f"(B, ..., {m.in_features})"
        if isinstance(m, nn.modules.conv._ConvNd) or (kind.startswith("Conv") and hasattr(m, "in_channels")):
            dims = kind[-2:-1] if kind[-2:-1].isdigit() else "2"
            return f"(B, {m.in_channels}, {', '.join(['S'] * int(dims))})"
        if any(True for _ in m.parameters(recurse=False)):
            return None
    return None


def as_batch(x: Any, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
             who: str = "x") -> torch.Tensor:
    """x (N, *input_shape) from a tensor, a numpy array or nested sequences, as a floating tensor of ``dtype``
    (default: x's own floating dtype, float32 for integers) on ``device`` (default: where x is). Raises a one-line
    ValueError naming ``who`` when x is not numeric or has no batch axis."""
    if not isinstance(x, torch.Tensor):
        try:
            arr = np.asarray(x)
        except Exception:  # noqa: BLE001 - ragged sequences and other non-arrays
            raise ValueError(f"{who} must be a tensor or array of numbers of shape (N, *input_shape)") from None
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{who} must hold real numbers of shape (N, *input_shape), got dtype {arr.dtype}")
        x = torch.as_tensor(arr)
    elif x.is_complex():
        raise ValueError(f"{who} must hold real numbers, got dtype {x.dtype}")
    if x.ndim < 1:
        raise ValueError(f"{who} must have shape (N, *input_shape), got a scalar")
    target = dtype if dtype is not None else (x.dtype if x.is_floating_point() else torch.float32)
    return x.to(device=x.device if device is None else device, dtype=target)


class BaseClassifier:
    """Wrap an ``nn.Module`` returning logits (B, K), or a callable returning labels (B,), as f: x -> labels.

    ``predict(x)`` takes x of shape (B, *input_shape) -- a tensor of any real dtype or a numpy array, cast to the
    model's dtype (``dtype``: its first floating parameter's, float32 for callables) and moved to ``device`` -- and
    returns int64 labels of shape (B,) on that device. It runs the model in **eval mode** under
    ``torch.inference_mode()`` (batch-norm uses its running statistics, dropout is off: the base classifier is a
    fixed function, as every certificate assumes) and afterwards restores the train/eval mode of every submodule as
    the caller left it. ``num_classes`` is K; ``device`` is where inputs should live (default: the device of the
    model's first parameter, else CPU; an unavailable device is refused here). ``input_shape`` (optional) is the
    per-input shape the model expects: other shapes are refused with a one-line error before the model runs; a
    model that fails on an input's shape gives a one-line error naming the shapes either way.

    ``precision``: "fp32" (default) or "bf16" -- the forward pass runs under bf16 autocast and the base classifier
    (hence what every certificate is about, and what must predict in deployment) is that bf16 model; see
    ``rlcert.certify.core.precision``. ``channels_last=True`` runs 4-D inputs and the model's conv weights in
    channels-last memory format (the model is converted in place; faster with bf16 on CPUs with AMX).
    """

    def __init__(self, model: nn.Module | Callable[[torch.Tensor], torch.Tensor], num_classes: int,
                 returns: str = "logits", device: str | torch.device | None = None,
                 input_shape: tuple[int, ...] | None = None, precision: str = "fp32",
                 channels_last: bool = False) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if returns not in ("logits", "labels"):
            raise ValueError(f"returns must be 'logits' or 'labels', got {returns!r}")
        if not callable(model):
            raise ValueError(f"model must be an nn.Module or a callable, got {type(model).__name__}")
        self.precision = check_precision(precision)
        self.channels_last = bool(channels_last)
        self.model = prepare_model(model, self.channels_last)
        self.num_classes = int(num_classes)
        self.returns = returns
        if device is None and isinstance(model, nn.Module):
            p = next(iter(model.parameters()), None)
            device = p.device if p is not None else "cpu"
        self.device = check_device(device if device is not None else "cpu")
        self.dtype = model_dtype(model)
        if input_shape is not None:
            try:
                input_shape = tuple(int(s) for s in input_shape)
            except (TypeError, ValueError):
                raise ValueError(f"input_shape must be a tuple of ints, got {input_shape!r}") from None
        self.input_shape = input_shape

    def prepare(self, x: Any) -> torch.Tensor:
        """x (B, *input_shape) as a tensor of the model's dtype on ``device`` (numpy and any real dtype accepted);
        ValueError (one line) when ``input_shape`` was given and x's per-input shape differs."""
        x = as_batch(x, self.device, self.dtype)
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.input_shape))}) (input_shape="
                             f"{self.input_shape}), got {tuple(x.shape)}")
        return x

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        try:
            if not isinstance(model, nn.Module):
                return run_forward(model, x, self.precision, self.channels_last)
            modules = list(model.modules())
            modes = [m.training for m in modules]
            if not any(modes):
                return run_forward(model, x, self.precision, self.channels_last)
            model.eval()
            try:
                return run_forward(model, x, self.precision, self.channels_last)
            finally:
                for m, mode in zip(modules, modes):
                    m.training = mode
        except RuntimeError as e:
            if isinstance(e, torch.OutOfMemoryError):
                raise
            want = self.input_shape and f"(B, {', '.join(map(str, self.input_shape))})" or expected_input(model)
            hint = f"; it expects {want}" if want else ""
            raise ValueError(f"the model failed on inputs of shape {tuple(x.shape)}{hint}: {error_line(e)}") from e

    def logits(self, x: Any) -> torch.Tensor:
        """The model's raw output on x (B, *input_shape), in eval mode under inference mode (as ``predict``)."""
        x = self.prepare(x)
        with torch.inference_mode():
            return self._forward(x)

    def predict(self, x: Any) -> torch.Tensor:
        """Labels (B,) int64 of the base classifier on x (B, *input_shape); see the class docstring."""
        x = self.prepare(x)
        with torch.inference_mode():
            out = self._forward(x)
            if self.returns == "logits":
                if out.ndim != 2 or out.shape[1] != self.num_classes:
                    raise ValueError(f"model must return logits of shape (B, {self.num_classes}), "
                                     f"got {tuple(out.shape)}")
                return out.argmax(dim=1)
            if out.shape != (x.shape[0],):
                raise ValueError(f"label callable must return shape ({x.shape[0]},), got {tuple(out.shape)}")
            return out.long()
