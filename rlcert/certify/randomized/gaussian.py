"""Gaussian smoothing, l2 certificate (Cohen et al. 2019).

``GaussianNoise``: eps ~ N(0, sigma^2 I) added to x of any shape (lambd = sigma: the std is its own parameter).
Certificate: R = sigma * Phi^-1(p_lower) (p_B := 1 - p_lower), or with ``two_bound``
R = sigma/2 * (Phi^-1(p_lower) - Phi^-1(p_upper)); the threat model is ||delta||_2 < R, in the units of the
input the noise is added to (pixels in [0, 1] for images: put any normalisation inside the model).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.stats import norm as normal

from rlcert.certify.core.certificate import radius_or_abstain
from rlcert.certify.core.registry import register
from rlcert.certify.core.smoothing import SmoothingCertifier
from rlcert.certify.randomized.noise import Noise, register_noise


def gaussian_radius(p_lower, sigma: float):
    """sigma * Phi^-1(p_lower): the l2 radius for a lower bound p_lower > 1/2 on p_A; ABSTAIN (-1) where
    p_lower <= 1/2 (``radius_or_abstain``)."""
    return radius_or_abstain(sigma * normal.ppf(p_lower), p_lower)


def gaussian_radius_two_bound(p_lower, p_upper, sigma: float):
    """sigma/2 * (Phi^-1(p_lower) - Phi^-1(p_upper)) (lecture's general multiclass form); ABSTAIN (-1) where
    p_lower <= p_upper."""
    return radius_or_abstain(0.5 * sigma * (normal.ppf(p_lower) - normal.ppf(p_upper)), p_lower, p_upper)


@register_noise
class GaussianNoise(Noise):
    """N(0, sigma^2 I) -> l2 radius sigma Phi^-1(p_lower)."""

    name = "gaussian"
    norm = "l2"
    lambda_per_sigma = 1.0
    lambda_meaning = "standard deviation"
    additive = True

    def perturb_(self, out: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None) -> None:
        out.normal_(0.0, self.sigma, generator=generator).add_(x)

    def radius(self, p_lower: np.ndarray) -> np.ndarray:
        return gaussian_radius(p_lower, self.sigma)

    def radius_two_bound(self, p_lower: np.ndarray, p_upper: np.ndarray) -> np.ndarray:
        return gaussian_radius_two_bound(p_lower, p_upper, self.sigma)


@register
class GaussianCertifier(SmoothingCertifier):
    """CERTIFY/PREDICT with ``GaussianNoise(sigma)``."""

    name = "gaussian"
    norm = "l2"
    noise_class = GaussianNoise

    def __init__(self, sigma: float, **sampling) -> None:
        super().__init__(noise=GaussianNoise(sigma=sigma), **sampling)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> GaussianCertifier:
        sigma, _ = cls.noise_scale(args)
        return cls(sigma=sigma, **cls.sampling_kwargs(args))
