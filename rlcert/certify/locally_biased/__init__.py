"""Locally biased randomized smoothing (Anderson & Sojoudi): binary classifiers, closed-form radii in l1/l2/linf."""

from rlcert.certify.locally_biased.lbrs import (
    NORMS,
    LBRSResult,
    LinearScore,
    LocallyBiasedSmoothing,
    TorchScore,
    data_radius,
    dual_norm,
    is_affine,
    linear_base_radius,
    nearest_reference,
    nonlinear_base_radius,
    primal_norm,
)

__all__ = ["NORMS", "LBRSResult", "LinearScore", "LocallyBiasedSmoothing", "TorchScore", "data_radius", "dual_norm",
           "is_affine", "linear_base_radius", "nearest_reference", "nonlinear_base_radius", "primal_norm"]
