"""Variable-Lambda smoothing for fractional l_p / elementwise-concave metrics, and the deterministic l0
certificate (Levine 2023, Ch.4 / App. C; spec section 3).

Variable-Lambda (Definition 4.2, derandomized as in App. C.3): a ``LambdaDesign`` gives an ordered list L of B
outcomes ``(Lambda = j/q, s = (r + 0.5)/q)`` or ``Lambda = inf``; coordinate i of sample b uses
``L[(b + v_i) mod B]`` with fixed offsets ``v = RandomState(seed).randint(B, size=d)`` (cyclic permutations; part
of the model). The base classifier sees ``[x_upper, x_lower]`` (channels doubled, upper first) with
``x_upper = min(u, 1)``, ``x_lower = max(u - Lambda, 0)``, ``u = Lambda ceil((x - s)/Lambda) + s`` (Eq. 4.4-4.5);
``Lambda = inf`` gives ``(1, 0)``. All B outcomes are enumerated; inputs must lie on the grid ``{0, 1/q, .., 1}``.

Guarantee (Theorem 4.3 + App. C.4, exact): coordinate i changes at most ``S(k_i) = sum_j min(k_i, j) w_j`` of the B
base evaluations when it moves by ``k_i/q``, so (union bound) if ``sum_i S(|X_i - Y_i|) <= Kbar`` (the shared
vote-count certificate, ``votes.py``) the prediction at y equals that at x. With ``S(k) <= B g(k/q)``,
``g(z) = z^p/alpha``, this certifies every grid y with ``||x - y||_p <= (alpha Kbar / B)^(1/p)`` (inclusive) --
the reference code's ``(alpha floor(D/2)/B)^(1/p)`` form of Eq. C.77. For a general ECM g the radius is
``Kbar / B`` in units of ``d(x, y) = sum_i g(|x_i - y_i|)``.

Deterministic l0 (Section 4.5): ``B = alpha`` outcomes, one with ``Lambda = 1/q`` (value kept:
``(min(x + 0.5/q, 1), max(x - 0.5/q, 0))``) and ``alpha - 1`` ablated ones, so each feature (or, with
``unit="pixel"``, each pixel: all channels share the offset) is kept in exactly one of the alpha evaluations and
``Kbar`` itself is the certified number of changed features (pixels), for arbitrary replacement values.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from rlcert.certify.core.certificate import Certificate
from rlcert.certify.core.certifier import Certifier
from rlcert.certify.core.checks import check_count
from rlcert.certify.core.classifier import as_batch
from rlcert.certify.core.registry import register
from rlcert.certify.core.votes import vote_certificate, vote_certificates
from rlcert.certify.deterministic.enumeration import (
    add_argument_once,
    add_quantisation_arguments,
    check_batch_size,
    count_votes,
    device_of,
    enumerate_counts,
    quantise,
)
from rlcert.certify.deterministic.lambda_design import PUBLISHED_WEIGHTS, LambdaDesign, milp_design, power_ecm


def cyclic_offsets(d: int, budget: int, seed: int = 0) -> np.ndarray:
    """v in {0..B-1}^d from numpy MT19937 (``RandomState(seed).randint(B, size=d)``), as in the reference code."""
    return np.random.RandomState(seed).randint(budget, size=d)


def bounds_x2q(levels: torch.Tensor, width: torch.Tensor, r: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(2q x_upper, 2q x_lower) as int64 for integer levels X, bin widths j (0 = inf), split indices r (broadcast)."""
    j = torch.where(width > 0, width, torch.ones_like(width))
    u = j * (torch.div(levels - r - 1, j, rounding_mode="floor") + 1) + r
    upper2 = torch.clamp(2 * u + 1, max=2 * q)
    lower2 = torch.clamp(2 * u + 1 - 2 * j, min=0)
    inf = width == 0
    upper2 = torch.where(inf, torch.full_like(upper2, 2 * q), upper2)
    lower2 = torch.where(inf, torch.zeros_like(lower2), lower2)
    return upper2, lower2


def stack_upper_lower(upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """Channel-doubled input [upper, lower] along dim 1: (B, C, ...) -> (B, 2C, ...), (B, d) -> (B, 2d)."""
    return torch.cat([upper, lower], dim=1)


@register
class VariableLambda(Certifier):
    """Variable-Lambda smoothing (fractional l_p, or a general elementwise-concave metric g).

    ``design`` is the alpha = 1 design (budget B0); it is scaled to ``B = B0 * alpha`` outcomes. ``p`` sets the
    reported norm ``lp:p``; with ``g`` given instead (a concave g with S(k)/B0 <= g(k/q)), radii are in ECM units.
    """

    name = "variable-lambda"
    norm = "lp"

    def __init__(self, design: LambdaDesign, p: float | None = 0.5, alpha: float = 1.0, seed: int = 0,
                 batch_size: int = 1024, g: Callable[[np.ndarray], np.ndarray] | None = None,
                 num_classes: int | None = None) -> None:
        if (p is None) == (g is None):
            raise ValueError("give exactly one of p (fractional l_p) or g (general concave metric)")
        self.p, self.alpha = p, float(alpha)
        self.g = power_ecm(p) if g is None else g
        if not design.is_below(self.g):
            raise ValueError("design must satisfy S(k) <= B g(k/q) for every k (never exceed g)")
        self.base_design = design
        self.design = design.scaled(self.alpha)
        self.q = design.q
        self.seed = int(seed)
        self.batch_size = check_batch_size(batch_size)
        self.num_classes = num_classes
        widths, rs = self.design.outcomes()
        self._widths, self._rs = torch.from_numpy(widths), torch.from_numpy(rs)
        self._offsets: dict[int, torch.Tensor] = {}
        self.norm = f"lp:{p:g}" if p is not None else "ecm"

    @property
    def budget(self) -> int:
        return self.design.budget

    def offsets(self, d: int) -> torch.Tensor:
        if d not in self._offsets:
            self._offsets[d] = torch.from_numpy(cyclic_offsets(d, self.budget, self.seed)).long()
        return self._offsets[d]

    def _encode(self, levels: torch.Tensor, b: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """levels (n, d) ints, sample indices b (n, 1) -> encoded inputs (n, 2C, ...) float32, on levels' device."""
        dev = levels.device
        idx = torch.remainder(b.to(dev) + self.offsets(levels.shape[1]).to(dev)[None, :], self.budget)
        up2, lo2 = bounds_x2q(levels, self._widths.to(dev)[idx], self._rs.to(dev)[idx], self.q)
        up = (up2.float() / (2 * self.q)).reshape(len(b), *shape)
        lo = (lo2.float() / (2 * self.q)).reshape(len(b), *shape)
        return stack_upper_lower(up, lo)

    def base_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x[:1], 0)

    def encode(self, x: torch.Tensor, b: torch.Tensor | int) -> torch.Tensor:
        """The base-classifier input for outcome indices b (B,) or a scalar: (N, 2C, ...)."""
        levels = quantise(x, self.q).flatten(1).cpu()
        bb = torch.as_tensor(b, dtype=torch.long).reshape(-1, 1).expand(levels.shape[0], 1)
        return self._encode(levels, bb, tuple(x.shape[1:])).to(x.device)

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training noise: one random outcome index per sample (same L and v as at test time)."""
        return self.encode(x, torch.randint(self.budget, (x.shape[0],), generator=generator))

    def radius(self, kbar: int) -> float:
        """Certified radius for Kbar, one convention for both modes: ``D = alpha Kbar / B`` (= Kbar / B0) is the
        certified distance ``sum_i g(|x_i - y_i|)`` for the alpha = 1 design's g (S(k) <= B0 g(k/q)); the ECM mode
        reports D, the l_p mode (g = z^p) reports ``D^(1/p)``, the l_p norm with ``||x - y||_p^p <= D``.

        The radius is inclusive, so it is rounded **down**: D is the largest float <= the exact alpha Kbar / B, and
        D^(1/p) is lowered by its worst-case rounding error ((|ln D| + 1) / p + 4 ulps), never above the exact
        value (``tests/certify/test_variable_lambda.py``, against 60-digit arithmetic)."""
        exact = Fraction(self.alpha) * int(kbar) / self.budget
        distance = float(exact)
        if Fraction(distance) > exact:
            distance = math.nextafter(distance, 0.0)
        if self.p is None or distance == 0.0:
            return distance
        r = distance ** (1.0 / self.p)
        return r * (1.0 - ((abs(math.log(distance)) + 1.0) / self.p + 4.0) * 2.0 ** -52)

    def certified_between(self, levels_x: np.ndarray, levels_y: np.ndarray, kbar: int) -> bool:
        """The exact (tightest) check: sum_i S(|X_i - Y_i|) <= Kbar."""
        s = self.design.split_counts()
        return int(s[np.abs(np.asarray(levels_x) - np.asarray(levels_y))].sum()) <= kbar

    def validate_inputs(self, x: torch.Tensor) -> None:
        quantise(as_batch(x, who=f"{type(self).__name__}: x"), self.q, name=f"{type(self).__name__}: x")

    def certify(self, classifier: Any, x: torch.Tensor) -> list[Certificate]:
        num_classes = self.num_classes or classifier.num_classes
        x = as_batch(x, who=f"{type(self).__name__}: x")
        levels = quantise(x, self.q, name=f"{type(self).__name__}: x").flatten(1).cpu()
        shape = tuple(x.shape[1:])
        counts = enumerate_counts(classifier, levels, self.budget, self.batch_size, num_classes,
                                  lambda rows, b: self._encode(rows, b, shape))
        preds, kbars = vote_certificates(counts)
        return [Certificate(int(p), self.radius(int(k)), self.norm, None, c) for p, k, c in zip(preds, kbars, counts)]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_argument_once(parser, "--p", type=float, default=0.5,
                          help="fractional l_p exponent in (0, 1] (default 0.5)")
        add_argument_once(parser, "--lambda-alpha", type=float, default=1.0,
                          help="1/alpha-Lipschitz smoothing: B = budget * alpha outcomes (alpha >= 1; default 1)")
        add_argument_once(parser, "--budget", type=int, default=1000,
                          help="outcomes B0 of the alpha = 1 design (default 1000)")
        add_argument_once(parser, "--design", choices=["published", "milp"], default="published",
                          help="w design: the thesis' (p = 1/2, 1/3 at q = 255, budget 1000) or solve the MILP")
        add_argument_once(parser, "--milp-time", type=float, default=120.0,
                          help="MILP time limit in seconds (default 120)")
        add_quantisation_arguments(parser)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> VariableLambda:
        return cls(build_design(args.p, args.q, args.budget, args.design, args.milp_time), p=args.p,
                   alpha=args.lambda_alpha, seed=args.offset_seed, batch_size=getattr(args, "batch", None) or 1024)


def build_design(p: float, q: int, budget: int, kind: str = "published", time_limit: float = 120.0) -> LambdaDesign:
    """The alpha = 1 design for g(z) = z^p: the thesis' published w (p = 1/2 or 1/3, q = 255, B = 1000) or a MILP."""
    if kind == "published":
        key = {0.5: "1/2", round(1 / 3, 6): "1/3"}.get(round(p, 6))
        if key is None or q != 255 or budget != 1000:
            raise ValueError("kind='published' (--design published) exists only for p in {0.5, 1/3} with q = 255 "
                             "and budget 1000; use kind='milp' (--design milp)")
        return LambdaDesign(255, 1000, PUBLISHED_WEIGHTS[key])
    if kind == "milp":
        return milp_design(power_ecm(p), q, budget, time_limit=time_limit)
    raise ValueError(f"design must be 'published' or 'milp', got {kind!r}")


@register
class DeterministicL0(Certifier):
    """Deterministic l0 certificate: each feature (pixel) is kept in exactly one of alpha evaluations."""

    name = "deterministic-l0"
    norm = "l0"

    def __init__(self, alpha: int, q: int = 255, unit: str = "pixel", seed: int = 0, batch_size: int = 1024,
                 num_classes: int | None = None) -> None:
        alpha = check_count(alpha, "alpha (number of evaluations)")
        if unit not in ("feature", "pixel"):
            raise ValueError(f"unit must be 'feature' or 'pixel', got {unit!r}")
        q = check_count(q, "q")
        self.alpha, self.q, self.unit, self.seed = alpha, q, unit, int(seed)
        self.batch_size = check_batch_size(batch_size)
        self.num_classes = num_classes

    def keep_index(self, shape: tuple[int, ...]) -> torch.Tensor:
        """(d,) int64: the evaluation b in which each flattened feature is kept ((b + v_i) mod alpha == 0)."""
        if self.unit == "pixel" and len(shape) == 3:  # (C, H, W): one offset per pixel, shared by the channels
            c, h, w = shape
            v = np.tile(cyclic_offsets(h * w, self.alpha, self.seed), c)
        else:
            v = cyclic_offsets(int(np.prod(shape)), self.alpha, self.seed)
        return torch.from_numpy((-v) % self.alpha).long()

    def validate_inputs(self, x: torch.Tensor) -> None:
        quantise(as_batch(x, who=f"{type(self).__name__}: x"), self.q, name=f"{type(self).__name__}: x")

    def encode(self, x: torch.Tensor, b: torch.Tensor | int) -> torch.Tensor:
        """[upper, lower] inputs for evaluation(s) b: kept features (x + 0.5/q, x - 0.5/q) clamped, others (1, 0)."""
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError(f"{type(self).__name__} needs inputs in [0, 1], got range [{float(x.min()):g}, "
                             f"{float(x.max()):g}]")
        keep = self.keep_index(tuple(x.shape[1:])).to(x.device)
        bb = torch.as_tensor(b, dtype=torch.long, device=x.device).reshape(-1, 1)
        kept = (keep[None, :] == bb).reshape(-1, *x.shape[1:])
        half = 0.5 / self.q
        upper = torch.where(kept, torch.clamp(x + half, max=1.0), torch.ones_like(x))
        lower = torch.where(kept, torch.clamp(x - half, min=0.0), torch.zeros_like(x))
        return stack_upper_lower(upper, lower)

    def base_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x[:1], 0)

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.encode(x, torch.randint(self.alpha, (x.shape[0],), generator=generator).to(x.device))

    def certify(self, classifier: Any, x: torch.Tensor) -> list[Certificate]:
        num_classes = self.num_classes or classifier.num_classes
        device = device_of(classifier)
        x = as_batch(x, who=f"{type(self).__name__}: x")
        out = []
        for i in range(x.shape[0]):
            xi = x[i:i + 1].to(device)

            def batches(xi=xi):
                for start in range(0, self.alpha, self.batch_size):
                    b = torch.arange(start, min(start + self.batch_size, self.alpha), device=device)
                    yield self.encode(xi.expand(len(b), *xi.shape[1:]), b)
            counts = count_votes(classifier, batches(), num_classes)
            pred, kbar = vote_certificate(counts)
            out.append(Certificate(pred, float(kbar), self.norm, None, counts))
        return out

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_argument_once(parser, "--l0-alpha", type=int, default=10,
                          help="number of evaluations alpha; each feature (pixel) is kept in exactly one (default 10)")
        add_argument_once(parser, "--l0-unit", choices=["feature", "pixel"], default="pixel",
                          help="count changed features, or pixels (channels share an evaluation; default pixel)")
        add_quantisation_arguments(parser)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> DeterministicL0:
        return cls(args.l0_alpha, q=args.q, unit=args.l0_unit, seed=args.offset_seed,
                   batch_size=getattr(args, "batch", None) or 1024)


def lp_from_l1(l1_radius: float, p: float) -> float:
    """Baseline l_p certificate from an l1 certificate on [0, 1]^d (Eq. 4.25-4.27): max(r, r^(1/p))."""
    return max(l1_radius, l1_radius ** (1.0 / p)) if l1_radius > 0 else 0.0
