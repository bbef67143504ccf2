"""The noise object of randomized smoothing: one class per distribution (as in rs4a), parameterised once.

A ``Noise`` is used twice with the same law: ``sample(x, generator)`` perturbs a training batch (augmentation,
``rlcert.certify.models.digits.train_digits_cnn`` and ``scripts/train_digits.py``), and ``perturb_`` fills the
certifier's Monte Carlo buffers (``rlcert.certify.core.smoothing.SmoothingCertifier``). Its certificate
``radius(p_lower)`` (and ``radius_two_bound(p_lower, p_upper)`` where one exists) is a pure function of
probabilities: no sampling, no model.

Parameters: ``sigma`` is always the per-coordinate standard deviation (the unit in which noises are compared);
``lambd`` is the distribution's own parameter (``lambda_meaning``: Laplace scale, uniform / splitting half-width,
Gaussian std). The conversion ``lambd = sigma * lambda_per_sigma`` is defined here and nowhere else.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np
import torch

from rlcert.certify.core.checks import check_positive

NOISES: dict[str, type[Noise]] = {}


def register_noise(cls: type[Noise]) -> type[Noise]:
    """Class decorator: make ``cls`` available to ``make_noise(cls.name, ...)`` (training scripts)."""
    NOISES[cls.name] = cls
    return cls


def make_noise(name: str, sigma: float | None = None, lambd: float | None = None, **kwargs: Any) -> Noise:
    """The noise called ``name`` ("gaussian", "laplace", "uniform", "ssn", ...) with exactly one of sigma / lambd."""
    from rlcert.certify.core.registry import load_methods

    load_methods()  # the noise modules register themselves on import
    if name not in NOISES:
        raise ValueError(f"noise must be one of {sorted(NOISES)}, got {name!r}")
    return NOISES[name](sigma=sigma, lambd=lambd, **kwargs)


class Noise(abc.ABC):
    """A noise distribution on inputs of any shape, with its certificate.

    Subclasses set ``name``, ``norm`` (threat model of the certificate), ``lambda_per_sigma`` and
    ``lambda_meaning``, and define ``perturb_`` and ``radius``. ``unit_interval = True`` when the noise needs
    inputs in [0, 1] (splitting noise); other noises take any finite float tensor. ``additive = True`` when a
    sample is x + e with e independent of x (Gaussian, Laplace, uniform), so the noise can be restricted to some
    coordinates (``rlcert.certify.policy.noise.MaskedNoise``).
    """

    name: ClassVar[str]
    norm: ClassVar[str]
    lambda_per_sigma: ClassVar[float]
    lambda_meaning: ClassVar[str]
    unit_interval: ClassVar[bool] = False
    additive: ClassVar[bool] = False  # True when perturb_ adds noise independent of x (x + e): maskable

    def __init__(self, sigma: float | None = None, lambd: float | None = None) -> None:
        if (sigma is None) == (lambd is None):
            raise ValueError(f"{self.name} noise: give exactly one of sigma (standard deviation) or lambd "
                             f"({self.lambda_meaning}), got sigma={sigma!r}, lambd={lambd!r}")
        if lambd is not None:
            self.lambd = check_positive(lambd, "lambd")
        else:
            self.lambd = check_positive(sigma, "sigma") * self.lambda_per_sigma

    @property
    def sigma(self) -> float:
        """Per-coordinate standard deviation: lambd / lambda_per_sigma."""
        return self.lambd / self.lambda_per_sigma

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma={self.sigma:g}, lambd={self.lambd:g})"

    # ---- sampling: one law for training and certification ----------------------------------------------------
    @abc.abstractmethod
    def perturb_(self, out: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None) -> None:
        """Fill ``out`` (m, *shape) in place with noisy versions of ``x`` (*shape, or (m, *shape)), drawing from
        ``generator`` (on out's device; None = torch's default generator)."""

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A noisy copy of the batch x (N, *shape), one independent draw per element (training augmentation)."""
        self.check_input(x)
        out = torch.empty_like(x, dtype=x.dtype if x.is_floating_point() else torch.float32)
        self.perturb_(out, x, generator)
        return out

    def check_input(self, x: torch.Tensor, method: str | None = None) -> None:
        """ValueError naming ``method`` (a certifier's name; default the noise's) and the requirement when x does not
        suit the noise (unit_interval)."""
        if self.unit_interval and x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            who = method or f"{self.name} noise"
            raise ValueError(f"{who} needs inputs in [0, 1] (the splitting noise bins [0, 1]); got range "
                             f"[{float(x.min()):g}, {float(x.max()):g}]")

    # ---- certificate: pure functions of probabilities -------------------------------------------------------
    @abc.abstractmethod
    def radius(self, p_lower: np.ndarray) -> np.ndarray:
        """Certified radius (in ``norm``) from a lower bound p_lower on the top-class probability; ABSTAIN (-1) where
        p_lower <= 1/2 (``rlcert.certify.core.certificate.radius_or_abstain``: never a negative radius)."""

    def radius_two_bound(self, p_lower: np.ndarray, p_upper: np.ndarray) -> np.ndarray:
        """Radius from p_lower on the top class and p_upper on every other class; ABSTAIN (-1) where
        p_lower <= p_upper."""
        raise ValueError(f"{self.name} noise has no two-bound certificate")

    @classmethod
    def supports_two_bound(cls) -> bool:
        """True iff the noise defines ``radius_two_bound``."""
        return cls.radius_two_bound is not Noise.radius_two_bound

    @property
    def has_two_bound(self) -> bool:
        return self.supports_two_bound()
