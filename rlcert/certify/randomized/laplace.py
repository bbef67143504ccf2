"""Laplace smoothing, tight l1 certificate (Teng, Lee, Yuan 2020; seed 002).

``LaplaceNoise``: eps_i i.i.d. Laplace(0, lambd) with density exp(-|e|/lambd) / (2 lambd), on x of any shape.
``lambd`` is the **scale**, not the standard deviation: std = sqrt(2) * lambd, i.e. built from ``sigma`` (std, for
comparisons with Gaussian noise at equal variance) as lambd = sigma / sqrt(2). CLI: ``--sigma`` or ``--scale``.

Certificates (threat model ||delta||_1 <= R):
* ``bound="tight"`` (default, Theorem 2; valid for any number of classes via Theorem 1 with p_B := 1 - p_lower):
  R = -lambd * log(2 (1 - p_lower)). Tight for two classes (Theorem 3: a half-space classifier attains it).
* ``bound="lecuyer"`` (differential-privacy baseline): R = lambd/2 * log(p_lower / (1 - p_lower)).
* ``two_bound``: Theorem 1, R = max(lambd/2 log(p_lower/p_upper), -lambd log(1 - p_lower + p_upper)).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from rlcert.certify.core.certificate import radius_or_abstain
from rlcert.certify.core.registry import register
from rlcert.certify.core.smoothing import SmoothingCertifier
from rlcert.certify.randomized.noise import Noise, register_noise

LAPLACE_BOUNDS = ("tight", "lecuyer")


def laplace_radius(p_lower, lambd: float):
    """-lambd * log(2 (1 - p_lower)): tight l1 radius for p_lower > 1/2 (Theorem 2); ABSTAIN (-1) otherwise."""
    p = np.asarray(p_lower, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return radius_or_abstain(-lambd * np.log(2.0 * (1.0 - p)), p)


def lecuyer_radius(p_lower, lambd: float):
    """lambd/2 * log(p_lower / (1 - p_lower)): Lecuyer et al.'s DP bound (binary form); ABSTAIN (-1) where
    p_lower <= 1/2."""
    p = np.asarray(p_lower, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return radius_or_abstain(0.5 * lambd * np.log(p / (1.0 - p)), p)


def laplace_radius_two_bound(p_lower, p_upper, lambd: float):
    """Theorem 1: max(lambd/2 log(p_lower/p_upper), -lambd log(1 - p_lower + p_upper)); ABSTAIN (-1) where
    p_lower <= p_upper."""
    pa, pb = np.asarray(p_lower, dtype=np.float64), np.asarray(p_upper, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.maximum(0.5 * lambd * np.log(pa / pb), -lambd * np.log(1.0 - pa + pb))
    return radius_or_abstain(r, pa, pb)


@register_noise
class LaplaceNoise(Noise):
    """i.i.d. Laplace(0, lambd) -> l1 radius -lambd log(2 (1 - p_lower)) (or Lecuyer's bound)."""

    name = "laplace"
    norm = "l1"
    lambda_per_sigma = 1.0 / math.sqrt(2.0)
    lambda_meaning = "scale: density exp(-|e|/lambd) / (2 lambd)"
    additive = True

    def __init__(self, sigma: float | None = None, lambd: float | None = None, bound: str = "tight") -> None:
        super().__init__(sigma=sigma, lambd=lambd)
        if bound not in LAPLACE_BOUNDS:
            raise ValueError(f"bound must be one of {LAPLACE_BOUNDS}, got {bound!r}")
        self.bound = bound

    def perturb_(self, out: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None) -> None:
        # One uniform u in [0, 1) per coordinate: the sign is sign(u - 1/2), and w = frac(2u) is uniform in [0, 1)
        # and independent of it, so -log(1 - w) ~ Exp(1) (finite since w < 1); sign * lambd * Exp(1) ~ Laplace.
        # (u = 1/2 gives sign 0 but also w = 0, i.e. noise 0 either way.) In-place ops, one temporary.
        u = out.uniform_(0.0, 1.0, generator=generator)
        sign = (u - 0.5).sign_()
        u.mul_(2.0).frac_().neg_().log1p_().mul_(sign).mul_(-self.lambd).add_(x)

    def radius(self, p_lower: np.ndarray) -> np.ndarray:
        if self.bound == "lecuyer":
            return lecuyer_radius(p_lower, self.lambd)
        return laplace_radius(p_lower, self.lambd)

    def radius_two_bound(self, p_lower: np.ndarray, p_upper: np.ndarray) -> np.ndarray:
        return laplace_radius_two_bound(p_lower, p_upper, self.lambd)


@register
class LaplaceCertifier(SmoothingCertifier):
    """CERTIFY/PREDICT with ``LaplaceNoise`` (scale ``lambd``, or ``sigma`` = std)."""

    name = "laplace"
    norm = "l1"
    noise_class = LaplaceNoise
    lambda_flag = ("--scale", "Laplace scale lambda (density exp(-|e|/lambda)/(2 lambda), std = sqrt(2) lambda)")
    renamed_flags = {"--lambda": "--scale"}  # --lambda is a half-width in every method that has it

    def __init__(self, lambd: float | None = None, sigma: float | None = None, bound: str = "tight",
                 **sampling) -> None:
        super().__init__(noise=LaplaceNoise(sigma=sigma, lambd=lambd, bound=bound), **sampling)

    @property
    def bound(self) -> str:
        return self.noise.bound

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--bound", choices=LAPLACE_BOUNDS, default="tight",
                            help="tight (Teng et al., default) or lecuyer (DP baseline)")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> LaplaceCertifier:
        sigma, lambd = cls.noise_scale(args)
        return cls(lambd=lambd, sigma=sigma, bound=args.bound, **cls.sampling_kwargs(args))
