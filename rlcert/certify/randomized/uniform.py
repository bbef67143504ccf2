"""Uniform additive smoothing, l1 certificate (Lee et al. 2019 / Yang et al. 2020; thesis Ch. 3 baseline).

``UniformNoise``: eps_i i.i.d. U[-lambd, lambd] on x of any shape (**independent** components are required:
thesis Prop. 3.1). ``lambd`` is the half-width; ``sigma`` the standard deviation, lambd = sqrt(3) sigma (Yang et
al.'s parameterisation). CLI: ``--sigma`` or ``--lambda``. The smoothed probabilities are 1/(2 lambd)-Lipschitz
in l1 (Theorem 3.1), so R = 2 lambd (p_lower - 1/2) with p_B := 1 - p_lower, or R = lambd (p_lower - p_upper)
with ``two_bound``; the threat model is ||delta||_1 < R.
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


def lipschitz_l1_radius(p_lower, lambd: float):
    """2 lambd (p_lower - 1/2): l1 radius of a 1/(2 lambd)-Lipschitz smoothed classifier (uniform, SSN); ABSTAIN
    (-1) where p_lower <= 1/2."""
    p = np.asarray(p_lower, dtype=np.float64)
    return radius_or_abstain(2.0 * lambd * (p - 0.5), p)


def lipschitz_l1_radius_two_bound(p_lower, p_upper, lambd: float):
    """lambd (p_lower - p_upper): gap / (2 L) with L = 1/(2 lambd) (thesis Eq. 3.2); ABSTAIN (-1) where
    p_lower <= p_upper."""
    pa, pb = np.asarray(p_lower, dtype=np.float64), np.asarray(p_upper, dtype=np.float64)
    return radius_or_abstain(lambd * (pa - pb), pa, pb)


class LipschitzL1Noise(Noise):
    """Parameterisation (half-width lambd = sqrt(3) sigma) and certificate of the 1/(2 lambd)-Lipschitz l1
    noises (uniform, SSN)."""

    norm = "l1"
    lambda_per_sigma = math.sqrt(3.0)
    lambda_meaning = "half-width"

    def radius(self, p_lower: np.ndarray) -> np.ndarray:
        return lipschitz_l1_radius(p_lower, self.lambd)

    def radius_two_bound(self, p_lower: np.ndarray, p_upper: np.ndarray) -> np.ndarray:
        return lipschitz_l1_radius_two_bound(p_lower, p_upper, self.lambd)


@register_noise
class UniformNoise(LipschitzL1Noise):
    """Additive U[-lambd, lambd]^d -> l1 radius 2 lambd (p_lower - 1/2)."""

    name = "uniform"
    additive = True

    def perturb_(self, out: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None) -> None:
        out.uniform_(-self.lambd, self.lambd, generator=generator).add_(x)


class LipschitzL1Certifier(SmoothingCertifier):
    """CERTIFY/PREDICT with a half-width-``lambd`` noise (``noise_class``; ``sigma`` = lambd / sqrt 3)."""

    norm = "l1"
    lambda_flag = ("--lambda", "noise half-width lambda (sigma = lambda / sqrt(3))")

    def __init__(self, lambd: float | None = None, sigma: float | None = None, **sampling) -> None:
        super().__init__(noise=self.noise_class(sigma=sigma, lambd=lambd), **sampling)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> LipschitzL1Certifier:
        sigma, lambd = cls.noise_scale(args)
        return cls(lambd=lambd, sigma=sigma, **cls.sampling_kwargs(args))


@register
class UniformCertifier(LipschitzL1Certifier):
    """CERTIFY/PREDICT with ``UniformNoise`` -> l1 radius 2 lambd (p_lower - 1/2)."""

    name = "uniform"
    noise_class = UniformNoise
