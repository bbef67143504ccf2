"""Randomized SSN: smoothing with splitting noise (Levine & Feizi 2021; thesis Ch. 3, Theorem 3.2).

``SSNNoise`` needs inputs in [0, 1] (any shape). For each coordinate draw s_i ~ U(0, 2 lambd) (i.i.d. here:
"Independent SSN") and split the line at s_i + 2 lambd k, k integer; x~_i is the midpoint of the piece of [0, 1]
containing x_i:

    u_i = 2 lambd ceil((x_i - s_i) / (2 lambd)) + s_i,   x~_i = (min(u_i, 1) + max(u_i - 2 lambd, 0)) / 2

(for lambd >= 1/2 this is x~_i = (min(s_i, 1) + 1[x_i > s_i]) / 2, Eq. 3.7). Pr[x~_i != x~'_i] <= |delta_i|/(2 lambd)
makes the smoothed probabilities 1/(2 lambd)-Lipschitz in l1, so R = 2 lambd (p_lower - 1/2) as for uniform noise.
``lambd`` has the meaning it has for uniform noise (half-width; ``sigma`` = lambd / sqrt(3), the std of the
matching uniform noise). The deterministic variant (DSSN) is a separate certifier.
"""

from __future__ import annotations

import torch

from rlcert.certify.core.registry import register
from rlcert.certify.randomized.noise import register_noise
from rlcert.certify.randomized.uniform import LipschitzL1Certifier, LipschitzL1Noise


def ssn_transform(x: torch.Tensor, s: torch.Tensor, lambd: float) -> torch.Tensor:
    """Midpoint of the bin of [0, 1] containing x when splitting at s + 2 lambd k (broadcasting x against s)."""
    width = 2.0 * lambd
    u = torch.ceil((x - s) / width) * width + s
    return (torch.clamp(u, max=1.0) + torch.clamp(u - width, min=0.0)) / 2


@register_noise
class SSNNoise(LipschitzL1Noise):
    """Splitting noise with i.i.d. s_i ~ U(0, 2 lambd) -> l1 radius 2 lambd (p_lower - 1/2); x in [0, 1]."""

    name = "ssn"
    unit_interval = True

    def perturb_(self, out: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None) -> None:
        s = out.uniform_(0.0, 2.0 * self.lambd, generator=generator)
        out.copy_(ssn_transform(x, s, self.lambd))


@register
class SSNCertifier(LipschitzL1Certifier):
    """CERTIFY/PREDICT with ``SSNNoise`` (inputs in [0, 1])."""

    name = "ssn"
    noise_class = SSNNoise
