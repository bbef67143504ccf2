"""DSSN: deterministic smoothing with splitting noise for l1 (Levine 2023, Ch.3 / App. B; spec section 2).

Inputs are quantised, ``x in {0, 1/q, ..., 1}^d`` (d = every scalar feature, all channels). With bin width
``Lambda = 2 lambda = N/q`` (N = floor(2 lambda q) split outcomes), outcome ``j in {0..N-1}`` splits coordinate i
at ``s_i = (((j + v_i) mod N) + 0.5)/q`` where ``v`` is a fixed offset vector (``RandomState(seed).randint(N, d)``,
part of the model: use the same seed for training and certification). Each coordinate is replaced by the
midpoint of its bin ``(max(u - Lambda, 0), min(u, 1)]`` with ``u = Lambda ceil((x_i - s_i)/Lambda) + s_i``
(Eq. 3.28; for lambda >= 0.5 this is Eq. 3.7, ``(min(s_i, 1) + 1[x_i > s_i])/2``).

Guarantee (Corollary 3.1 + the tie rule of B.2; exact, deterministic): with hard votes ``n_c`` over all N
outcomes, ``c = argmax n_c`` (smallest index on ties) and ``rho = floor((n_c - max_{c'!=c}(n_c' + 1[c'<c]))/2)/q``,
every quantised ``x'`` with ``||x - x'||_1 <= rho`` (inclusive) has the same smoothed prediction ``c``.
Cost: exactly N base evaluations per input. All bin arithmetic is integer (in units of 1/(2q)).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np
import torch

from rlcert.certify.core.certificate import Certificate
from rlcert.certify.core.certifier import Certifier
from rlcert.certify.core.checks import check_count
from rlcert.certify.core.classifier import as_batch
from rlcert.certify.core.registry import register
from rlcert.certify.core.votes import vote_certificates
from rlcert.certify.deterministic.enumeration import (
    add_argument_once,
    add_quantisation_arguments,
    check_batch_size,
    device_of,
    enumerate_counts,
    quantise,
)


def num_splits(lam: float, q: int) -> int:
    """N = floor(2 lambda q): the thesis rounds lambda down so that 2 lambda is a multiple of 1/q."""
    if not (lam > 0) or not math.isfinite(lam):
        raise ValueError(f"lambda must be a finite number > 0, got {lam!r}")
    n = math.floor(2 * lam * q + 1e-9)
    if n < 1:
        raise ValueError(f"lambda must be >= 1/(2q) = {1 / (2 * q):.6g} so that N = floor(2 lambda q) >= 1, got {lam}")
    return n


def split_offsets(d: int, n_splits: int, seed: int = 0) -> np.ndarray:
    """The fixed per-coordinate offsets v in {0..N-1}^d (numpy MT19937, as in the reference code)."""
    return np.random.RandomState(seed).randint(n_splits, size=d)


def dssn_midpoints_x4q(levels: torch.Tensor, r: torch.Tensor, n_splits: int, q: int) -> torch.Tensor:
    """General case (any lambda): 4q * x~ as int64, for integer levels X = q x and split indices r (s = (r+.5)/q).

    ``levels`` and ``r`` broadcast; ``u = q * upper edge`` is ``U + 0.5`` with
    ``U = N (floor((X - r - 1)/N) + 1) + r``, so ``4q x~ = min(2U+1, 2q) + max(2U+1-2N, 0)``.
    """
    u = n_splits * (torch.div(levels - r - 1, n_splits, rounding_mode="floor") + 1) + r
    upper2 = torch.clamp(2 * u + 1, max=2 * q)
    lower2 = torch.clamp(2 * u + 1 - 2 * n_splits, min=0)
    return upper2 + lower2


def dssn_midpoints_x4q_large(levels: torch.Tensor, r: torch.Tensor, q: int) -> torch.Tensor:
    """Case lambda >= 0.5 (N >= q), Eq. 3.7: ``4q x~ = 2q min(s, 1) + 2q 1[x > s]`` with s = (r + .5)/q."""
    return torch.clamp(2 * r + 1, max=2 * q) + 2 * q * (2 * levels > 2 * r + 1).long()


@register
class DSSN(Certifier):
    """Deterministic SSN (l1). See the module docstring for the exact guarantee."""

    name = "dssn"
    norm = "l1"

    def __init__(self, lam: float, q: int = 255, seed: int = 0, batch_size: int = 1024,
                 num_classes: int | None = None) -> None:
        self.lam = float(lam)
        self.q = check_count(q, "q")
        self.n_splits = num_splits(self.lam, q)
        self.seed = int(seed)
        self.batch_size = check_batch_size(batch_size)
        self.num_classes = num_classes
        self._offsets: dict[int, torch.Tensor] = {}

    def offsets(self, d: int) -> torch.Tensor:
        if d not in self._offsets:
            self._offsets[d] = torch.from_numpy(split_offsets(d, self.n_splits, self.seed)).long()
        return self._offsets[d]

    def smooth(self, x: torch.Tensor, j: torch.Tensor | int) -> torch.Tensor:
        """x~ for inputs x (B, *shape) on the grid and outcome indices j (B,) or a scalar; same shape as x."""
        levels = quantise(x, self.q).flatten(1).cpu()
        v = self.offsets(levels.shape[1])
        j = torch.as_tensor(j, dtype=torch.long).reshape(-1, 1)
        r = torch.remainder(j + v[None, :], self.n_splits)
        out = dssn_midpoints_x4q(levels, r, self.n_splits, self.q).to(torch.float32) / (4 * self.q)
        return out.reshape(x.shape).to(x.device)

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training noise: one uniformly random outcome j per sample (Yang et al.'s per-sample noise)."""
        j = torch.randint(self.n_splits, (x.shape[0],), generator=generator)
        return self.smooth(x, j)

    def validate_inputs(self, x: torch.Tensor) -> None:
        quantise(as_batch(x, who=f"{type(self).__name__}: x"), self.q, name=f"{type(self).__name__}: x")

    def certify(self, classifier: Any, x: torch.Tensor) -> list[Certificate]:
        num_classes = self.num_classes or classifier.num_classes
        x = as_batch(x, who=f"{type(self).__name__}: x")
        levels = quantise(x, self.q, name=f"{type(self).__name__}: x").flatten(1).cpu()
        v = self.offsets(levels.shape[1]).to(device_of(classifier))
        shape = tuple(x.shape[1:])

        def encode(rows: torch.Tensor, j: torch.Tensor) -> torch.Tensor:  # integer bins on the device
            r = torch.remainder(j + v[None, :], self.n_splits)
            xt = dssn_midpoints_x4q(rows, r, self.n_splits, self.q).to(torch.float32) / (4 * self.q)
            return xt.reshape(len(rows), *shape)

        counts = enumerate_counts(classifier, levels, self.n_splits, self.batch_size, num_classes, encode)
        preds, kbars = vote_certificates(counts)
        return [Certificate(int(p), int(k) / self.q, self.norm, None, c) for p, k, c in zip(preds, kbars, counts)]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_argument_once(parser, "--lambda", dest="lam", type=float, default=None,
                          help="half-width lambda of the splitting noise (bin width 2 lambda): N = floor(2 lambda q) "
                               "outcomes; instead of --sigma")
        add_argument_once(parser, "--sigma", type=float, default=None,
                          help="standard deviation of the matching uniform noise (lambda = sqrt(3) sigma)")
        add_quantisation_arguments(parser)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> DSSN:
        lam = getattr(args, "lam", None)
        sigma = getattr(args, "sigma", None)
        if (lam is None) == (sigma is None):
            raise ValueError("--method dssn needs exactly one of --lambda (> 0) or --sigma (lambda = sqrt(3) sigma)")
        if lam is None:
            lam = math.sqrt(3) * sigma
        return cls(lam, q=args.q, seed=args.offset_seed, batch_size=getattr(args, "batch", None) or 1024)
