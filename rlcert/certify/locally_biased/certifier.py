"""``--method lbrs``: locally biased smoothing of a binary model through the common Certifier interface.

The model (CLI: ``--score-model``) returns logits (B, 2) (score g = logit[1] - logit[0]; class 1 <-> label +1,
class 0 <-> label -1), or (B,) / (B, 1) scores. The reference set is an ``.npz`` with x (N, *input_shape) and
y (N,) in {0, 1} or {-1, +1}, disjoint from the model's training data. Certificates are deterministic (``p_lower``
None): Theorem 6 when the model is affine (``is_affine``), Theorem 8 with ``lipschitz`` otherwise; a nonlinear
model without ``lipschitz`` is refused (ValueError, before anything is written) rather than given a radius.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcert.certify.core.certificate import Certificate
from rlcert.certify.core.certifier import Certifier
from rlcert.certify.core.classifier import BaseClassifier, as_batch
from rlcert.certify.core.registry import register
from rlcert.certify.io import load_model, load_npz_xy, resolve_device
from rlcert.certify.locally_biased.lbrs import NORMS, LocallyBiasedSmoothing, TorchScore, is_affine


def load_reference(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """x (N, ...) float and y (N,) in {-1, +1} from an .npz with arrays x and y (y in {0, 1} or {-1, +1})."""
    p = Path(path)
    if p.suffix != ".npz" or not p.is_file():
        raise ValueError(f"reference must be an existing .npz file with arrays x, y; got {str(path)!r}")
    x, y = load_npz_xy(p, who="reference")
    x = x.astype(np.float64)
    if np.isin(y, (0, 1)).all():
        y = 2 * y.astype(np.int64) - 1
    if not np.isin(y, (-1, 1)).all():
        raise ValueError(f"reference {p}: y must hold labels in {{0, 1}} or {{-1, +1}}")
    return x, y.astype(np.int64)


NOT_AFFINE = ("model is not an exact affine module (nn.Linear, or nn.Sequential of nn.Linear/Flatten/Identity, no "
              "subclasses, hooks or TorchScript): an LBRS certificate needs lipschitz=L (CLI --lipschitz; Theorem 8, "
              "ReLU networks have none), or linear=True if you know the model is affine")


@register
class LocallyBiasedCertifier(Certifier):
    """LBRS (Anderson & Sojoudi) on a binary model: closed-form radius in ``threat_norm`` (l1, l2 or linf)."""

    name = "lbrs"
    norm = "l2"

    def __init__(self, reference: str | Path | tuple[Any, Any], bias: float, threat_norm: str = "l2",
                 lipschitz: float | None = None, model: Any = None, device: Any = "cpu",
                 linear: bool | None = None) -> None:
        ref_x, ref_y = load_reference(reference) if isinstance(reference, (str, Path)) else reference
        # validates bias, norm, lipschitz and the reference set once, before any input is read
        self._probe = LocallyBiasedSmoothing(TorchScore(torch.nn.Identity(), linear=True), np.asarray(ref_x),
                                             np.asarray(ref_y), bias, threat_norm, lipschitz)
        self.ref_x, self.ref_y = np.asarray(ref_x, dtype=np.float64), np.asarray(ref_y)
        self.bias, self.norm, self.lipschitz = float(bias), threat_norm, lipschitz
        self.model, self.device = model, device
        self.linear = None if linear is None else bool(linear)
        if model is not None and lipschitz is None and not self.is_linear(model):
            raise ValueError(NOT_AFFINE)

    def base_classifier(self) -> BaseClassifier | None:
        """The score model given to the constructor (CLI: --score-model), as a 2-class classifier."""
        return None if self.model is None else BaseClassifier(self.model, 2, device=self.device)

    def is_linear(self, model: Any) -> bool:
        """The user's ``linear=`` when given, else ``is_affine(model)`` (exact affine modules only)."""
        return is_affine(model) if self.linear is None else self.linear

    def smoother(self, model: Any, input_shape: tuple[int, ...], device: Any = "cpu") -> LocallyBiasedSmoothing:
        linear = self.is_linear(model)
        if not linear and self.lipschitz is None:
            raise ValueError(NOT_AFFINE)
        return LocallyBiasedSmoothing(TorchScore(model, input_shape, device, linear=linear), self.ref_x, self.ref_y,
                                      self.bias, self.norm, self.lipschitz)

    def validate_inputs(self, x: torch.Tensor) -> None:
        """Inputs must have as many features as the reference points (the CLI checks before writing)."""
        x = as_batch(x, who=f"{type(self).__name__}: x")
        if int(np.prod(tuple(x.shape[1:]))) != self.ref_x.reshape(len(self.ref_x), -1).shape[1]:
            shape = ", ".join(map(str, self.ref_x.shape[1:]))
            raise ValueError(f"{type(self).__name__}: x must have shape (N, {shape}) like the reference set, got "
                             f"{tuple(x.shape)}")

    def certify(self, classifier: Any, x: torch.Tensor) -> list[Certificate]:
        """``classifier``: a BaseClassifier (its ``model``) or an nn.Module; x (N, *input_shape)."""
        model = getattr(classifier, "model", classifier)
        device = getattr(classifier, "device", "cpu")
        x = as_batch(x, who=f"{type(self).__name__}: x")
        self.validate_inputs(x)
        res = self.smoother(model, tuple(x.shape[1:]), device).certify(x.detach().cpu().numpy())
        return [Certificate(prediction=int(lab > 0), radius=float(r), norm=self.norm)
                for lab, r in zip(res.label, res.radius)]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--score-model", required=True,
                            help="binary model: TorchScript file or package.module:factory, x -> logits (B, 2) "
                                 "(g = logit1 - logit0) or scores (B,)")
        parser.add_argument("--score-weights", default=None, help="state dict for a module:factory --score-model")
        parser.add_argument("--reference", required=True,
                            help=".npz with x (N, ...) and y (N,) in {0,1}: the stored 1-NN reference set, disjoint "
                                 "from the model's training data")
        parser.add_argument("--bias", type=float, required=True, help="bias level alpha >= 0 of LBRS")
        parser.add_argument("--threat-norm", choices=NORMS, default="l2",
                            help="norm of the certified radius (default l2); the 1-NN metric is always l2")
        parser.add_argument("--lipschitz", type=float, default=None,
                            help="gradient-Lipschitz constant L of the score (Theorem 8); required unless the model "
                                 "is affine")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> LocallyBiasedCertifier:
        if args.model is not None:
            raise ValueError("--method lbrs takes --score-model, not --model")
        device = resolve_device(args.device)
        model = load_model(args.score_model, args.score_weights, device, who="--score-model",
                           weights_who="--score-weights")
        return cls(args.reference, args.bias, args.threat_norm, args.lipschitz, model=model, device=device)
