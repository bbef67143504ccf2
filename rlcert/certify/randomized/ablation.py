"""Randomized ablation (Levine & Feizi 2020; thesis Ch. 2): certified robustness to l0 (sparse) attacks.

Threat model: x' differs from x in at most rho **pixel positions** (all channels of a pixel count as one).
Noise: keep a uniformly random k-subset T of the d pixel positions (sampled without replacement), replace every
other pixel by NULL. Encoding (spec 0.5): x of shape (C, *positions) becomes (2C, *positions) = (x, 1 - x) for kept
pixels and (0, 0) for ablated ones, so a real pixel's channel pair sums to 1 and NULL sums to 0 for **any** real
x (no range requirement; the thesis uses x in [0, 1], ImageNet applies it to mean/std-normalised values).

Certificate (Theorem 2.1 / Corollary 2.1): if ||x - x'||_0 <= rho then |p_i(x) - p_i(x')| <= Delta(rho) with

    Delta(rho; d, k) = 1 - C(d - rho, k) / C(d, k),

so the smoothed classifier keeps class c_A for every x' with ||x - x'||_0 <= rho (inclusive) as long as
p_lower - Delta(rho) > 1/2; the radius is the largest such integer rho (with probability >= 1 - alpha over the
sampling). The ratio C(d - rho, k) / C(d, k) = prod_{j<k} (1 - rho / (d - j)) is summed in log space with log1p
(no factorials; accurate at d = 50176, k = 2000) to find the radius, and the strict inequality at the boundary is
then decided exactly with big integers and the exact rational value of p_lower (an exact tie certifies nothing).
Corollary 2.2 (``two_bound``): p_lower - Delta > p_upper + Delta.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from rlcert.certify.core.certificate import ABSTAIN, Certificate
from rlcert.certify.core.checks import check_count
from rlcert.certify.core.registry import register
from rlcert.certify.core.smoothing import CERTIFY_STREAM, SmoothingCertifier, check_inputs

__all__ = ["RandomAblation", "RandomizedAblationCertifier", "ablation_delta", "ablation_radius",
           "ablation_radius_two_bound", "encode_null", "log_retention"]


# ---- pure math: counts/probabilities -> certificate ------------------------------------------------------------
def _check_dk(d: int, k: int) -> tuple[int, int]:
    d = check_count(d, "d (number of pixel positions)")
    k = check_count(k, "k (retained pixels)")
    if k > d:
        raise ValueError(f"k (retained pixels) must be in [1, d={d}], got {k}")
    return d, k


def log_retention(rho: int, d: int, k: int) -> float:
    """log(C(d - rho, k) / C(d, k)): log-probability that a uniform k-subset of [d] avoids rho fixed positions.

    Computed as sum_{j<k} log1p(-rho / (d - j)) (no factorials; relative error ~1e-15 per term). -inf when
    rho > d - k (every subset hits the changed pixels).
    """
    d, k = _check_dk(d, k)
    rho = check_count(rho, "rho", minimum=0)
    if rho > d - k:
        return -math.inf
    if rho == 0:
        return 0.0
    j = np.arange(k, dtype=np.float64)
    return float(np.log1p(-rho / (d - j)).sum())


def ablation_delta(rho: int, d: int, k: int) -> float:
    """Delta(rho; d, k) = 1 - C(d - rho, k) / C(d, k) (Eq. 2.4): the most an l0 change of rho pixels can move any
    class probability of the ablation-smoothed classifier. Delta(0) = 0, Delta(1) = k/d, Delta = 1 for rho > d - k."""
    return float(-math.expm1(log_retention(rho, d, k)))


def exact_probability(p) -> Fraction:
    """The exact rational value of a probability bound: a float (any binary float is a dyadic rational, so
    ``Fraction(float)`` is exact), an int, a ``Fraction`` or a ``Decimal``; numpy float32/float16 widen exactly."""
    if isinstance(p, np.generic):
        p = p.item()
    if isinstance(p, bool) or not isinstance(p, (int, float, Fraction, Decimal)):
        raise ValueError(f"a probability bound must be a real number, got {p!r}")
    if isinstance(p, float) and not math.isfinite(p):
        raise ValueError(f"a probability bound must be finite, got {p!r}")
    return Fraction(p)


def _retention_exceeds(rho: int, d: int, k: int, bound: Fraction) -> bool:
    """Exactly: C(d - rho, k) / C(d, k) > bound (big-integer arithmetic, no rounding)."""
    if rho > d - k:
        return 0 > bound
    return math.comb(d - rho, k) * bound.denominator > bound.numerator * math.comb(d, k)


def _largest_rho(bound: Fraction, d: int, k: int) -> int:
    """Largest rho in [0, d - k] with C(d - rho, k) / C(d, k) > bound, given that rho = 0 qualifies (bound < 1).

    A binary search in floating point (log_retention, relative error ~1e-15) finds the candidate; the boundary is
    then decided exactly (``_retention_exceeds``), so exact ties (retention == bound) are never certified."""
    log_bound = math.log(bound) if bound > 0 else -math.inf
    lo, hi = 0, d - k
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if log_retention(mid, d, k) > log_bound:
            lo = mid
        else:
            hi = mid - 1
    while lo > 0 and not _retention_exceeds(lo, d, k, bound):
        lo -= 1
    while lo < d - k and _retention_exceeds(lo + 1, d, k, bound):
        lo += 1
    return lo


def ablation_radius(p_lower, d: int, k: int) -> np.ndarray:
    """Certified l0 radius (pixels, inclusive): the largest rho with p_lower - Delta(rho) > 1/2 (Corollary 2.1).

    p_lower: scalar or array of lower confidence bounds on p_A (floats, or exact ``Fraction`` / ``Decimal``
    values). Returns an int64 array of the same shape; -1 (ABSTAIN: no certificate) where p_lower <= 1/2. The
    strict inequality C(d-rho,k)/C(d,k) > 3/2 - p_lower is decided in exact rational arithmetic on the value of
    p_lower as given, so a tie certifies nothing.
    """
    d, k = _check_dk(d, k)
    p = np.asarray(p_lower, dtype=object if _has_exact(p_lower) else np.float64)
    out = np.full(p.shape, ABSTAIN, dtype=np.int64)
    for idx, pi in np.ndenumerate(p):
        pe = exact_probability(pi)
        if pe > 1:
            raise ValueError(f"p_lower must be a probability in [0, 1], got {pi}")
        if not pe > Fraction(1, 2):
            continue
        out[idx] = _largest_rho(Fraction(3, 2) - pe, d, k)
    return out


def ablation_radius_two_bound(p_lower, p_upper, d: int, k: int) -> np.ndarray:
    """Corollary 2.2: the largest rho with p_lower - Delta(rho) > p_upper + Delta(rho); -1 (ABSTAIN) if
    p_lower <= p_upper. Decided exactly as ``ablation_radius`` (retention > 1 - (p_lower - p_upper) / 2)."""
    d, k = _check_dk(d, k)
    exact = _has_exact(p_lower) or _has_exact(p_upper)
    dtype = object if exact else np.float64
    pa, pb = np.broadcast_arrays(np.asarray(p_lower, dtype=dtype), np.asarray(p_upper, dtype=dtype))
    out = np.full(pa.shape, ABSTAIN, dtype=np.int64)
    for idx, a in np.ndenumerate(pa):
        gap = exact_probability(a) - exact_probability(pb[idx])
        if not gap > 0:
            continue
        # 2 Delta < gap  <=>  retention > 1 - gap/2
        out[idx] = _largest_rho(1 - gap / 2, d, k)
    return out


def _has_exact(p) -> bool:
    """True when ``p`` (a scalar or a sequence) holds exact rationals (Fraction / Decimal) to keep as objects."""
    if isinstance(p, (Fraction, Decimal)):
        return True
    if isinstance(p, np.ndarray):
        return p.dtype == object
    if isinstance(p, (list, tuple)):
        return any(_has_exact(v) for v in p)
    return False


# ---- the noise object: NULL encoding + uniform k-subsets, shared by training and certification ------------------
def encode_null(x: torch.Tensor) -> torch.Tensor:
    """(N, C, *positions) -> (N, 2C, *positions) = (x, 1 - x): the NULL-aware encoding of un-ablated inputs."""
    return torch.cat([x, 1.0 - x], dim=1)


class RandomAblation:
    """Keep ``k`` uniformly random pixel positions of each input (without replacement), NULL elsewhere.

    Inputs are (N, C, *positions) (an image (N, C, H, W): d = H * W positions, the C channels of a pixel are kept or
    ablated together). Outputs are NULL-encoded (N, 2C, *positions). Subsets are drawn on the inputs' device by
    Floyd's algorithm (exactly uniform, ``keep_mask``).
    """

    def __init__(self, k: int) -> None:
        self.k = check_count(k, "k (retained pixels)")

    @staticmethod
    def positions(shape: Sequence[int]) -> int:
        """d: the number of pixel positions of one input of shape (C, *positions)."""
        if len(shape) < 2:
            raise ValueError(f"randomized ablation needs inputs of shape (N, C, *positions), got one input of shape "
                             f"{tuple(shape)}; add a channel axis (e.g. x[:, None]) for tabular data")
        return int(np.prod(shape[1:]))

    def check(self, shape: Sequence[int]) -> int:
        """d for inputs of per-item shape ``shape``; raises unless 1 <= k <= d."""
        d = self.positions(shape)
        if self.k > d:
            raise ValueError(f"k (retained pixels) must be in [1, d={d}] for inputs of shape {tuple(shape)}, "
                             f"got {self.k}")
        return d

    def keep_mask(self, m: int, d: int, generator: torch.Generator | None, device: torch.device | str,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(m, d) 0/1 mask with exactly k ones per row, each row an independent uniform k-subset of [d].

        Floyd's algorithm, vectorised over rows: for j = d - s, ..., d - 1 draw t uniform in {0, ..., j} and add t,
        or j if t is already in (s = min(k, d - k) steps; for k > d/2 the ablated complement is drawn). Every
        s-subset comes out with probability 1 / C(d, s) exactly; O(m s) work plus the mask itself.
        """
        k = self.k
        if k > d:
            raise ValueError(f"k (retained pixels) must be in [1, d={d}], got {k}")
        s = min(k, d - k)
        fill, base = (1.0, 0.0) if s == k else (0.0, 1.0)
        mask = torch.full((m, d), base, device=device, dtype=dtype)
        if s == 0:
            return mask
        flat = mask.view(-1)
        row_start = torch.arange(0, m * d, d, device=device)
        for j in range(d - s, d):
            t = torch.randint(0, j + 1, (m,), generator=generator, device=device).add_(row_start)
            taken = flat.index_select(0, t) == fill
            flat.index_fill_(0, torch.where(taken, row_start + j, t), fill)
        return mask

    def ablate_(self, out: torch.Tensor, encoded: torch.Tensor, generator: torch.Generator | None) -> None:
        """Fill ``out`` (m, 2C, *positions) with m independent ablations of one NULL-encoded input (2C, *positions)."""
        m, d = out.shape[0], int(np.prod(encoded.shape[1:]))
        mask = self.keep_mask(m, d, generator, out.device, out.dtype)
        torch.mul(encoded.unsqueeze(0), mask.view(m, 1, *encoded.shape[1:]), out=out)

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """NULL-encoded ablations of a batch x (B, C, *positions), an independent subset per input (the
        certification distribution; same interface as ``rlcert.certify.randomized.noise.Noise.sample``)."""
        return self.augment(x, generator, same_for_batch=False)

    def augment(self, x: torch.Tensor, generator: torch.Generator | None = None,
                same_for_batch: bool = True) -> torch.Tensor:
        """Training input for a batch x (B, C, *positions): NULL-encoded (B, 2C, *positions) ablations.

        ``same_for_batch=True`` keeps the same k pixels for the whole batch (the thesis' training, spec 1.2);
        False draws an independent subset per input (the certification distribution, per sample)."""
        d = self.check(tuple(x.shape[1:]))
        enc = encode_null(x)
        mask = self.keep_mask(1 if same_for_batch else x.shape[0], d, generator, x.device, enc.dtype)
        return enc * mask.view(mask.shape[0], 1, *x.shape[2:])


# ---- the certifier: the noise object + Cohen's CERTIFY/PREDICT of the core ---------------------------------------
@register
class RandomizedAblationCertifier(SmoothingCertifier):
    """Randomized ablation -> l0 radius (pixels, inclusive): largest rho with p_lower - Delta(rho; d, k) > 1/2.

    The base classifier sees NULL-encoded (N, 2C, *positions) inputs (``base_input``). Sampling parameters as in
    ``SmoothingCertifier`` (the thesis: n0 = 1000, n = 10000, alpha = 0.05). Guarantee: with probability >= 1 - alpha,
    the smoothed classifier g(x') = prediction for every x' with at most ``radius`` changed pixel positions.
    """

    name = "ablation"
    norm = "l0"

    def __init__(self, k: int, **sampling: Any) -> None:
        super().__init__(**sampling)
        self.noise = RandomAblation(k)
        self._d: int | None = None

    @property
    def k(self) -> int:
        return self.noise.k

    def encode(self, x: Any, device: torch.device | str | None = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
        """Validated, NULL-encoded inputs (N, 2C, *positions) (cast to ``dtype`` when given); records d."""
        if device is None:
            device = x.device if isinstance(x, torch.Tensor) else "cpu"
        x = check_inputs(x, torch.device(device), method=type(self).__name__, dtype=dtype)
        self._d = self.noise.check(tuple(x.shape[1:]))
        return encode_null(x)

    def validate_inputs(self, x: torch.Tensor) -> None:
        """Finite inputs (N, C, *positions) with at least k pixel positions (the CLI checks before writing)."""
        self.noise.check(tuple(check_inputs(x, torch.device("cpu"), method=type(self).__name__).shape[1:]))

    def base_input(self, x: torch.Tensor) -> torch.Tensor:
        enc = self.encode(x[:1])
        out = torch.empty_like(enc)
        self.noise.ablate_(out, enc[0], None)
        return out

    def perturb_(self, out: torch.Tensor, x: torch.Tensor, generator: torch.Generator) -> None:
        self.noise.ablate_(out, x, generator)

    @property
    def d(self) -> int:
        """Pixel positions of the inputs last encoded (certify/sample/base_input set it)."""
        if self._d is None:
            raise ValueError("the number of pixel positions d is known once inputs were given to certify/sample")
        return self._d

    def radius(self, p_lower: np.ndarray) -> np.ndarray:
        return ablation_radius(p_lower, self.d, self.k).astype(np.float64)

    def radius_two_bound(self, p_lower: np.ndarray, p_upper: np.ndarray) -> np.ndarray:
        return ablation_radius_two_bound(p_lower, p_upper, self.d, self.k).astype(np.float64)

    def sample(self, classifier: Any, x: torch.Tensor, num: int, seeds: Sequence[int] | None = None,
               stream: int = CERTIFY_STREAM, generators: list[torch.Generator] | None = None) -> np.ndarray:
        x = self.encode(x, classifier.device, getattr(classifier, "dtype", None))
        return super().sample(classifier, x, num, seeds, stream, generators)

    def certify(self, classifier: Any, x: torch.Tensor, seeds: Sequence[int] | None = None) -> list[Certificate]:
        x = self.encode(x, classifier.device, getattr(classifier, "dtype", None))
        return super().certify(classifier, x, seeds)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--k", dest="ablation_k", type=int, default=None,
                            help="pixels kept per sample (randomized ablation; the rest are NULL)")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> RandomizedAblationCertifier:
        k = getattr(args, "ablation_k", None)
        if k is None:
            raise ValueError("--k (pixels kept per sample) is required for --method ablation")
        return cls(k, **cls.sampling_kwargs(args))
