"""CERTIFY and PREDICT of Cohen et al. (2019), shared by every randomized-smoothing certifier.

A smoothing certifier is "how to perturb" (``perturb_``) plus "counts -> certificate" (``radius``). This module
owns the sampling protocol and the statistics:

* CERTIFY: ``n0`` selection samples choose c_A (argmax, ties to the smallest index); ``n`` **fresh** estimation
  samples give n_A and the one-sided Clopper-Pearson bound p_lower (``stats.cp_lower``). If p_lower > 1/2 the
  certificate is (c_A, radius(p_lower)), else ABSTAIN with radius 0. Guarantee: with probability >= 1 - alpha over
  the sampling, the smoothed classifier g satisfies g(x + delta) = c_A for every delta with ||delta|| < radius.
  With ``two_bound=True`` the budget is split: p_lower on c_A at alpha/2 and an upper bound p_upper on every
  other class at alpha / (2 (K - 1)) (Bonferroni); the certificate is then radius_two_bound(p_lower, p_upper)
  whenever p_lower > p_upper.
* PREDICT (lecture, both variants): PREDICT1 ("one_sided") returns the top class of ``n`` samples when the
  one-sided binomial test rejects H0 "p_A <= 1/2" at level alpha; PREDICT2 ("two_sided", Cohen's) returns it
  when the two-sided test of n_A vs n_B (top two counts) rejects "p = 1/2". Either returns a class other than
  g(x) with probability at most alpha; otherwise ABSTAIN.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from rlcert.certify.core.certificate import ABSTAIN, Certificate
from rlcert.certify.core.certifier import Certifier
from rlcert.certify.core.checks import check_count, check_positive  # noqa: F401  (re-exported)
from rlcert.certify.core.classifier import as_batch
from rlcert.certify.core.sampling import derive_seed, make_generators, sample_counts
from rlcert.certify.core.stats import (
    CP_MODES,
    binom_pvalue_one_sided,
    binom_pvalue_two_sided,
    check_alpha,
    cp_lower,
    cp_upper,
)

PREDICT_VARIANTS = ("two_sided", "one_sided")

CERTIFY_STREAM, PREDICT_STREAM = 0, 1


def check_inputs(x: Any, device: torch.device, bounded: bool = False, method: str | None = None,
                 dtype: torch.dtype | None = None) -> torch.Tensor:
    """Validate a batch x of shape (N, *input_shape) of finite numbers (any range, unless ``bounded``: [0, 1], for
    noises that need it); return it as a floating tensor on ``device`` (a tensor of any real dtype or a numpy array;
    cast to ``dtype``, the model's, when given). Errors start with ``method`` (e.g. the certifier's class name)."""
    who = f"{method}: " if method else ""
    x = as_batch(x, device, who=f"{who}x")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{who}x must have shape (N, *input_shape) with N >= 1, got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{who}x contains NaN or infinite values")
    if bounded and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError(f"{who}this noise needs inputs in [0, 1], got range [{float(x.min()):g}, "
                         f"{float(x.max()):g}]")
    if dtype is not None and x.dtype != dtype:
        cast = x.to(dtype)
        if not bool(torch.isfinite(cast).all()):
            raise ValueError(f"{who}x has values outside the range of the model's dtype {dtype} "
                             f"(|x| up to {float(x.abs().max()):g})")
        x = cast
    return x


def min_certifying_n(alpha: float, cp_mode: str = "one_sided", two_bound: bool = False) -> int:
    """The smallest number of estimation samples n with which CERTIFY can certify at all: even n_A = n gives
    p_lower = cp_lower(n, n, a) (a = alpha, or alpha / 2 for the two-bound split), and the certificate needs
    p_lower > 1/2 (two_bound: p_lower > p_upper >= 1 - p_lower'). With fewer samples every input abstains,
    whatever n0 is (n0 only selects the class and may be larger or smaller than n)."""
    a = alpha / 2 if two_bound else alpha
    n = max(1, math.floor(math.log(1.0 / a) / math.log(2.0)))
    while not cp_lower(n, n, a, cp_mode) > 0.5:
        n += 1
    while n > 1 and cp_lower(n - 1, n - 1, a, cp_mode) > 0.5:
        n -= 1
    return n


def check_can_certify(n: int, alpha: float, cp_mode: str = "one_sided", two_bound: bool = False) -> None:
    """ValueError (one line, naming n) when n estimation samples can never give a certificate at level alpha."""
    need = min_certifying_n(alpha, cp_mode, two_bound)
    if n < need:
        a, mode = ("alpha/2", f"cp_mode={cp_mode}, two_bound") if two_bound else ("alpha", f"cp_mode={cp_mode}")
        raise ValueError(f"n must be >= {need} at alpha={alpha:g} ({mode}): with n={n} even n_A = n gives "
                         f"p_lower = cp_lower(n, n, {a}) <= 1/2, so every input would abstain")


class SmoothingCertifier(Certifier):
    """Base class of the randomized-smoothing certifiers (Gaussian, Laplace, uniform, SSN, ...).

    The noise: a ``rlcert.certify.randomized.noise.Noise`` object (``noise=``; its ``perturb_`` fills the Monte
    Carlo buffers, its ``radius`` turns p_lower into the certificate, and its ``sample`` augments training with the
    same law). A subclass may instead override ``perturb_`` and ``radius`` (and ``radius_two_bound``) itself.

    Sampling parameters: ``n0`` selection samples and ``n`` estimation samples per input, failure probability
    ``alpha`` (one-sided, Cohen's convention; ``cp_mode="two_sided"`` for rs4a's), ``batch`` noisy samples per
    forward pass (across inputs), ``seed`` (input i of a call uses ``derive_seed(seed, i)`` unless ``seeds``
    are given to ``certify``/``predict``: the CLI passes data-set indices so resumed runs match).
    """

    bounded_inputs: ClassVar[bool] = False  # True when a subclass's own perturb_ needs x in [0, 1]
    noise_class: ClassVar[type | None] = None  # the Noise subclass built from --sigma / lambda_flag (CLI)
    lambda_flag: ClassVar[tuple[str, str] | None] = None  # (flag, help) for the noise's own parameter lambd
    renamed_flags: ClassVar[dict[str, str]] = {}  # old spelling -> new flag, refused by the CLI with a hint

    def __init__(self, n0: int = 100, n: int = 100_000, alpha: float = 0.001, batch: int = 1000, seed: int = 0,
                 cp_mode: str = "one_sided", two_bound: bool = False, noise: Any = None) -> None:
        self.noise = noise
        self.n0 = check_count(n0, "n0")
        self.n = check_count(n, "n")
        self.alpha = check_alpha(alpha)
        self.batch = check_count(batch, "batch")
        self.seed = check_count(seed, "seed", minimum=0)
        if cp_mode not in CP_MODES:
            raise ValueError(f"cp_mode must be one of {CP_MODES}, got {cp_mode!r}")
        self.cp_mode = cp_mode
        self.two_bound = bool(two_bound)
        if self.two_bound and not self.has_two_bound:
            raise ValueError(f"two_bound=True is not available for {type(self).__name__} (method {self.name!r})")
        check_can_certify(self.n, self.alpha, self.cp_mode, self.two_bound)

    # ---- the noise: how to perturb, and how p_lower becomes a radius -----------------------------------------
    @property
    def sigma(self) -> float:
        """The noise's per-coordinate standard deviation."""
        return self._noise().sigma

    @property
    def lambd(self) -> float:
        """The noise's own parameter (``noise.lambda_meaning``: std, Laplace scale, half-width)."""
        return self._noise().lambd

    @property
    def needs_unit_interval(self) -> bool:
        return bool(self.bounded_inputs or getattr(self.noise, "unit_interval", False))

    @property
    def has_two_bound(self) -> bool:
        if type(self).radius_two_bound is not SmoothingCertifier.radius_two_bound:
            return True
        return self.noise is not None and bool(self.noise.has_two_bound)

    def _noise(self) -> Any:
        if self.noise is None:
            raise NotImplementedError(f"{type(self).__name__} has no noise object: pass noise= or override "
                                      "perturb_ and radius")
        return self.noise

    def perturb_(self, out: torch.Tensor, x: torch.Tensor, generator: torch.Generator) -> None:
        """Fill ``out`` (m, *input_shape) in place with m noisy versions of x (*input_shape), using ``generator``."""
        self._noise().perturb_(out, x, generator)

    def radius(self, p_lower: np.ndarray) -> np.ndarray:
        """Certified radius from a lower bound p_lower > 1/2 on the top-class probability (p_B := 1 - p_lower)."""
        return self._noise().radius(p_lower)

    def radius_two_bound(self, p_lower: np.ndarray, p_upper: np.ndarray) -> np.ndarray:
        """Radius from p_lower on c_A and p_upper on every other class (p_lower > p_upper)."""
        if self.noise is None or not self.noise.has_two_bound:
            raise ValueError(f"two_bound=True is not available for {type(self).__name__} (method {self.name!r})")
        return self.noise.radius_two_bound(p_lower, p_upper)

    # ---- CLI -------------------------------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Noise flags (``--sigma`` and the noise's own ``lambda_flag``) and the sampling flags."""
        nc = cls.noise_class
        if nc is not None:
            conv = "" if cls.lambda_flag is None else f" ({cls.lambda_flag[0]} = {nc.lambda_per_sigma:.6g} sigma)"
            parser.add_argument("--sigma", type=float, default=None,
                                help=f"noise standard deviation per coordinate{conv}")
            if cls.lambda_flag is not None:
                parser.add_argument(cls.lambda_flag[0], dest="lambd", type=float, default=None,
                                    metavar=cls.lambda_flag[0].lstrip("-").upper(),
                                    help=f"{cls.lambda_flag[1]}; instead of --sigma")
        parser.add_argument("--n0", type=int, default=100, help="selection samples per input (default 100)")
        parser.add_argument("--n", type=int, default=100_000, help="estimation samples per input (default 100000)")
        parser.add_argument("--alpha", type=float, default=0.001,
                            help="failure probability of each certificate, one-sided (default 0.001)")
        parser.add_argument("--seed", type=int, default=0,
                            help="noise seed; input idx uses a seed derived from (seed, idx) (default 0)")
        parser.add_argument("--cp-mode", choices=CP_MODES, default="one_sided",
                            help="Clopper-Pearson convention: one_sided at alpha (Cohen, default) or two_sided")
        if nc is None or nc.supports_two_bound():
            parser.add_argument("--two-bound", action="store_true",
                                help="bound p_A and p_B separately (Bonferroni split of alpha)")

    @classmethod
    def noise_scale(cls, args: argparse.Namespace) -> tuple[float | None, float | None]:
        """(sigma, lambd) from the CLI: exactly one of --sigma or the noise's own flag."""
        sigma, lambd = getattr(args, "sigma", None), getattr(args, "lambd", None)
        flags = "--sigma" + ("" if cls.lambda_flag is None else f" or {cls.lambda_flag[0]}")
        if (sigma is None) == (lambd is None):
            raise ValueError(f"--method {cls.name} needs exactly one of {flags}")
        return sigma, lambd

    @classmethod
    def sampling_kwargs(cls, args: argparse.Namespace) -> dict[str, Any]:
        """The sampling CLI flags as constructor keywords."""
        return dict(n0=args.n0, n=args.n, alpha=args.alpha, batch=args.batch, seed=args.seed,
                    cp_mode=getattr(args, "cp_mode", "one_sided"), two_bound=getattr(args, "two_bound", False))

    def validate_inputs(self, x: torch.Tensor) -> None:
        check_inputs(x, torch.device("cpu"), self.needs_unit_interval, type(self).__name__)

    # ---- CERTIFY / PREDICT -------------------------------------------------------------------------------------
    def _generators(self, n_inputs: int, seeds: Sequence[int] | None, stream: int, device: torch.device):
        if seeds is None:
            seeds = [derive_seed(self.seed, i, stream) for i in range(n_inputs)]
        else:
            if len(seeds) != n_inputs:
                raise ValueError(f"seeds must have one entry per input ({n_inputs}), got {len(seeds)}")
            seeds = [derive_seed(self.seed, int(s), stream) for s in seeds]
        return make_generators(seeds, device)

    def sample(self, classifier: Any, x: torch.Tensor, num: int, seeds: Sequence[int] | None = None,
               stream: int = CERTIFY_STREAM, generators: list[torch.Generator] | None = None) -> np.ndarray:
        """Counts (N, K) of the base classifier on ``num`` noisy samples of each input."""
        x = check_inputs(x, classifier.device, self.needs_unit_interval, type(self).__name__,
                         getattr(classifier, "dtype", None))
        if generators is None:
            generators = self._generators(x.shape[0], seeds, stream, x.device)
        return sample_counts(classifier, x, check_count(num, "num"), self.perturb_, generators, self.batch)

    def certify(self, classifier: Any, x: torch.Tensor, seeds: Sequence[int] | None = None) -> list[Certificate]:
        """CERTIFY each input of x (N, *input_shape); returns N certificates (see the module docstring)."""
        x = check_inputs(x, classifier.device, self.needs_unit_interval, type(self).__name__,
                         getattr(classifier, "dtype", None))
        gens = self._generators(x.shape[0], seeds, CERTIFY_STREAM, x.device)
        counts0 = sample_counts(classifier, x, self.n0, self.perturb_, gens, self.batch)   # selection
        c_hat = counts0.argmax(axis=1)
        counts = sample_counts(classifier, x, self.n, self.perturb_, gens, self.batch)     # fresh estimation
        return self.certificates_from_counts(c_hat, counts)

    def certificates_from_counts(self, c_hat: np.ndarray, counts: np.ndarray) -> list[Certificate]:
        """Certificates from selected classes c_hat (N,) and independent estimation counts (N, K)."""
        n_a = counts[np.arange(len(c_hat)), c_hat]
        k = counts.shape[1]
        if not self.two_bound:
            p_low = np.atleast_1d(cp_lower(n_a, self.n, self.alpha, self.cp_mode))
            ok = p_low > 0.5
            radii = np.zeros(len(c_hat))
            if ok.any():
                radii[ok] = self.radius(p_low[ok])
            p_up = [None] * len(c_hat)
        else:
            p_low = np.atleast_1d(cp_lower(n_a, self.n, self.alpha / 2, self.cp_mode))
            others = counts.copy()
            others[np.arange(len(c_hat)), c_hat] = -1
            p_up = np.atleast_1d(cp_upper(others.max(axis=1), self.n, self.alpha / (2 * (k - 1)), self.cp_mode))
            ok = p_low > p_up
            radii = np.zeros(len(c_hat))
            if ok.any():
                radii[ok] = self.radius_two_bound(p_low[ok], p_up[ok])
        out = []
        for i in range(len(c_hat)):
            r = float(radii[i])
            certified = bool(ok[i])
            out.append(Certificate(prediction=int(c_hat[i]) if certified else ABSTAIN,
                                   radius=max(r, 0.0) if certified else 0.0, norm=self.norm,
                                   p_lower=float(p_low[i]), counts=counts[i].copy(),
                                   p_upper=None if p_up[i] is None else float(p_up[i])))
        return out

    def predict(self, classifier: Any, x: torch.Tensor, n: int | None = None, alpha: float | None = None,
                variant: str = "two_sided", seeds: Sequence[int] | None = None) -> np.ndarray:
        """PREDICT each input of x with ``n`` samples at level ``alpha`` (defaults: this certifier's n, alpha).

        ``variant="two_sided"`` is PREDICT2 (Cohen's), ``"one_sided"`` is PREDICT1. Returns int labels (N,),
        ABSTAIN (-1) where the test does not reject.
        """
        n = self.n if n is None else check_count(n, "n")
        alpha = self.alpha if alpha is None else check_alpha(alpha)
        if variant not in PREDICT_VARIANTS:
            raise ValueError(f"variant must be one of {PREDICT_VARIANTS}, got {variant!r}")
        counts = self.sample(classifier, x, n, seeds=seeds, stream=PREDICT_STREAM)
        out = np.full(len(counts), ABSTAIN, dtype=np.int64)
        for i, c in enumerate(counts):
            order = np.argsort(-c, kind="stable")
            n_a, n_b = int(c[order[0]]), int(c[order[1]])
            if variant == "one_sided":
                pval = binom_pvalue_one_sided(n_a, n)
            else:
                pval = binom_pvalue_two_sided(n_a, n_a + n_b)
            if pval <= alpha:
                out[i] = order[0]
        return out
