"""The certificate every certifier returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ABSTAIN = -1


@dataclass(frozen=True)
class Certificate:
    """Outcome of certifying one input.

    prediction: class index of the smoothed classifier, or ``ABSTAIN`` (-1).
    radius: certified radius in the units of ``norm`` (an l2/l1 distance, a number of pixels, patches or
        poisoned samples, ...); 0.0 when abstained. Guarantee (method-specific, stated by each certifier): every
        input within ``radius`` of x is classified as ``prediction`` by the smoothed classifier.
    norm: threat model, e.g. "l2", "l1", "l0", "lp:0.5", "patch", "poison".
    p_lower: lower confidence bound on the top-class probability (randomized certifiers), else None.
    counts: per-class vote counts used for the certificate (None if not kept).
    p_upper: upper confidence bound on the runner-up probability when it was bounded separately, else None.
    abstained (property): True iff prediction is ABSTAIN.
    """

    prediction: int
    radius: float
    norm: str
    p_lower: float | None = None
    counts: np.ndarray | None = field(default=None, compare=False)
    p_upper: float | None = None

    @property
    def abstained(self) -> bool:
        return self.prediction == ABSTAIN


def radius_or_abstain(radius, p_lower, p_upper=None):
    """The convention of every pure radius function ``radius(p_lower[, p_upper])``: the radius (clipped at 0 against
    rounding) where the bound certifies -- p_lower > 1/2, or p_lower > p_upper when ``p_upper`` is given (strict,
    decided on the floats as given) -- and ``ABSTAIN`` (-1.0, "no certificate") elsewhere, never a negative radius.

    Scalars in, a numpy float64 scalar out; arrays in, a float64 array of the broadcast shape out."""
    r = np.asarray(radius, dtype=np.float64)
    pl = np.asarray(p_lower, dtype=np.float64)
    ok = pl > 0.5 if p_upper is None else pl > np.asarray(p_upper, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = np.where(ok, np.maximum(r, 0.0), float(ABSTAIN))
    return out[()] if out.ndim == 0 else out
