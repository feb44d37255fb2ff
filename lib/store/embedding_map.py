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

__all__ = ["METHODS", "embedding_map", "project_2d"]

METHODS = ("pca", "tsne", "umap")
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
    method: str = "pca",
    max_points: int = 20_000,
    seed: int = 0,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Plot a 2-D projection of ``vectors`` to the PNG ``path`` (atomically); return ``Path(path)``.

    Args:
        vectors: ``(N, D)`` finite vectors.
        path: output ``.png``; its parent is created; replaced atomically.
        labels: ``N`` class labels (strings, ``None`` for unknown), or None:
            points are coloured by label, the ``20`` most frequent in the
            legend, the rest and unknown ones grey.
        method: ``"pca"`` (default), ``"tsne"`` or ``"umap"`` (see :func:`project_2d`).
        max_points: subsample (seeded) to at most this many points, >= 2.
        seed: subsample and projection seed.
        title: plot title; default ``"<method>, N points"``.
        dpi: PNG resolution (figure 7 x 6 inches).

    Raises:
        EmbeddingsError: ``labels`` of the wrong length, and as :func:`project_2d`.
    """
    x = _as_matrix(vectors, "vectors")
    n = len(x)
    if labels is not None and len(labels) != n:
        raise EmbeddingsError(f"labels must have one entry per vector (N={n}), got {len(labels)}")
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
        raise EmbeddingsError(f"max_points must be an int >= 2, got {max_points!r}")
    rows = np.arange(n)
    if n > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
    xy = project_2d(x[rows], method, seed=seed)

    import matplotlib  # the Agg canvas directly: no pyplot, no global backend switch
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    size = max(1.0, min(20.0, 4000.0 / len(rows)))
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6, linewidths=0)
    else:
        lab = np.array([None if v is None else str(v) for v in labels], dtype=object)[rows]
        known = np.array([v is not None for v in lab])
        names, counts = np.unique(lab[known].astype(str), return_counts=True) if known.any() else ([], [])
        top = [names[i] for i in np.argsort(-np.asarray(counts), kind="stable")[:_MAX_LEGEND]]
        is_top = np.isin(lab.astype(str), top) & known
        if (~is_top).any():
            ax.scatter(xy[~is_top, 0], xy[~is_top, 1], s=size, c="lightgrey", alpha=0.5, linewidths=0,
                       label="other / unknown")
        cmap = matplotlib.colormaps["tab20" if len(top) > 10 else "tab10"]
        for i, name in enumerate(sorted(top)):
            m = is_top & (lab.astype(str) == name)
            ax.scatter(xy[m, 0], xy[m, 1], s=size, color=cmap(i % cmap.N), alpha=0.7, linewidths=0, label=name)
        ax.legend(markerscale=max(1.0, 6.0 / size), fontsize=7, loc="best", frameon=False)
    ax.set_title(title or f"{method.upper()}, {len(rows)} points" + (f" of {n}" if len(rows) < n else ""))
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
