"""Base-classifier adaptor: anything that maps a batch of inputs to class labels."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rlcert.certify.core.precision import check_precision, prepare_model, run_forward


class BaseClassifier:
    """Wrap an ``nn.Module`` returning logits (B, K), or a callable returning labels (B,), as f: x -> labels.

    ``predict(x)`` takes x of shape (B, *input_shape) and returns int64 labels of shape (B,) on x's device. It runs
    the model in **eval mode** under ``torch.inference_mode()`` (batch-norm uses its running statistics, dropout is
    off: the base classifier is a fixed function, as every certificate assumes) and afterwards restores the
    train/eval mode of every submodule as the caller left it. ``num_classes`` is K; ``device`` is where inputs
    should live (default: the device of the model's first parameter, else CPU).

    ``precision``: "fp32" (default) or "bf16" -- the forward pass runs under bf16 autocast and the base classifier
    (hence what every certificate is about, and what must predict in deployment) is that bf16 model; see
    ``rlcert.certify.core.precision``. ``channels_last=True`` runs 4-D inputs and the model's conv weights in
    channels-last memory format (the model is converted in place; faster with bf16 on CPUs with AMX).
    """

    def __init__(self, model: nn.Module | Callable[[torch.Tensor], torch.Tensor], num_classes: int,
                 returns: str = "logits", device: str | torch.device | None = None, precision: str = "fp32",
                 channels_last: bool = False) -> None:
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if returns not in ("logits", "labels"):
            raise ValueError(f"returns must be 'logits' or 'labels', got {returns!r}")
        self.precision = check_precision(precision)
        self.channels_last = bool(channels_last)
        self.model = prepare_model(model, self.channels_last)
        self.num_classes = num_classes
        self.returns = returns
        if device is None and isinstance(model, nn.Module):
            p = next(iter(model.parameters()), None)
            device = p.device if p is not None else "cpu"
        self.device = torch.device(device if device is not None else "cpu")

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
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

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The model's raw output on x (B, *input_shape), in eval mode under inference mode (as ``predict``)."""
        with torch.inference_mode():
            return self._forward(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Labels (B,) int64 of the base classifier on x (B, *input_shape); see the class docstring."""
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
