"""Wasserstein smoothing (Levine & Feizi 2020; thesis Ch. 5): certified robustness to Wasserstein (mass-moving) attacks.

Threat model: images x (C, H, W) with non-negative intensities, seen as mass distributions normalised by their
total mass M = sum(x) (all channels). An attack x~ keeps each channel's total mass and moves mass within channels;
its size is the 1-Wasserstein distance W1(x / M, x~ / M) with the l2 ground metric between pixel positions
(``ground="l1"``: the l1 / Manhattan ground metric). Radii are in normalised-mass units (total mass 1).

Local flows (Def. 5.2): delta = (vertical (C, H-1, W), horizontal (C, H, W-1)); vertical[i, j] moves mass from pixel
(i, j) down to (i+1, j), horizontal[i, j] from (i, j) right to (i, j+1), zero flow across the border:

    Delta(x, delta)[i, j] = x[i, j] + vertical[i-1, j] - vertical[i, j] + horizontal[i, j-1] - horizontal[i, j].

It preserves mass, is additive, and min ||delta||_1 over delta with x' = Delta(x, delta) equals W1 with the l1
ground metric (Lemma 5.1).

Noise (``LaplaceFlowNoise``, ``domain="flow"``): i.i.d. Laplace flows of **standard deviation** sigma (scale
b = sigma / sqrt 2), per channel, applied to the normalised image and rescaled:
x' = M * Delta(x / M, delta) = x + M * Delta(0, delta).
Certificate (Theorem 5.1 with p_B := 1 - p_lower, Eq. 5.18-5.20):

    rho_1 = sigma / (2 sqrt 2) * ln(p_lower / (1 - p_lower))     (l1 ground metric)
    rho_2 = rho_1 / sqrt 2 = sigma / 4 * ln(p_lower / (1 - p_lower))  (l2 ground metric; the thesis' reported radius)

Baseline (``domain="pixel"``, Eq. 5.21): i.i.d. Laplace noise of std sigma on every pixel of the normalised image;
Lecuyer's l1 certificate b/2 ln(p/(1-p)) converted with W1 <= r/2 => ||x - x'||_1 <= r (Cor. D.1, any ground
metric): rho = sigma / (4 sqrt 2) * ln(p_lower / (1 - p_lower)), on the same axis as rho_2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rlcert.certify.core.certificate import Certificate, radius_or_abstain
from rlcert.certify.core.checks import check_positive
from rlcert.certify.core.registry import register
from rlcert.certify.core.smoothing import CERTIFY_STREAM, SmoothingCertifier, check_inputs
from rlcert.certify.randomized.noise import Noise, register_noise

__all__ = ["FLOW_DOMAINS", "GROUND_METRICS", "LaplaceFlowNoise", "WassersteinCertifier", "apply_flow",
           "apply_flow_", "laplace_pixel_wasserstein_radius", "wasserstein_radius"]

FLOW_DOMAINS = ("flow", "pixel")
GROUND_METRICS = ("l2", "l1")
SQRT2 = math.sqrt(2.0)


# ---- pure math -------------------------------------------------------------------------------------------------
def _log_odds(p) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p) - np.log1p(-p)


def _check_ground(ground: str) -> None:
    if ground not in GROUND_METRICS:
        raise ValueError(f"ground must be one of {GROUND_METRICS}, got {ground!r}")


def wasserstein_radius(p_lower, sigma: float, ground: str = "l2") -> np.ndarray:
    """Wasserstein-smoothing radius for p_lower > 1/2 (flow noise of std sigma; normalised-mass units).

    ground="l2": sigma/4 ln(p/(1-p)) (Eq. 5.20); ground="l1": sigma/(2 sqrt 2) ln(p/(1-p)) (Eq. 5.18).
    ABSTAIN (-1) where p_lower <= 1/2 (``radius_or_abstain``: no certificate, never a negative radius)."""
    sigma = check_positive(sigma, "sigma")
    _check_ground(ground)
    r1 = sigma / (2.0 * SQRT2) * _log_odds(p_lower)
    return radius_or_abstain(r1 / SQRT2 if ground == "l2" else r1, p_lower)


def wasserstein_radius_two_bound(p_lower, p_upper, sigma: float, ground: str = "l2") -> np.ndarray:
    """Theorem 5.1 with separate bounds: rho_1 = sigma/(2 sqrt 2) ln(p_lower / p_upper) (rho_2 = rho_1 / sqrt 2);
    ABSTAIN (-1) where p_lower <= p_upper."""
    sigma = check_positive(sigma, "sigma")
    _check_ground(ground)
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = sigma / (2.0 * SQRT2) * np.log(np.asarray(p_lower, dtype=np.float64) / np.asarray(p_upper, np.float64))
    return radius_or_abstain(r1 / SQRT2 if ground == "l2" else r1, p_lower, p_upper)


def laplace_pixel_wasserstein_radius(p_lower, sigma: float) -> np.ndarray:
    """Wasserstein radius certified by Laplace **pixel** noise of std sigma on the normalised image (Eq. 5.21):
    sigma/(4 sqrt 2) ln(p/(1-p)), valid for the l1 and the l2 ground metric alike (Cor. D.1); ABSTAIN (-1) where
    p_lower <= 1/2."""
    sigma = check_positive(sigma, "sigma")
    return radius_or_abstain(sigma / (4.0 * SQRT2) * _log_odds(p_lower), p_lower)


def laplace_pixel_wasserstein_radius_two_bound(p_lower, p_upper, sigma: float) -> np.ndarray:
    """Eq. 5.21 with separate bounds: sigma/(4 sqrt 2) ln(p_lower / p_upper); ABSTAIN (-1) where p_lower <= p_upper."""
    sigma = check_positive(sigma, "sigma")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = sigma / (4.0 * SQRT2) * np.log(np.asarray(p_lower, np.float64) / np.asarray(p_upper, np.float64))
    return radius_or_abstain(r, p_lower, p_upper)


def apply_flow_(x: torch.Tensor, vertical: torch.Tensor, horizontal: torch.Tensor) -> torch.Tensor:
    """In place: x <- Delta(x, (vertical, horizontal)) (Def. 5.2). x (..., H, W), vertical (..., H-1, W),
    horizontal (..., H, W-1) (broadcast over leading axes). Returns x."""
    h, w = x.shape[-2:]
    if vertical.shape[-2:] != (h - 1, w) or horizontal.shape[-2:] != (h, w - 1):
        raise ValueError(f"flows for an image of size {h}x{w} must have shapes (..., {h - 1}, {w}) and "
                         f"(..., {h}, {w - 1}), got {tuple(vertical.shape)} and {tuple(horizontal.shape)}")
    x[..., 1:, :] += vertical
    x[..., :-1, :] -= vertical
    x[..., :, 1:] += horizontal
    x[..., :, :-1] -= horizontal
    return x


def apply_flow(x: torch.Tensor, vertical: torch.Tensor, horizontal: torch.Tensor) -> torch.Tensor:
    """Delta(x, delta) (Def. 5.2) as a new tensor; see ``apply_flow_``."""
    shape = torch.broadcast_shapes(x.shape, (*vertical.shape[:-2], *x.shape[-2:]),
                                   (*horizontal.shape[:-2], *x.shape[-2:]))
    dtype = torch.promote_types(x.dtype, torch.promote_types(vertical.dtype, horizontal.dtype))
    return apply_flow_(x.to(dtype).expand(shape).clone(), vertical, horizontal)


def standard_laplace(shape: Sequence[int], generator: torch.Generator | None, device: torch.device | str,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """i.i.d. Laplace(0, 1) (scale 1, std sqrt 2) of the given shape, from one uniform u in [0, 1) per entry:
    w = frac(2u) is uniform on [0, 1) and independent of the sign [u >= 1/2], so |log1p(-w)| ~ Exp(1) (finite since
    w < 1) and copysign(log1p(-w), u - 1/2) ~ Laplace(0, 1) (copysign keeps the magnitude only)."""
    u = torch.empty(tuple(shape), device=device, dtype=dtype).uniform_(0.0, 1.0, generator=generator)
    e = torch.mul(u, -2.0).frac_().log1p_()  # frac(-2u) = -frac(2u): log1p(-w)
    return torch.copysign(e, u.sub_(0.5), out=e)


# ---- the noise object ------------------------------------------------------------------------------------------
@register_noise
class LaplaceFlowNoise(Noise):
    """Laplace noise of standard deviation ``sigma`` (scale ``lambd`` = sigma / sqrt 2) in the local-flow domain
    (``domain="flow"``) or on the pixels (``domain="pixel"``, the Eq. 5.21 baseline) of the mass-normalised image,
    rescaled to the image's mass; its certificate is the W1 radius for the ``ground`` metric.

    Inputs (N, C, H, W) with non-negative entries (an image of mass M = 0 is left unchanged). Flows are independent
    per channel (no mass moves between channels, Cor. D.2). Samples may have negative entries (Def. 5.2 footnote).
    ``sample`` draws independently per image; ``augment(..., same_for_batch=True)`` shares one draw per batch.
    """

    name = "wasserstein"
    norm = "wasserstein-l2"  # per instance: "wasserstein-<ground>"
    lambda_per_sigma = 1.0 / SQRT2
    lambda_meaning = "Laplace scale of each flow (or pixel) in normalised-mass units"

    def __init__(self, sigma: float | None = None, lambd: float | None = None, domain: str = "flow",
                 ground: str = "l2") -> None:
        super().__init__(sigma=sigma, lambd=lambd)
        if domain not in FLOW_DOMAINS:
            raise ValueError(f"domain must be one of {FLOW_DOMAINS}, got {domain!r}")
        _check_ground(ground)
        self.domain, self.ground = domain, ground
        self.norm = f"wasserstein-{ground}"

    def __repr__(self) -> str:
        return f"LaplaceFlowNoise(sigma={self.sigma:g}, domain={self.domain!r}, ground={self.ground!r})"

    @property
    def scale(self) -> float:
        """Laplace scale b = sigma / sqrt 2 (std sigma)."""
        return self.lambd

    def check_input(self, x: torch.Tensor, method: str | None = None) -> None:
        """ValueError unless x is (N, C, H, W) with H * W >= 2 and non-negative entries (mass).

        An image of zero mass is left unchanged by the noise (x' = x + 0 * Delta(0, delta)); that is sound, since
        the only non-negative image with the same (zero) mass is x itself."""
        who = method or "wasserstein smoothing"
        if x.ndim != 4 or x.shape[-1] * x.shape[-2] < 2:
            raise ValueError(f"{who} needs images x of shape (N, C, H, W) with H * W >= 2, got {tuple(x.shape)}")
        if x.numel() and float(x.min()) < 0:
            raise ValueError(f"{who} needs non-negative intensities (mass), got min {float(x.min()):g}")

    def draw(self, m: int, shape: Sequence[int], generator: torch.Generator | None, device: torch.device | str,
             dtype: torch.dtype = torch.float32, mass: float = 1.0) -> tuple[torch.Tensor, ...]:
        """m noise draws for inputs of shape (C, H, W), std sigma in normalised-mass units times ``mass``: the
        flows (vertical (m, C, H-1, W), horizontal (m, C, H, W-1)) or the pixel noise ((m, C, H, W),)."""
        c, h, w = shape
        shapes = [(m, c, h - 1, w), (m, c, h, w - 1)] if self.domain == "flow" else [(m, c, h, w)]
        return tuple(standard_laplace(sh, generator, device, dtype).mul_(self.scale * mass) for sh in shapes)

    def add_(self, out: torch.Tensor, noise: Sequence[torch.Tensor]) -> torch.Tensor:
        """out (m, C, H, W) <- out + Delta(0, flows) (or + pixel noise); ``noise`` as returned by ``draw``."""
        if self.domain == "pixel":
            return out.add_(noise[0])
        return apply_flow_(out, noise[0], noise[1])

    def perturb_(self, out: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None) -> None:
        """Fill ``out`` (m, C, H, W) with noisy copies x + M * Delta(0, delta) of one image x (C, H, W), or of each
        image of a batch x (m, C, H, W) (M: each image's own mass)."""
        m = out.shape[0]
        if x.ndim == out.ndim:  # a batch: one draw per image, scaled by its own mass
            noise = self.draw(m, out.shape[1:], generator, out.device, out.dtype)
            mass = x.flatten(1).sum(1).to(out.dtype).view(m, 1, 1, 1)
            noise = [part.mul_(mass) for part in noise]
        else:
            noise = self.draw(m, x.shape, generator, out.device, out.dtype, mass=float(x.sum()))
        out.copy_(x.expand_as(out))
        self.add_(out, noise)

    def augment(self, x: torch.Tensor, generator: torch.Generator | None = None,
                same_for_batch: bool = True) -> torch.Tensor:
        """Training input for a batch x (B, C, H, W): noisy copies, each rescaled to its own image's mass.

        ``same_for_batch=True`` reuses one flow draw for the whole batch (the thesis' training, spec 4.2; as a
        normalised-mass perturbation); False draws independent noise per image (= ``sample``, the certification
        distribution)."""
        self.check_input(x)
        mass = x.flatten(1).sum(1).view(-1, 1, 1, 1)
        noise = self.draw(1 if same_for_batch else x.shape[0], x.shape[1:], generator, x.device, x.dtype)
        return self.add_(x.clone(), [part * mass for part in noise])

    def radius(self, p_lower: np.ndarray) -> np.ndarray:
        if self.domain == "pixel":
            return laplace_pixel_wasserstein_radius(p_lower, self.sigma)
        return wasserstein_radius(p_lower, self.sigma, self.ground)

    def radius_two_bound(self, p_lower: np.ndarray, p_upper: np.ndarray) -> np.ndarray:
        if self.domain == "pixel":
            return laplace_pixel_wasserstein_radius_two_bound(p_lower, p_upper, self.sigma)
        return wasserstein_radius_two_bound(p_lower, p_upper, self.sigma, self.ground)


# ---- the certifier ----------------------------------------------------------------------------------------------
@register
class WassersteinCertifier(SmoothingCertifier):
    """Wasserstein smoothing (flow noise) or its Laplace pixel-noise baseline -> W1 radius in normalised-mass units.

    Guarantee: with probability >= 1 - alpha, the smoothed classifier g(x~) = prediction for every x~ with the same
    per-channel masses as x and W1(x / M, x~ / M) <= radius (ground metric ``ground``; flows never cross channels).
    """

    name = "wasserstein"
    norm = "wasserstein-l2"  # per instance: "wasserstein-<ground>"
    noise_class = LaplaceFlowNoise

    def __init__(self, sigma: float, domain: str = "flow", ground: str = "l2", **sampling: Any) -> None:
        super().__init__(noise=LaplaceFlowNoise(sigma=sigma, domain=domain, ground=ground), **sampling)
        self.norm = self.noise.norm

    @property
    def domain(self) -> str:
        return self.noise.domain

    @property
    def ground(self) -> str:
        return self.noise.ground

    def validate_inputs(self, x: torch.Tensor) -> None:
        """Finite (N, C, H, W) images with non-negative entries (the CLI checks every input before writing)."""
        who = type(self).__name__
        self.noise.check_input(check_inputs(x, torch.device("cpu"), method=who), who)

    def base_input(self, x: torch.Tensor) -> torch.Tensor:
        """The images themselves (checked), so a model is probed on what it will be fed."""
        self.validate_inputs(x)
        return x

    def _checked(self, x: Any, classifier: Any) -> torch.Tensor:
        who = type(self).__name__
        x = check_inputs(x, classifier.device, method=who, dtype=getattr(classifier, "dtype", None))
        self.noise.check_input(x, who)
        return x

    def sample(self, classifier: Any, x: torch.Tensor, num: int, seeds: Sequence[int] | None = None,
               stream: int = CERTIFY_STREAM, generators: list[torch.Generator] | None = None) -> np.ndarray:
        return super().sample(classifier, self._checked(x, classifier), num, seeds, stream, generators)

    def certify(self, classifier: Any, x: torch.Tensor, seeds: Sequence[int] | None = None) -> list[Certificate]:
        return super().certify(classifier, self._checked(x, classifier), seeds)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--noise-domain", choices=FLOW_DOMAINS, default="flow",
                            help="flow: Laplace noise on local flows (Wasserstein smoothing, default); pixel: "
                                 "Laplace noise on pixels, certificate converted by Eq. 5.21 (baseline)")
        parser.add_argument("--ground-metric", choices=GROUND_METRICS, default="l2",
                            help="ground metric between pixel positions for the W1 radius (default l2, the thesis')")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> WassersteinCertifier:
        sigma, _ = cls.noise_scale(args)
        return cls(sigma, domain=args.noise_domain, ground=args.ground_metric, **cls.sampling_kwargs(args))
