"""Greedy text-label placement for scatter plots: each label where it overlaps nothing already placed.

For each point in the given order (most important first) the candidate
positions around it are tried, nearest first; the first whose text box overlaps
no placed label, no marker and stays inside the axes wins. When every candidate
collides, the one with the least overlapping area is kept, so every point is
named. Far candidates get a thin leader line to their point. A simple stand-in
for adjustText; O(labels x candidates x placed) box tests, fine for a few hundred labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["place_labels"]

_NEAR = ((5, 3, "left", "bottom"), (5, -3, "left", "top"), (-5, 3, "right", "bottom"), (-5, -3, "right", "top"),
         (0, 7, "center", "bottom"), (0, -7, "center", "top"), (8, 0, "left", "center"), (-8, 0, "right", "center"))
"""Offsets (points) and alignments next to the marker, no leader line."""
_FAR = tuple((dx * f, dy * f, ha, va) for f in (2.5, 4, 6, 9) for dx, dy, ha, va in _NEAR)
"""The same directions 2.5x to 9x further out, with a leader line."""
_MARKER_PX = 4.0
"""Half-width (pixels) of the box kept free around every marker."""


def _overlap(box: np.ndarray, boxes: np.ndarray) -> float:
    """Total intersection area of ``box`` ``(4,)`` [x0, y0, x1, y1] with each of ``boxes`` ``(M, 4)``."""
    if not len(boxes):
        return 0.0
    w = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    h = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return float((np.clip(w, 0, None) * np.clip(h, 0, None)).sum())


def _outside(box: np.ndarray, frame: np.ndarray) -> float:
    """Area of ``box`` outside the axes ``frame`` (both [x0, y0, x1, y1])."""
    inside = _overlap(box, frame[None])
    return float((box[2] - box[0]) * (box[3] - box[1])) - inside


def place_labels(ax, xy: np.ndarray, labels: Sequence[str], *, colors: Sequence | None = None,
                 emphasis: Sequence[bool] | np.ndarray | None = None, fontsize: float = 9.0) -> list:
    """Annotate point ``i`` at data coordinates ``xy[i]`` with ``labels[i]``, avoiding overlaps (module docstring).

    The axes' limits and position must be final (placement works in display pixels).

    Args:
        ax: a matplotlib ``Axes`` whose figure has a canvas (e.g. ``FigureCanvasAgg``).
        xy: ``(M, 2)`` data coordinates, most important point first.
        labels: ``M`` strings.
        colors: ``M`` text colours (any matplotlib colour), default black.
        emphasis: ``M`` flags: bold and 1.3x larger text (probe words).
        fontsize: text size in points of the other labels.

    Returns:
        the ``M`` matplotlib ``Annotation`` objects, in input order.
    """
    from matplotlib.text import Text

    renderer = ax.figure.canvas.get_renderer()
    pts = ax.transData.transform(np.asarray(xy, dtype=float))                   # (M, 2) pixels
    frame = np.asarray(ax.get_window_extent(renderer).extents)
    placed = [np.concatenate([p - _MARKER_PX, p + _MARKER_PX]) for p in pts]  # marker boxes are obstacles
    out = []
    for i, text in enumerate(labels):
        strong = bool(emphasis[i]) if emphasis is not None else False
        style = {"fontsize": fontsize * (1.3 if strong else 1.0), "fontweight": "bold" if strong else "normal",
                 "color": "black" if colors is None else colors[i]}
        others = np.array([b for j, b in enumerate(placed) if j != i])
        best, best_cost = None, float("inf")
        for n, (dx, dy, ha, va) in enumerate(_NEAR + _FAR):
            arrow = {"arrowstyle": "-", "color": "#888888", "lw": 0.5} if n >= len(_NEAR) else None
            ann = ax.annotate(text, xy[i], xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                              arrowprops=arrow, **style)
            ann.update_positions(renderer)
            box = np.asarray(Text.get_window_extent(ann, renderer).extents)        # the text, not its leader
            cost = _overlap(box, others) + 4.0 * _outside(box, frame)
            if cost < best_cost:
                if best is not None:
                    best[0].remove()
                best, best_cost = (ann, box), cost
            else:
                ann.remove()
            if cost == 0.0:
                break
        placed.append(best[1])
        out.append(best[0])
    return out
