"""CERTIFY for adaptive Gaussian pipelines: Cohen's Monte-Carlo protocol with the composed noise level.

A pipeline is any object with ``noise_sigmas() -> tuple`` (one level per Gaussian step), ``num_classes``,
``norm`` ("linf" or "l2") and ``pipeline(queries: GaussianQueries) -> logits (m, K) or labels (m,)``: e.g.
``ARSModel``, ``StaticMaskModel``, ``VanillaSmoothingModel`` or ``AdaptivePipeline(fn, sigmas, K)`` around a
user function. Selection (n0) and fresh estimation (n) draws, the one-sided Clopper-Pearson bound and the
abstain rule are the core's (``SmoothingCertifier.certificates_from_counts``); the radius is
``adaptive_radius(p_lower, sigmas, dim=d)``: sigma_eff Phi^-1(p_lower) (/ sqrt(d) for linf, d = x[0].numel()).
Guarantee: with probability >= 1 - alpha over the sampling, the smoothed pipeline (majority vote of full runs)
returns the certified class for every x + delta with ||delta|| < radius in the pipeline's norm.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rlcert.certify.adaptive.ars import AVERAGING, ARSModel
from rlcert.certify.adaptive.composition import adaptive_radius, effective_sigma, split_sigma2
from rlcert.certify.adaptive.queries import GaussianQueries
from rlcert.certify.core.certificate import Certificate
from rlcert.certify.core.checks import check_count, check_positive
from rlcert.certify.core.classifier import model_dtype
from rlcert.certify.core.precision import with_precision
from rlcert.certify.core.registry import register
from rlcert.certify.core.sampling import _chunks
from rlcert.certify.core.smoothing import CERTIFY_STREAM, SmoothingCertifier, check_inputs
from rlcert.certify.io import load_model, resolve_device


class AdaptiveCertifier(SmoothingCertifier):
    """Certify adaptive Gaussian pipelines (ARS and its baselines) with the core's CERTIFY statistics."""

    name = "ars"
    norm = "linf"

    def __init__(self, **sampling: Any) -> None:
        super().__init__(**sampling)
        self._sigmas: tuple[float, ...] = ()
        self._dim: int | None = None

    def perturb_(self, out: torch.Tensor, x: torch.Tensor, generator: torch.Generator) -> None:
        raise TypeError("adaptive pipelines draw their own noise through GaussianQueries (see sample())")

    def radius(self, p_lower: np.ndarray) -> np.ndarray:
        return adaptive_radius(p_lower, self._sigmas, dim=self._dim)

    def radius_two_bound(self, p_lower: np.ndarray, p_upper: np.ndarray) -> np.ndarray:
        return adaptive_radius(p_lower, self._sigmas, p_upper=p_upper, dim=self._dim)

    @torch.no_grad()
    def pipeline_counts(self, model: Any, x: torch.Tensor, num: int, generators: Sequence[torch.Generator],
                        sigmas: Sequence[float]) -> np.ndarray:
        """Vote counts (N, K) of ``num`` independent full pipeline runs per input of x (N, *shape)."""
        k = int(model.num_classes)
        counts = np.zeros((x.shape[0], k), dtype=np.int64)
        for i in range(x.shape[0]):
            for m in _chunks(num, self.batch):
                xs = x[i:i + 1].expand(m, *x.shape[1:])
                out = model.pipeline(GaussianQueries(xs, sigmas, model.norm, generators[i]))
                labels = out.argmax(1) if out.ndim == 2 else out.long()
                if bool(((labels < 0) | (labels >= k)).any()):
                    raise ValueError(f"the pipeline returned labels outside [0, {k}); check num_classes")
                counts[i] += torch.bincount(labels, minlength=k).cpu().numpy()
        return counts

    @staticmethod
    def _prepare(model: Any, x: Any) -> tuple[torch.Tensor, tuple[float, ...]]:
        device = next((p.device for p in model.parameters()), torch.device("cpu")) \
            if isinstance(model, torch.nn.Module) else torch.device("cpu")
        x = check_inputs(x, device, method=type(model).__name__, dtype=model_dtype(model))
        sigmas = tuple(float(s) for s in model.noise_sigmas())
        effective_sigma(sigmas)  # validates
        if model.norm not in ("linf", "l2"):
            raise ValueError(f"pipeline norm must be 'linf' or 'l2', got {model.norm!r}")
        return x, sigmas

    def sample(self, model: Any, x: torch.Tensor, num: int, seeds: Sequence[int] | None = None,
               stream: int = CERTIFY_STREAM, generators: list[torch.Generator] | None = None) -> np.ndarray:
        """Counts (N, K) of ``num`` full pipeline runs per input (used by PREDICT); model in eval mode meanwhile."""
        x, sigmas = self._prepare(model, x)
        if generators is None:
            generators = self._generators(x.shape[0], seeds, stream, x.device)
        was = getattr(model, "training", False)
        if isinstance(model, torch.nn.Module):
            model.eval()
        try:
            return self.pipeline_counts(model, x, check_count(num, "num"), generators, sigmas)
        finally:
            if was:
                model.train()

    def certify(self, model: Any, x: torch.Tensor, seeds: Sequence[int] | None = None) -> list[Certificate]:
        """CERTIFY each input of x (N, *shape) against ``model``'s norm; ``model`` is put in eval mode meanwhile."""
        x, sigmas = self._prepare(model, x)
        gens = self._generators(x.shape[0], seeds, CERTIFY_STREAM, x.device)
        counts0 = self.sample(model, x, self.n0, generators=gens)          # selection
        counts = self.sample(model, x, self.n, generators=gens)            # fresh estimation (same streams, new draws)
        self._sigmas, self._dim = sigmas, (int(x[0].numel()) if model.norm == "linf" else None)
        certs = self.certificates_from_counts(counts0.argmax(axis=1), counts)
        return [Certificate(c.prediction, c.radius, model.norm, c.p_lower, c.counts, c.p_upper) for c in certs]

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> AdaptiveCertifier:
        return cls(**cls.sampling_kwargs(args))


@register
class ARSCertifier(AdaptiveCertifier):
    """``--method ars``: two-step l-infinity ARS from two models, ``--base-model`` (x_hat -> logits (B, K)) and
    ``--mask-model`` (m1 -> mask logits of the input's shape, or values in [0, 1] with ``--mask-activation
    none``), at total noise ``--sigma`` with ``--sigma1`` (> sigma; the frozen value of a learned sigma1)."""

    name = "ars"
    norm = "linf"

    def __init__(self, sigma: float, sigma1: float, base_model: Any = None, mask_model: Any = None,
                 num_classes: int | None = None, averaging: str = "variance_consistent",
                 mask_activation: str = "sigmoid", **sampling: Any) -> None:
        super().__init__(**sampling)
        self.total_sigma = check_positive(sigma, "sigma")
        split_sigma2(self.total_sigma, sigma1)   # sigma1 > sigma
        if averaging not in AVERAGING:
            raise ValueError(f"averaging must be one of {AVERAGING}, got {averaging!r}")
        self.sigma1, self.averaging, self.mask_activation = float(sigma1), averaging, mask_activation
        self.base_model, self.mask_model, self.num_classes = base_model, mask_model, num_classes

    def base_classifier(self) -> ARSModel | None:
        if self.base_model is None or self.mask_model is None:
            return None
        if self.num_classes is None:
            raise ValueError("num_classes is required for ARSCertifier (number of logits of base_model; CLI "
                             "--num-classes)")
        return ARSModel(self.mask_model, self.base_model, self.total_sigma,
                        check_count(self.num_classes, "num_classes", 2),
                        sigma1=self.sigma1, averaging=self.averaging, mask_activation=self.mask_activation).eval()

    @property
    def sigma(self) -> float:
        """The total noise level sigma (1/sigma1^2 + 1/sigma2^2 = 1/sigma^2)."""
        return self.total_sigma

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--sigma", type=float, default=None,
                            help="total noise standard deviation sigma per coordinate (1/sigma1^2 + 1/sigma2^2 = "
                                 "1/sigma^2; the radius is Gaussian smoothing's at sigma, divided by sqrt(d))")
        super().add_arguments(parser)
        parser.add_argument("--base-model", required=True,
                            help="classifier on the averaged input: TorchScript file or package.module:factory")
        parser.add_argument("--base-weights", default=None, help="state dict for a module:factory --base-model")
        parser.add_argument("--mask-model", required=True,
                            help="mask network on m1 = x + sigma1 z: TorchScript file or package.module:factory")
        parser.add_argument("--mask-weights", default=None, help="state dict for a module:factory --mask-model")
        parser.add_argument("--sigma1", type=float, required=True,
                            help="first-step noise (> --sigma); sigma2 follows from 1/s1^2 + 1/s2^2 = 1/sigma^2")
        parser.add_argument("--averaging", choices=AVERAGING, default="variance_consistent",
                            help="x_hat weights: variance_consistent (default) or as_printed (the paper's formula)")
        parser.add_argument("--mask-activation", choices=("sigmoid", "none"), default="sigmoid",
                            help="sigmoid on the mask model's output (default) or none (outputs already in [0, 1])")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> ARSCertifier:
        if getattr(args, "sigma", None) is None:
            raise ValueError("--sigma (total noise level) is required for --method ars")
        if args.model is not None:
            raise ValueError("--method ars takes --base-model and --mask-model, not --model")
        device = resolve_device(args.device)
        precision, channels_last = getattr(args, "precision", "fp32"), getattr(args, "channels_last", False)
        base = with_precision(load_model(args.base_model, args.base_weights, device, who="--base-model",
                                         weights_who="--base-weights"), precision, channels_last)  # fp32 outputs
        mask = with_precision(load_model(args.mask_model, args.mask_weights, device, who="--mask-model",
                                         weights_who="--mask-weights"), precision, channels_last)
        return cls(args.sigma, args.sigma1, base, mask, args.num_classes, args.averaging, args.mask_activation,
                   **cls.sampling_kwargs(args))
