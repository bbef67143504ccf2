"""Two-step ARS for l-infinity (Prop. 2.2) and its two baselines, as pipelines over ``GaussianQueries``.

ARS:   m1 = x + sigma1 z1;  w = mask_net(m1) in [0, 1]^d (sees m1 only);
       m2 = w * x + sigma2 ||w||_2 / sqrt(d) z2;  x_hat = c1 * m1 + c2 * m2;  label = base_net(x_hat).
Total noise sigma: 1/sigma1^2 + 1/sigma2^2 = 1/sigma^2 (sigma1 > sigma fixed, or learned as
sigma1 = sigma + softplus(theta) + 1e-3 sigma), so the l-infinity radius is sigma Phi^-1(p_lower) / sqrt(d) -- the
vanilla radius at the same sigma; ARS gains only through a larger p_lower.

Averaging (spec §5.8): per element the unbiased minimum-variance weights for m1 (variance sigma1^2) and m2 / w_i
(variance v2 / w_i^2) are c1 = v2 / (sigma1^2 w_i^2 + v2), c2 = sigma1^2 w_i / (sigma1^2 w_i^2 + v2).
``averaging="variance_consistent"`` (default) uses the true per-coordinate variance of z2, v2 = ||w||^2 sigma2^2
/ d: with w = 1 it gives Var[x_hat] = sigma^2, exactly vanilla smoothing. ``"as_printed"`` uses the paper's
printed v2 = ||w||^2 sigma2^2 (no 1/d). Either is post-processing, so the certificate is the same; only accuracy
differs. ||w|| = 0 gives c1 = 1, c2 = 0.

Baselines at the same total sigma: ``VanillaSmoothingModel`` (x + sigma z) and ``StaticMaskModel`` (w_s * x +
sigma ||w_s|| / sqrt(d) z with one learned input-independent mask w_s, certified as a one-step mechanism).
"""

from __future__ import annotations

import abc
import math

import torch
import torch.nn.functional as F
from torch import nn

from rlcert.certify.adaptive.composition import split_sigma2
from rlcert.certify.adaptive.queries import GaussianQueries
from rlcert.certify.core.checks import check_positive

AVERAGING = ("variance_consistent", "as_printed")


def averaging_coefficients(w: torch.Tensor, sigma1: float | torch.Tensor, sigma2: float | torch.Tensor,
                           mode: str = "variance_consistent") -> tuple[torch.Tensor, torch.Tensor]:
    """(c1, c2) of x_hat = c1 m1 + c2 m2 per element, for masks w (m, *shape); see the module docstring."""
    if mode not in AVERAGING:
        raise ValueError(f"averaging must be one of {AVERAGING}, got {mode!r}")
    m = w.shape[0]
    sq = w.reshape(m, -1).pow(2).sum(1).reshape(-1, *([1] * (w.ndim - 1)))
    v2 = sq * sigma2 ** 2
    if mode == "variance_consistent":
        v2 = v2 / w[0].numel()
    den = sigma1 ** 2 * w * w + v2
    safe = torch.where(den > 0, den, torch.ones_like(den))
    c1 = torch.where(den > 0, v2 / safe, torch.ones_like(den))
    c2 = torch.where(den > 0, sigma1 ** 2 * w / safe, torch.zeros_like(den))
    return c1, c2


class AdaptivePipeline(nn.Module):
    """A user's k-step adaptive pipeline: ``fn(queries) -> logits (m, K) or labels (m,)`` with noise levels
    ``sigmas`` (one per step) and threat ``norm`` ("linf" or "l2")."""

    def __init__(self, fn, sigmas: tuple[float, ...], num_classes: int, norm: str = "linf") -> None:
        super().__init__()
        self.fn, self._sigmas, self.num_classes, self.norm = fn, tuple(float(s) for s in sigmas), num_classes, norm
        if isinstance(fn, nn.Module):
            self.inner = fn

    def noise_sigmas(self) -> tuple[float, ...]:
        return self._sigmas

    def pipeline(self, q: GaussianQueries) -> torch.Tensor:
        return self.fn(q)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.pipeline(GaussianQueries(x, self._sigmas, self.norm, generator))


class _LinfModel(nn.Module, abc.ABC):
    norm = "linf"

    def __init__(self, base_net: nn.Module, sigma: float, num_classes: int) -> None:
        super().__init__()
        self.base_net = base_net
        self.sigma = check_positive(sigma, "sigma")
        self.num_classes = int(num_classes)

    @abc.abstractmethod
    def _sigma_list(self) -> list:
        """Per-step noise levels (floats or tensors carrying gradients)."""

    @abc.abstractmethod
    def pipeline(self, q: GaussianQueries) -> torch.Tensor:
        """Logits (m, K) from the queries' noisy views."""

    def noise_sigmas(self) -> tuple[float, ...]:
        """Frozen per-step noise levels used by the certificate."""
        return tuple(float(s.detach()) if isinstance(s, torch.Tensor) else float(s) for s in self._sigma_list())

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits of one pipeline run per row of x (m, *shape); differentiable (training) unless in no_grad."""
        return self.pipeline(GaussianQueries(x, self._sigma_list(), self.norm, generator))


class VanillaSmoothingModel(_LinfModel):
    """Cohen et al.'s Gaussian smoothing as a one-step pipeline: base_net(x + sigma z)."""

    def _sigma_list(self) -> list:
        return [self.sigma]

    def pipeline(self, q: GaussianQueries) -> torch.Tensor:
        return self.base_net(q(0))


class StaticMaskModel(_LinfModel):
    """One learned input-independent mask w_s = sigmoid(theta) (shape ``input_shape``): base_net(w_s * x +
    sigma ||w_s|| / sqrt(d) z)."""

    def __init__(self, base_net: nn.Module, sigma: float, num_classes: int, input_shape: tuple[int, ...],
                 init_logit: float = 3.0) -> None:
        super().__init__(base_net, sigma, num_classes)
        self.mask_logit = nn.Parameter(torch.full(tuple(input_shape), float(init_logit)))

    def _sigma_list(self) -> list:
        return [self.sigma]

    def pipeline(self, q: GaussianQueries) -> torch.Tensor:
        return self.base_net(q(0, torch.sigmoid(self.mask_logit)[None]))


class ARSModel(_LinfModel):
    """Two-step ARS (see the module docstring). ``mask_net`` maps m1 (m, *shape) to mask logits or values of the
    same shape (``mask_activation="sigmoid"`` applies a sigmoid; ``"none"`` expects values in [0, 1]).
    ``sigma1``: fixed first-step noise (> sigma); ``learn_sigma1=True`` makes it trainable, starting at sigma1."""

    def __init__(self, mask_net: nn.Module, base_net: nn.Module, sigma: float, num_classes: int,
                 sigma1: float | None = None, learn_sigma1: bool = False, averaging: str = "variance_consistent",
                 mask_activation: str = "sigmoid") -> None:
        super().__init__(base_net, sigma, num_classes)
        self.mask_net = mask_net
        if averaging not in AVERAGING:
            raise ValueError(f"averaging must be one of {AVERAGING}, got {averaging!r}")
        if mask_activation not in ("sigmoid", "none"):
            raise ValueError(f"mask_activation must be 'sigmoid' or 'none', got {mask_activation!r}")
        self.averaging, self.mask_activation = averaging, mask_activation
        s1 = 2.0 * self.sigma if sigma1 is None else float(sigma1)
        split_sigma2(self.sigma, s1)  # validates sigma1 > sigma
        self.learn_sigma1 = bool(learn_sigma1)
        excess = max(s1 - 1.001 * self.sigma, 1e-6)
        # softplus^-1(excess), stable for large excess
        theta = torch.tensor(excess + math.log(-math.expm1(-excess)), dtype=torch.float64)
        if self.learn_sigma1:
            self.sigma1_theta = nn.Parameter(theta)
        else:
            self.register_buffer("sigma1_theta", theta)

    def sigma1(self) -> torch.Tensor:
        """sigma1 = sigma (1 + 1e-3) + softplus(theta) > sigma (a tensor; trainable if learn_sigma1)."""
        return self.sigma * (1 + 1e-3) + F.softplus(self.sigma1_theta, threshold=30.0)

    def _sigma_list(self) -> list:
        s1 = self.sigma1()
        s2 = 1.0 / torch.sqrt(1.0 / self.sigma ** 2 - 1.0 / s1 ** 2)
        return [s1, s2]

    def mask(self, m1: torch.Tensor) -> torch.Tensor:
        out = self.mask_net(m1)
        return torch.sigmoid(out) if self.mask_activation == "sigmoid" else out

    def pipeline(self, q: GaussianQueries) -> torch.Tensor:
        s1, s2 = q.sigmas
        m1 = q(0)
        w = self.mask(m1)                      # the mask network sees m1 only
        m2 = q(1, w)
        c1, c2 = averaging_coefficients(w, s1, s2, self.averaging)
        return self.base_net(c1 * m1 + c2 * m2)
