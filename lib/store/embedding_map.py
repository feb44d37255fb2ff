"""An embedding map: a 2-D projection of the vectors plotted to PNG, coloured by label where known.

:func:`project_2d` reduces ``(N, D)`` vectors to ``(N, 2)`` with PCA
(scikit-learn; deterministic up to sign) or t-SNE (van der Maaten & Hinton
2008, "Visualizing data using t-SNE", JMLR; scikit-learn, seeded, PCA
initialisation) -- or UMAP (McInnes, Healy & Melville 2018) when the
``umap-learn`` package is installed. :func:`embedding_map` plots it with
matplotlib's non-interactive Agg backend and writes the PNG atomically.

Large sets are subsampled to ``max_points`` (seeded) before projecting: t-SNE
is O(N log N) per iteration but slow in practice beyond ~10^4 points, and a
scatter of more points than pixels shows nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.atomic import atomic_path
from replearn.lib.store.faiss_index import _as_matrix

__all__ = ["AXIS_NAMES", "METHOD_NAMES", "METHODS", "embedding_map", "project_2d"]

METHODS = ("pca", "tsne", "umap")
AXIS_NAMES = {"pca": "PC", "tsne": "t-SNE", "umap": "UMAP"}
"""How each method's axes are named ("PC 1", "t-SNE 1", ...)."""
METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
"""How each method is named in titles."""
_MARKERS = ("o", "^", "s", "D", "v")
"""Marker of each modality, in sorted order of the modality names."""
_MAX_LEGEND = 20
"""Labels shown in the legend (the most frequent); the rest are drawn grey as "other"."""


def project_2d(x: np.ndarray, method: str = "pca", *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """Project ``x`` ``(N, D)`` to ``(N, 2)`` float32.

    Args:
        x: finite vectors, N >= 2 (t-SNE: N >= 3; its perplexity is lowered to ``(N - 1) / 3`` when too large).
        method: ``"pca"``, ``"tsne"`` or ``"umap"`` (needs ``umap-learn``).
        seed: random state for t-SNE / UMAP.
        perplexity: t-SNE perplexity, typically 5..50 (van der Maaten & Hinton 2008).

    Raises:
        EmbeddingsError: unknown method, too few or non-finite vectors, ``umap`` not installed.
    """
    if method not in METHODS:
        raise EmbeddingsError(f"method must be one of {METHODS}, got {method!r}")
    x = _as_matrix(x, "vectors")
    n, d = x.shape
    if n < 2:
        raise EmbeddingsError(f"an embedding map needs at least 2 vectors, got {n}")
    if d == 1:
        return np.hstack([x, np.zeros_like(x)])
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float32)
    if method == "tsne":
        if n < 3:
            raise EmbeddingsError(f"t-SNE needs at least 3 vectors, got {n}; use method='pca'")
        from sklearn.manifold import TSNE

        p = min(float(perplexity), (n - 1) / 3.0)
        return TSNE(n_components=2, perplexity=p, init="pca", random_state=seed).fit_transform(x).astype(np.float32)
    try:
        import umap  # type: ignore[import-not-found]
    except ImportError:
        raise EmbeddingsError("method='umap' needs the umap-learn package (pip install umap-learn); "
                              "use method='pca' or 'tsne'") from None
    return umap.UMAP(n_components=2, random_state=seed).fit_transform(x).astype(np.float32)


def embedding_map(
    vectors: np.ndarray,
    path: Path | str,
    *,
    labels: Sequence[str | None] | None = None,
    modality: Sequence[str | None] | None = None,
    method: str = "pca",
    max_points: int = 20_000,
    seed: int = 0,
    title: str | None = None,
    dpi: int = 140,
) -> Path:
    """Plot a 2-D projection of ``vectors`` to the PNG ``path`` (atomically); return ``Path(path)``.

    Args:
        vectors: ``(N, D)`` finite vectors.
        path: output ``.png``; its parent is created; replaced atomically.
        labels: ``N`` class labels (strings, ``None`` for unknown), or None:
            points are coloured by label, the ``20`` most frequent in the
            legend, the rest and unknown ones grey.
        modality: ``N`` kinds of item (``"image"``, ``"text"``, ``None``), or None: with more than
            one kind, each kind is drawn with its own marker (circle, triangle, square, ...), named in
            the legend.
        method: ``"pca"`` (default), ``"tsne"`` or ``"umap"`` (see :func:`project_2d`).
        max_points: subsample (seeded) to at most this many points, >= 2.
        seed: subsample and projection seed.
        title: plot title; default ``"<method>, N points"``.
        dpi: PNG resolution (figure 10 x 7.5 inches: 1400 x 1050 pixels at the default).

    Raises:
        EmbeddingsError: ``labels`` or ``modality`` of the wrong length, and as :func:`project_2d`.
    """
    x = _as_matrix(vectors, "vectors")
    n = len(x)
    for name, col in (("labels", labels), ("modality", modality)):
        if col is not None and len(col) != n:
            raise EmbeddingsError(f"{name} must have one entry per vector (N={n}), got {len(col)}")
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
        raise EmbeddingsError(f"max_points must be an int >= 2, got {max_points!r}")
    rows = np.arange(n)
    if n > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
    xy = project_2d(x[rows], method, seed=seed)
    fig = _scatter_figure(xy, _subset(labels, rows), _subset(modality, rows))
    ax = fig.axes[0]
    axis = AXIS_NAMES[method]
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    ax.set_title(title or f"{method.upper()}, {len(rows)} points"
                 + (f" of {n}" if len(rows) < n else ""))
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _subset(col: Sequence[str | None] | None, rows: np.ndarray) -> np.ndarray | None:
    """``col[rows]`` as an object array of str / None, or None."""
    if col is None:
        return None
    return np.array([None if v is None else str(v) for v in col], dtype=object)[rows]


def _top_labels(lab: np.ndarray) -> list[str]:
    """The ``_MAX_LEGEND`` most frequent known labels, sorted (numerically when they all are numbers)."""
    known = np.array([v is not None for v in lab])
    if not known.any():
        return []
    names, counts = np.unique(lab[known].astype(str), return_counts=True)
    top = [str(names[i]) for i in np.argsort(-counts, kind="stable")[:_MAX_LEGEND]]
    numeric = all(t.lstrip("-").isdigit() for t in top)
    return sorted(top, key=int) if numeric else sorted(top)


def _palette(n: int) -> list:
    """``n`` distinct colours (n <= 20) without the greys of tab10 / tab20, kept for unknown labels."""
    import matplotlib

    if n <= 10:
        colours = [c for i, c in enumerate(matplotlib.colormaps["tab10"].colors) if i != 7]
        return (colours + [matplotlib.colormaps["tab20b"].colors[0]])[:n]
    colours = [c for i, c in enumerate(matplotlib.colormaps["tab20"].colors) if i not in (14, 15)]
    return (colours + list(matplotlib.colormaps["tab20b"].colors[:2]))[:n]


def _scatter_figure(xy: np.ndarray, lab: np.ndarray | None, mod: np.ndarray | None):
    """The Figure: points coloured by label (legend: labels, then one marker per modality)."""
    # the Agg canvas directly: no pyplot, no global backend switch
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(10, 7.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    m = len(xy)
    size = max(6.0, min(30.0, 12000.0 / m))
    kinds = [] if mod is None else sorted({str(v) for v in mod if v is not None})
    kinds = kinds if len(kinds) > 1 else []
    shape = {k: _MARKERS[i % len(_MARKERS)] for i, k in enumerate(kinds)}
    markers = np.array([shape.get(str(v), "o") for v in mod], dtype=object) if kinds else np.full(m, "o", object)
    top = _top_labels(lab) if lab is not None else []
    colour = np.full(m, -1)
    if top:
        colour = np.array([top.index(v) if v in top else -1 for v in lab])
    palette = _palette(len(top))
    grey = "#8c8c8c" if kinds else "lightgrey"                                  # darker beside a marker legend
    handles = []
    for c in range(-1, len(top)):
        for mk in dict.fromkeys(markers.tolist()):
            sel = (colour == c) & (markers == mk)
            if not sel.any():
                continue
            col = grey if c < 0 else palette[c]
            ax.scatter(xy[sel, 0], xy[sel, 1], s=size, color=col, marker=mk, alpha=0.5 if c < 0 else 0.7,
                       linewidths=0)
        if lab is not None and (colour == c).any():
            name = ("no label" if kinds else "other / unknown") if c < 0 else top[c]
            col = grey if c < 0 else palette[c]
            shapes = set(markers[colour == c].tolist())                      # the rows' marker, if they share one
            handles.append(Line2D([], [], ls="", marker=shapes.pop() if len(shapes) == 1 else "o", color=col,
                                  label=name, markersize=9))
    handles += [Line2D([], [], ls="", marker=shape[k], color="dimgrey", label=k, markersize=9) for k in kinds]
    if handles:
        ax.legend(handles=handles, fontsize=11, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  title="label" if lab is not None else None, title_fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig
