"""Adaptive randomized smoothing (Shaikh et al.): k-step adaptive Gaussian pipelines and two-step l-infinity ARS."""

from rlcert.certify.adaptive.ars import (
    AVERAGING,
    AdaptivePipeline,
    ARSModel,
    StaticMaskModel,
    VanillaSmoothingModel,
    averaging_coefficients,
)
from rlcert.certify.adaptive.certifier import AdaptiveCertifier
from rlcert.certify.adaptive.composition import (
    adaptive_radius,
    composed_mu,
    effective_sigma,
    gaussian_tradeoff,
    split_sigma2,
)
from rlcert.certify.adaptive.queries import GaussianQueries

__all__ = ["AVERAGING", "ARSModel", "AdaptiveCertifier", "AdaptivePipeline", "GaussianQueries", "StaticMaskModel",
           "VanillaSmoothingModel", "adaptive_radius", "averaging_coefficients", "composed_mu", "effective_sigma",
           "gaussian_tradeoff", "split_sigma2"]
