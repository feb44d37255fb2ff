"""Search restricted to a range of ids: e.g. only the images, or only the captions, of a two-tower index.

A CLIP export puts both modalities in one table and one index, images at ids
``0..N_img-1`` and captions after them; a text query must return images and an
image query captions. FAISS filters during the search with an ``IDSelector``
passed in ``SearchParameters`` (faiss >= 1.7.3): no over-fetching, and the
IVF ``nprobe`` / HNSW ``efSearch`` tuned on the index are kept.

faiss-contrib names: ``xq`` (nq, D) queries, ``k`` results, ``D`` scores
(cosine / inner product, higher is closer; squared L2, lower is closer) and
``I`` ids, both (nq, k'), k' <= k.
"""

from __future__ import annotations

import faiss
import numpy as np

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.faiss_index import _prepare_queries

__all__ = ["search_id_range"]


def _search_parameters(index: faiss.Index, selector: faiss.IDSelector) -> faiss.SearchParameters:
    """SearchParameters of the right type for the innermost index, carrying its nprobe / max_codes / efSearch."""
    inner = faiss.downcast_index(index)
    while True:
        if isinstance(inner, (faiss.IndexIDMap, faiss.IndexIDMap2)) or isinstance(inner, faiss.IndexPreTransform):
            inner = faiss.downcast_index(inner.index)
            continue
        break
    if isinstance(inner, faiss.IndexIVF):
        params = faiss.SearchParametersIVF(sel=selector, nprobe=int(inner.nprobe))
        params.max_codes = int(inner.max_codes)                      # the tuned cap (0 = none)
        return params
    if isinstance(inner, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=int(inner.hnsw.efSearch))
    return faiss.SearchParameters(sel=selector)


def search_id_range(index: faiss.Index, xq: np.ndarray, k: int, metric: str, lo: int, hi: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest database vectors among ids ``lo <= id < hi``.

    Args:
        index: a FAISS index (Flat, HNSW, IVF, optionally inside IndexIDMap / IndexPreTransform).
        xq: (nq, D) queries, finite; normalised first when ``metric == "cos"``.
        k: results wanted, >= 1; truncated to ``hi - lo``.
        metric: ``"ip"``, ``"l2"`` or ``"cos"``, as the index was built.
        lo, hi: the id range, 0 <= lo < hi.

    Returns:
        ``(D, I)`` of shape (nq, k') with k' = min(k, hi - lo); FAISS's -1 padding
        (an approximate index that found fewer) is cut off, never returned: with
        several queries the rows are cut to the shortest complete row.

    Raises:
        EmbeddingsError: an empty range, bad k, NaN / Inf or wrong-dimension queries.
    """
    if not 0 <= lo < hi:
        raise EmbeddingsError(f"id range [{lo}, {hi}) is empty; pass 0 <= lo < hi")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise EmbeddingsError(f"k must be an int >= 1, got {k!r}")
    xq = _prepare_queries(index, xq, metric)
    k = int(min(k, hi - lo, index.ntotal))
    # faiss.contrib.torch_utils (imported by e.g. pytorch-metric-learning) replaces Index.search with a version
    # without ``params``; the numpy search it wraps stays as ``search_numpy``
    search = getattr(index, "search_numpy", index.search)
    D, I = search(xq, k, params=_search_parameters(index, faiss.IDSelectorRange(int(lo), int(hi))))
    found = int((I >= 0).sum(axis=1).min()) if len(I) else 0
    return D[:, :found], I[:, :found]
