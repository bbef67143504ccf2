"""A tiny numpy raster used by the environments' ``render()`` (no display, no matplotlib state)."""

from __future__ import annotations

import numpy as np


class Canvas:
    """RGB uint8 image of the world rectangle [x0, x1] x [y0, y1]; y grows upwards in world units."""

    WHITE = (255, 255, 255)
    BLACK = (0, 0, 0)
    GREY = (225, 225, 225)
    CYAN = (0, 200, 230)
    BLUE = (20, 40, 220)
    MAGENTA = (220, 0, 200)
    GREEN = (0, 170, 0)
    ORANGE = (255, 140, 0)

    def __init__(self, x0: float, x1: float, y0: float, y1: float, px_per_unit: int = 20) -> None:
        self.x0, self.x1, self.y0, self.y1, self.k = x0, x1, y0, y1, px_per_unit
        self.w = max(1, int(round((x1 - x0) * px_per_unit)))
        self.h = max(1, int(round((y1 - y0) * px_per_unit)))
        self.image = np.full((self.h, self.w, 3), 255, dtype=np.uint8)

    def _px(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        col = np.floor((np.asarray(x) - self.x0) * self.k).astype(int)
        row = np.floor((self.y1 - np.asarray(y)) * self.k).astype(int)
        return row, col

    def rect(self, xa: float, ya: float, xb: float, yb: float, colour: tuple[int, int, int]) -> None:
        """Fill the world rectangle [xa, xb] x [ya, yb] (clipped to the canvas)."""
        r0, c0 = self._px(xa, yb)
        r1, c1 = self._px(xb, ya)
        r0, r1 = max(int(r0), 0), min(int(r1) + 1, self.h)
        c0, c1 = max(int(c0), 0), min(int(c1) + 1, self.w)
        if r0 < r1 and c0 < c1:
            self.image[r0:r1, c0:c1] = colour

    def cell(self, x: float, y: float, colour: tuple[int, int, int], size: float = 0.8) -> None:
        """A square of side ``size`` centred on the integer cell (x, y)."""
        h = size / 2
        self.rect(x - h, y - h, x + h, y + h, colour)

    def disc(self, x: float, y: float, radius: float, colour: tuple[int, int, int]) -> None:
        rr, cc = np.mgrid[0:self.h, 0:self.w]
        r, c = self._px(x, y)
        rad = radius * self.k
        self.image[(rr - r) ** 2 + (cc - c) ** 2 <= rad**2] = colour

    def polyline(self, pts: np.ndarray, colour: tuple[int, int, int], max_jump: float | None = None,
                 period: float | None = None) -> None:
        """Draw segments between consecutive points.

        ``period``: the world is a torus of that width in x and y; a step that crossed the boundary is drawn as a
        wrap (out through one edge along the true, shortest displacement, back in through the opposite edge).
        ``max_jump``: without ``period``, segments longer than this are skipped.
        """
        pts = np.asarray(pts, dtype=float)
        for p, q in zip(pts[:-1], pts[1:]):
            if period is not None:
                delta = q - p
                delta = delta - period * np.round(delta / period)  # shortest displacement on the torus
                if np.allclose(p + delta, q):
                    self._segment(p, q, colour)
                else:  # the wrap: leave through one edge, come back through the opposite one
                    self._segment(p, p + delta, colour)
                    self._segment(q - delta, q, colour)
                continue
            if max_jump is not None and np.linalg.norm(q - p) > max_jump:
                continue
            self._segment(p, q, colour)

    def _segment(self, p: np.ndarray, q: np.ndarray, colour: tuple[int, int, int]) -> None:
        """A 2-pixel-wide straight segment, clipped to the canvas."""
        n = int(np.ceil(np.linalg.norm(q - p) * self.k * 2)) + 2
        t = np.linspace(0.0, 1.0, n)[:, None]
        seg = p[None] * (1 - t) + q[None] * t
        r, c = self._px(seg[:, 0], seg[:, 1])
        ok = (r >= 0) & (r < self.h) & (c >= 0) & (c < self.w)
        for dr in (0, 1):
            for dc in (0, 1):
                rr = np.clip(r[ok] + dr, 0, self.h - 1)
                cc = np.clip(c[ok] + dc, 0, self.w - 1)
                self.image[rr, cc] = colour

    def grid(self, step: float, colour: tuple[int, int, int] = GREY) -> None:
        """Light grid lines every ``step`` world units (through integer multiples of step)."""
        for x in np.arange(np.ceil(self.x0 / step) * step, self.x1 + 1e-9, step):
            c = int(np.floor((x - self.x0) * self.k))
            if 0 <= c < self.w:
                self.image[:, c] = colour
        for y in np.arange(np.ceil(self.y0 / step) * step, self.y1 + 1e-9, step):
            r = int(np.floor((self.y1 - y) * self.k))
            if 0 <= r < self.h:
                self.image[r, :] = colour


def draw_goal_set_frame(canvas: Canvas, goals: np.ndarray, reached: set[tuple[int, int]],
                        visited: set[tuple[int, int]], path: np.ndarray, max_jump: float | None = None,
                        period: float | None = None) -> np.ndarray:
    """Thesis Fig. 8.4 style: cyan = goals never reached, blue = goals reached, magenta = visited non-goal cells,
    black line = the continuous trajectory, green dot = the start, black dot = the current position.
    ``period``: torus width (DriveSeek), so wrap-arounds are drawn as wraps (see :meth:`Canvas.polyline`)."""
    canvas.grid(1.0)
    goal_set = {(int(x), int(y)) for x, y in goals}
    for x, y in visited - goal_set:
        canvas.cell(x, y, Canvas.MAGENTA, 0.6)
    for x, y in goal_set:
        canvas.cell(x, y, Canvas.BLUE if (x, y) in reached else Canvas.CYAN, 0.8)
    if len(path) > 1:
        canvas.polyline(path, Canvas.BLACK, max_jump=max_jump, period=period)
    canvas.disc(path[0, 0], path[0, 1], 0.25, Canvas.GREEN)
    canvas.disc(path[-1, 0], path[-1, 1], 0.25, Canvas.BLACK)
    return canvas.image


def _rgb(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    return tuple(c / 255 for c in colour)


# Legend entries (label, RGB 0-255, marker kind) of each environment's rgb_array frame.
GOAL_SET_LEGEND = [("goal never reached", Canvas.CYAN, "square"), ("goal reached", Canvas.BLUE, "square"),
                   ("visited non-goal cell", Canvas.MAGENTA, "square"), ("trajectory", Canvas.BLACK, "line"),
                   ("start", Canvas.GREEN, "dot"), ("final position", Canvas.BLACK, "dot")]
FRAME_LEGENDS = {
    "ContinuousSeek": [("goal box (not reached)", Canvas.CYAN, "square"), ("goal box (reached)", Canvas.BLUE, "square"),
                       ("trajectory (coords 0, 1)", Canvas.MAGENTA, "line"), ("start", Canvas.GREEN, "dot"),
                       ("final state", Canvas.BLACK, "dot")],
    "DriveSeek": GOAL_SET_LEGEND,
    "NoisySeek": GOAL_SET_LEGEND,
    "BitFlipping": [("bit = 1", Canvas.BLACK, "square"), ("bit = 0", Canvas.WHITE, "square"),
                    ("goal bit = 1 (last row)", Canvas.BLUE, "square")],
}


def frame_figure(frame: np.ndarray, title: str, legend: list[tuple[str, tuple[int, int, int], str]],
                 xlabel: str = "", ylabel: str = "", width_in: float = 5.5):
    """A matplotlib Figure of one rendered frame with a title and a legend beside it (readable at any frame
    size: small frames are scaled up with nearest-neighbour pixels). Save it with ``fig.savefig(path, dpi=110)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = frame.shape[:2]
    height = max(width_in * h / w, 3.5) + 0.9  # short frames (BitFlipping early on) still get a readable figure
    fig = plt.figure(figsize=(width_in + 2.6, height))
    ax = fig.add_axes((0.03, 0.03, width_in / (width_in + 2.6) - 0.03, 1 - 0.9 / height))
    ax.imshow(frame, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.legend(handles=legend_handles(legend), loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9,
              frameon=False)
    return fig


def legend_handles(legend: list[tuple[str, tuple[int, int, int], str]]) -> list:
    """Matplotlib legend handles for ``(label, rgb, kind)`` entries (kind: "line", "dot" or "square"), e.g.
    :data:`GOAL_SET_LEGEND`, for drawing a rendered frame on one's own axes."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    for label, colour, kind in legend:
        if kind == "line":
            handles.append(Line2D([0], [0], color=_rgb(colour), lw=2, label=label))
        elif kind == "dot":
            handles.append(Line2D([0], [0], marker="o", color="w", markerfacecolor=_rgb(colour), markersize=9,
                                  label=label))
        else:
            handles.append(Patch(facecolor=_rgb(colour), edgecolor="grey", label=label))
    return handles


def save_frame_figure(frame: np.ndarray, path, title: str, legend: list[tuple[str, tuple[int, int, int], str]],
                      **kwargs):
    """:func:`frame_figure` saved as a PNG at ``path`` (dpi 110); returns the path."""
    import matplotlib.pyplot as plt

    fig = frame_figure(frame, title, legend, **kwargs)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
