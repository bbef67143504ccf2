"""The certification TSV (Cohen et al.'s schema plus ``p_lower`` and ``norm``), written one flushed row per input.

Header: ``idx label predict radius correct time p_lower norm``; ``predict`` is -1 for ABSTAIN (radius 0),
``time`` is seconds per input, ``p_lower`` is ``nan`` for deterministic certifiers. ``radius`` is written with six
decimals **rounded down** (``format_radius``), so the file never claims more than the certificate: 1/255 is written
0.003921, not 0.003922.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

RADIUS_DECIMALS = 6

COLUMNS = ("idx", "label", "predict", "radius", "correct", "time", "p_lower", "norm")
HEADER = "\t".join(COLUMNS)


def format_row(idx: int, label: int, predict: int, radius: float, seconds: float, p_lower: float | None,
               norm: str) -> str:
    p = "nan" if p_lower is None else f"{p_lower:.10g}"
    return (f"{idx}\t{label}\t{predict}\t{format_radius(radius)}\t{int(predict == label)}\t{seconds:.4f}\t{p}\t"
            f"{norm}")


def format_radius(radius: float, decimals: int = RADIUS_DECIMALS) -> str:
    """``radius`` with ``decimals`` decimals, rounded **down**: the largest such decimal that, read back as a float,
    is <= ``radius`` (so the file never claims more than the certificate; a radius that is a multiple of
    10^-decimals, e.g. 0.3 or an integer, is written exactly). ``inf`` stays ``inf``."""
    r = float(radius)
    if not math.isfinite(r):
        return "inf" if r > 0 else "nan"
    k = math.floor(r * 10**decimals) + 1
    while float(f"{k / 10**decimals:.{decimals}f}") > r:
        k -= 1
    return f"{k / 10**decimals:.{decimals}f}"


def load_tsv(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a certification TSV as arrays (also reads Cohen's 6-column files; time may be h:mm:ss)."""
    lines = Path(path).read_text().splitlines()
    if not lines:
        raise ValueError(f"{path}: empty file")
    cols = lines[0].split("\t")
    for need in ("idx", "label", "predict", "radius", "correct"):
        if need not in cols:
            raise ValueError(f"{path}: missing column {need!r} in header {cols}")
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    out: dict[str, np.ndarray] = {}
    for j, c in enumerate(cols):
        vals = [r[j] for r in rows]
        if c in ("idx", "label", "predict", "correct"):
            out[c] = np.array(vals, dtype=np.int64)
        elif c in ("radius", "p_lower"):
            out[c] = np.array(vals, dtype=np.float64)
        elif c == "time":
            out[c] = np.array([_seconds(v) for v in vals], dtype=np.float64)
        else:
            out[c] = np.array(vals, dtype=object)
    return out


def _seconds(v: str) -> float:
    if ":" in v:
        h, m, s = v.split(":")
        return 3600 * float(h) + 60 * float(m) + float(s)
    return float(v)
