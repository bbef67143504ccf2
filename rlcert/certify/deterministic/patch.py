"""(De)randomized smoothing against one adversarial m x m patch: column/band and block ablation
(Levine 2023, Ch.6 / App. E; spec section 5).

The image ``x`` (N, C, H, W) in [0, 1] is encoded as ``(x, 1 - x)`` (2C channels, NULL = all zeros: spec 0.5).
Column (band) smoothing keeps one band of ``s`` full-height columns starting at column ``p`` (wrapping around the
right border) and sets every other pixel to NULL; block smoothing keeps one ``s x s`` block with upper-left corner
``(p_y, p_x)``, wrapping around both borders. Every position is evaluated (w bands, h*w blocks; with ``stride``
t only starts that are multiples of t). The base classifier votes ``f_c = 1[softmax_c >= theta]`` (several or no
classes may vote), or top-1 when ``theta`` is None. ``g(x) = argmax n_c`` (smallest index on ties).

Guarantee (Theorems 6.1/6.2, exact and deterministic): a patch can change at most ``K(m)`` base evaluations --
``K = m + s - 1`` (columns) or ``(m + s - 1)^2`` (blocks) for stride 1; for other strides ``K(m)`` is the exact
maximum over patch positions, computed by enumeration -- and each changed evaluation moves any class count by
at most 1. So if ``n_c >= max_{c'!=c}(n_c' + 1[c' < c]) + 2 K(m)`` then every ``x'`` that differs from ``x`` only
inside one m x m patch (any location inside the image, any content) has ``g(x') = c``. The certificate's
``radius`` is the largest such patch side m (0: none), ``norm = "patch"``.

Multi-band / multi-block (App. E.4, ``retain = kappa > 1``): the image is cut into G grid-aligned units (bands
``[g s, (g + 1) s)`` or s x s blocks, no wrap-around) and every one of the ``C(G, kappa)`` unit subsets is
evaluated; a patch meeting at most A units changes at most ``K = C(G, kappa) - C(G - A, kappa)`` evaluations.
``orientation="rows"`` (column smoothing only) uses bands of rows (Table E.4).
"""

from __future__ import annotations

import abc
import argparse
import itertools
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
from rlcert.certify.deterministic.enumeration import add_argument_once, check_batch_size, device_of


def encode_null(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N, 2C, H, W) = (x, 1 - x); ablated pixels are then set to 0 (NULL)."""
    return torch.cat([x, 1 - x], dim=1)


def band_starts(size: int, stride: int) -> np.ndarray:
    return np.arange(0, size, stride)


def axis_masks(size: int, width: int, stride: int) -> torch.Tensor:
    """(P, size) 0/1 masks of the wrap-around windows [p, p + width) mod size for starts p = 0, stride, ..."""
    starts = band_starts(size, stride)
    idx = (starts[:, None] + np.arange(width)[None, :]) % size
    m = np.zeros((len(starts), size), dtype=np.float32)
    np.put_along_axis(m, idx, 1.0, axis=1)
    return torch.from_numpy(m)


def grid_axis_masks(size: int, width: int) -> torch.Tensor:
    """(G, size) masks of the grid-aligned units [g s, min((g + 1) s, size)), G = ceil(size / s) (App. E.4)."""
    starts = np.arange(0, size, width)
    m = np.zeros((len(starts), size), dtype=np.float32)
    for g, a in enumerate(starts):
        m[g, a:a + width] = 1.0
    return torch.from_numpy(m)


def max_meeting(masks: torch.Tensor, m: int) -> int:
    """Max over patch offsets a in [0, size - m] of the number of (P, size) windows meeting [a, a + m)."""
    mb = masks.numpy().astype(bool)
    return max(int(mb[:, a:a + m].any(1).sum()) for a in range(mb.shape[1] - m + 1))


def affected_on_axis(size: int, width: int, stride: int, m: int) -> int:
    """Max over patch offsets a in [0, size - m] of the number of wrap-around windows meeting the patch [a, a + m)."""
    return max_meeting(axis_masks(size, width, stride), m)


def _votes(classifier: Any, batch: torch.Tensor, theta: float | None, num_classes: int) -> torch.Tensor:
    """(B, num_classes) int64 0/1 votes of the base classifier on a batch of ablated, encoded images."""
    if theta is None:
        labels = classifier.predict(batch).long().cpu()
        return torch.nn.functional.one_hot(labels, num_classes)
    if getattr(classifier, "returns", "logits") != "logits":
        raise ValueError("theta (vote threshold) needs a base classifier that returns logits")
    probs = torch.softmax(classifier.logits(batch).float(), dim=1).cpu()  # eval mode, inference mode
    if probs.shape[1] != num_classes:
        raise ValueError(f"model must return logits of shape (B, {num_classes}), got {tuple(probs.shape)}")
    return (probs >= theta).long()


class _PatchSmoothing(Certifier):
    norm = "patch"

    def __init__(self, size: int, theta: float | None = None, stride: int = 1, batch_size: int = 1024,
                 num_classes: int | None = None, retain: int = 1) -> None:
        retain = check_count(retain, "retain (kappa, units kept per evaluation)")
        if retain > 1 and stride != 1:
            raise ValueError("stride must be 1 when retain > 1 (multi-band/block uses grid-aligned units)")
        self.retain = retain
        size = check_count(size, "band/block size s")
        if theta is not None and not (0.0 < theta <= 1.0):
            raise ValueError(f"theta must be in (0, 1] (or None for top-1 votes), got {theta!r}")
        stride = check_count(stride, "stride")
        self.size, self.theta, self.stride = size, theta, stride
        self.batch_size = check_batch_size(batch_size)
        self.num_classes = num_classes

    @abc.abstractmethod
    def window_masks(self, h: int, w: int) -> torch.Tensor:
        """(P, 1, h, w) masks of the single wrap-around bands/blocks (retain = 1)."""

    @abc.abstractmethod
    def window_affected(self, h: int, w: int, m: int) -> int:
        """Windows one m x m patch can meet (single bands/blocks)."""

    @abc.abstractmethod
    def unit_masks(self, h: int, w: int) -> torch.Tensor:
        """(G, 1, h, w) masks of the grid-aligned units (retain > 1)."""

    @abc.abstractmethod
    def units_touched(self, h: int, w: int, m: int) -> int:
        """A(m): the most grid-aligned units one m x m patch can meet."""

    def masks(self, h: int, w: int) -> torch.Tensor:
        """(P, 1, h, w) 0/1 masks of all retained regions, in evaluation order (all C(G, kappa) unit subsets when
        retain = kappa > 1)."""
        if self.retain == 1:
            return self.window_masks(h, w)
        units = self.unit_masks(h, w)
        if self.retain > len(units):
            raise ValueError(f"retain must be <= the number of units G = {len(units)}, got {self.retain}")
        combos = torch.tensor(list(itertools.combinations(range(len(units)), self.retain)))
        return units[combos].sum(1).clamp(max=1.0)

    def affected(self, h: int, w: int, m: int) -> int:
        """K(m): the most base evaluations one m x m patch inside an h x w image can change
        (retain > 1: C(G, kappa) - C(G - A, kappa), App. E.4)."""
        if self.retain == 1:
            return self.window_affected(h, w, m)
        g = len(self.unit_masks(h, w))
        a = self.units_touched(h, w, m)
        return math.comb(g, self.retain) - math.comb(g - a, self.retain)

    def _check_shape(self, x: torch.Tensor) -> tuple[int, int]:
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} takes images of shape (N, C, H, W), got {tuple(x.shape)}")
        h, w = x.shape[2:]
        if self.size > min(h, w):
            raise ValueError(f"{type(self).__name__}: band/block size s must be <= image side {min(h, w)}, "
                             f"got {self.size}")
        return h, w

    def validate_inputs(self, x: torch.Tensor) -> None:
        """Images (N, C, H, W) in [0, 1]: the NULL encoding (x, 1 - x) tells kept pixels from ablated ones (0, 0)."""
        x = as_batch(x, who=f"{type(self).__name__}: x")
        self._check_shape(x)
        if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            raise ValueError(f"{type(self).__name__} needs inputs in [0, 1] (the (x, 1 - x) NULL encoding), got "
                             f"range [{float(x.min()):g}, {float(x.max()):g}]")

    def base_input(self, x: torch.Tensor) -> torch.Tensor:
        """The (1, 2C, H, W) NULL-encoded input with only the first band/block kept."""
        return self.ablate(x[:1])[:, 0]

    def ablate(self, x: torch.Tensor) -> torch.Tensor:
        """All ablated, encoded versions of each image: (N, P, 2C, H, W)."""
        h, w = self._check_shape(x)
        masks = self.masks(h, w).to(x.device)
        return encode_null(x)[:, None] * masks[None]

    def vote_counts(self, classifier: Any, x: torch.Tensor) -> np.ndarray:
        """(N, num_classes) vote counts over all positions."""
        h, w = self._check_shape(x)
        num_classes = self.num_classes or classifier.num_classes
        device = device_of(classifier)
        masks = self.masks(h, w).to(device)
        enc = encode_null(x.to(device))
        p = masks.shape[0]
        total = x.shape[0] * p
        counts = torch.zeros(x.shape[0], num_classes, dtype=torch.int64)
        for start in range(0, total, self.batch_size):
            flat = torch.arange(start, min(start + self.batch_size, total))
            ii, jj = flat // p, flat % p
            batch = enc[ii.to(device)] * masks[jj.to(device)]
            counts.index_add_(0, ii, _votes(classifier, batch, self.theta, num_classes))
        return counts.numpy()

    def certify(self, classifier: Any, x: torch.Tensor) -> list[Certificate]:
        x = as_batch(x, who=f"{type(self).__name__}: x")
        self.validate_inputs(x)
        h, w = self._check_shape(x)
        counts = self.vote_counts(classifier, x)
        preds, kbars = vote_certificates(counts)
        ks = [self.affected(h, w, m) for m in range(1, min(h, w) + 1)]
        out = []
        for pred, kbar, cnt in zip(preds, kbars, counts):
            radius = max([m for m, k in enumerate(ks, start=1) if k <= kbar], default=0)
            out.append(Certificate(int(pred), float(radius), self.norm, None, cnt))
        return out

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Flags shared by column and block smoothing (each subclass adds its size flag first)."""
        add_argument_once(parser, "--theta", type=float, default=None,
                          help="vote threshold: f_c = 1[softmax_c >= theta]; omit for top-1 votes")
        add_argument_once(parser, "--stride", type=int, default=1,
                          help="evaluate every stride-th position (default 1)")
        add_argument_once(parser, "--retain", type=int, default=1,
                          help="kappa grid-aligned bands/blocks kept per evaluation (App. E.4; default 1)")


@register
class ColumnSmoothing(_PatchSmoothing):
    """Column (band) smoothing: w band positions, ``K = m + s - 1`` (stride 1). ``orientation="rows"`` uses
    bands of s full-width rows instead (h positions; Table E.4)."""

    name = "column"

    def __init__(self, size: int, theta: float | None = None, stride: int = 1, batch_size: int = 1024,
                 num_classes: int | None = None, orientation: str = "columns", retain: int = 1) -> None:
        super().__init__(size, theta=theta, stride=stride, batch_size=batch_size, num_classes=num_classes,
                         retain=retain)
        if orientation not in ("columns", "rows"):
            raise ValueError(f"orientation must be 'columns' or 'rows', got {orientation!r}")
        self.orientation = orientation

    def window_masks(self, h: int, w: int) -> torch.Tensor:
        if self.orientation == "rows":
            rows = axis_masks(h, self.size, self.stride)  # (P, h)
            return rows[:, None, :, None].expand(-1, 1, h, w).contiguous()
        cols = axis_masks(w, self.size, self.stride)  # (P, w)
        return cols[:, None, None, :].expand(-1, 1, h, w).contiguous()

    def window_affected(self, h: int, w: int, m: int) -> int:
        return affected_on_axis(h if self.orientation == "rows" else w, self.size, self.stride, m)

    def unit_masks(self, h: int, w: int) -> torch.Tensor:
        if self.orientation == "rows":
            return grid_axis_masks(h, self.size)[:, None, :, None].expand(-1, 1, h, w).contiguous()
        return grid_axis_masks(w, self.size)[:, None, None, :].expand(-1, 1, h, w).contiguous()

    def units_touched(self, h: int, w: int, m: int) -> int:
        return max_meeting(grid_axis_masks(h if self.orientation == "rows" else w, self.size), m)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--band-width", type=int, default=4, help="band width s in pixels (default 4)")
        parser.add_argument("--orientation", choices=["columns", "rows"], default="columns",
                            help="bands of columns (default) or of rows")
        super().add_arguments(parser)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> ColumnSmoothing:
        return cls(args.band_width, theta=args.theta, stride=args.stride, orientation=args.orientation,
                   retain=getattr(args, "retain", 1),
                   batch_size=getattr(args, "batch", None) or 1024)


@register
class BlockSmoothing(_PatchSmoothing):
    """Block smoothing: h*w block positions, ``K = (m + s - 1)^2`` (stride 1)."""

    name = "block"

    def window_masks(self, h: int, w: int) -> torch.Tensor:
        rows = axis_masks(h, self.size, self.stride)  # (Py, h)
        cols = axis_masks(w, self.size, self.stride)  # (Px, w)
        m = rows[:, None, :, None] * cols[None, :, None, :]  # (Py, Px, h, w)
        return m.reshape(-1, 1, h, w)

    def window_affected(self, h: int, w: int, m: int) -> int:
        return affected_on_axis(h, self.size, self.stride, m) * affected_on_axis(w, self.size, self.stride, m)

    def unit_masks(self, h: int, w: int) -> torch.Tensor:
        rows, cols = grid_axis_masks(h, self.size), grid_axis_masks(w, self.size)
        return (rows[:, None, :, None] * cols[None, :, None, :]).reshape(-1, 1, h, w)

    def units_touched(self, h: int, w: int, m: int) -> int:
        return max_meeting(grid_axis_masks(h, self.size), m) * max_meeting(grid_axis_masks(w, self.size), m)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--block-size", type=int, default=4, help="block side s in pixels (default 4)")
        super().add_arguments(parser)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> BlockSmoothing:
        return cls(args.block_size, theta=args.theta, stride=args.stride, retain=getattr(args, "retain", 1),
                   batch_size=getattr(args, "batch", None) or 1024)
