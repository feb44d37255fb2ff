"""FAISS indexes over embeddings: build, search, measure recall against brute force, save, load.

Plain functions over numpy arrays with faiss-contrib names: ``xb`` (N, D)
database vectors, ``xq`` (nq, D) queries, ``k`` neighbours, results ``D``
(nq, k) scores / distances and ``I`` (nq, k) ids.

Metrics (``metric``):

* ``"ip"``: inner product, ``D`` = <q, b>, higher is closer.
* ``"cos"``: cosine; database and query vectors are L2-normalised (copies,
  the caller's arrays are never modified) and searched by inner product, so
  ``D`` is the cosine in [-1, 1], higher is closer. Zero vectors are refused.
* ``"l2"``: squared Euclidean distance (FAISS convention, no square root),
  ``D`` >= 0, lower is closer.

**No -1 padding, ever.** FAISS pads ``I`` with -1 (and ``D`` with ±inf/max
float) when it finds fewer than ``k`` neighbours. :func:`search` instead
truncates ``k`` to ``index.ntotal`` (so ``D, I`` have shape
``(nq, min(k, ntotal))``); if an approximate index still comes back short
(IVF with a small ``nprobe``, HNSW with a small ``efSearch``) it raises
:class:`~replearn.lib.errors.EmbeddingsError` rather than return padding or a
silently narrower result. :func:`recall_at_k` counts such missing results as
misses instead of raising.

Bad input (NaN/Inf, wrong dimension, wrong metric for the index) raises
``EmbeddingsError`` naming the rows, never a FAISS C++ assertion.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import faiss
import numpy as np

from replearn.lib.errors import EXPLAINED_OS_ERRORS, EmbeddingsError
from replearn.lib.store.atomic import _json_default, atomic_path, atomic_write_json
from replearn.lib.store.embeddings_columns import _as_ids, _nonfinite_rows, _rows, repeated_ids
from replearn.lib.store.index_choice import MIN_POINTS_PER_CENTROID
from replearn.lib.topk import exact_topk

__all__ = [
    "Metric",
    "add_vectors",
    "build_index",
    "exact_search",
    "get_search_params",
    "load_index",
    "recall_at_k",
    "save_index",
    "search",
    "set_search_params",
    "sidecar_path",
    "timed_build_index",
]

Metric = Literal["ip", "l2", "cos"]
_METRICS = get_args(Metric)
SIDECAR_FORMAT_VERSION = 1


# --------------------------------------------------------------------------- validation


def _faiss_metric(metric: str) -> int:
    """FAISS metric constant for ``metric``; raises EmbeddingsError for an unknown name."""
    if metric not in _METRICS:
        raise EmbeddingsError(f"metric must be one of {_METRICS}, got {metric!r}")
    return faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT


def _check_index_metric(index: faiss.Index, metric: str) -> None:
    """Refuse a metric the index was not built for (``cos`` and ``ip`` both need an inner-product index)."""
    want = _faiss_metric(metric)
    if index.metric_type != want:
        have = {faiss.METRIC_L2: "l2", faiss.METRIC_INNER_PRODUCT: "ip or cos"}.get(
            index.metric_type, f"FAISS metric {index.metric_type}"
        )
        raise EmbeddingsError(f"metric={metric!r} but the index was built for {have}: search with the index's metric")


def _as_matrix(x: Any, name: str, d: int | None = None) -> np.ndarray:
    """Return ``x`` as a finite C-contiguous float32 ``(n, d)`` matrix or raise EmbeddingsError naming rows."""
    x = np.asarray(x)
    if x.ndim != 2:
        hint = f" (one vector? use {name}[None, :])" if x.ndim == 1 else ""
        raise EmbeddingsError(f"{name} must be a 2-D (n, D) array, got shape {x.shape}{hint}")
    if x.dtype.kind not in "fiu":
        raise EmbeddingsError(f"{name} must be real numbers, got dtype {x.dtype}")
    if d is not None and x.shape[1] != d:
        raise EmbeddingsError(f"{name} has dimension {x.shape[1]} but the index has dimension {d}")
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.ascontiguousarray(x, dtype=np.float32)
    bad = _nonfinite_rows(x)
    if len(bad):
        raise EmbeddingsError(
            f"{name} has NaN or Inf values (after casting to float32) in {_rows(bad, name='positions')}"
        )
    return x


def _normalized(x: np.ndarray, name: str) -> np.ndarray:
    """Return an L2-normalised float32 copy of finite ``x`` (n, D); zero rows raise EmbeddingsError."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    zero = np.flatnonzero(norms == 0)
    if len(zero):
        raise EmbeddingsError(f"metric='cos' is undefined for zero vectors: {name} has {_rows(zero, name='positions')}")
    return (x / norms[:, None]).astype(np.float32)


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise EmbeddingsError(f"k must be an int >= 1, got {k!r}")
    return int(k)


def _prepare_queries(index: faiss.Index, xq: Any, metric: str) -> np.ndarray:
    _check_index_metric(index, metric)
    xq = _as_matrix(xq, "xq", index.d)
    return _normalized(xq, "xq") if metric == "cos" else xq


def _id_map(index: faiss.Index) -> np.ndarray | None:
    """The ids of an IndexIDMap / IndexIDMap2 in insertion order, else None (ids are positions)."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexIDMap):
        return faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    return None


# --------------------------------------------------------------------------- build / search


def _factory_needs(factory: str) -> tuple[int | None, int | None]:
    """``(nlist, pq_nbits_codes)`` a factory string needs to train: IVF lists and 2**nbits PQ centroids."""
    f = factory.replace(" ", "").upper()
    m = re.search(r"IVF(\d+)", f)
    nlist = int(m.group(1)) if m else None
    pq = re.search(r"(?:^|,)O?PQ\d+(?:X(\d+))?", f)
    codes = 2 ** int(pq.group(1) or 8) if pq else None
    return nlist, codes


def _check_trainable(factory: str, n_train: int) -> None:
    """Refuse, with a clear message, a factory that FAISS cannot train on ``n_train`` vectors (it would assert)."""
    nlist, codes = _factory_needs(factory)
    problems = []
    if nlist is not None and n_train < nlist:
        most = n_train // MIN_POINTS_PER_CENTROID
        fix = f"use IVF{most} or fewer lists" if most >= 1 else "use a Flat index"
        problems.append(
            f"IVF{nlist} needs at least {nlist} training vectors ({MIN_POINTS_PER_CENTROID} * {nlist} = "
            f"{MIN_POINTS_PER_CENTROID * nlist} recommended), got {n_train}: {fix} (choose_index caps nlist)"
        )
    if codes is not None and n_train < codes:
        problems.append(
            f"PQ with {codes} centroids per sub-quantizer needs at least {codes} training vectors, got {n_train}: "
            "use IVF-Flat or a Flat index for this few vectors"
        )
    if problems:
        raise EmbeddingsError(f"cannot train FAISS index {factory!r} on {n_train} vectors: " + "; ".join(problems))


def _inner_index(index: faiss.Index) -> faiss.Index:
    inner = faiss.downcast_index(index)
    while isinstance(inner, (faiss.IndexIDMap, faiss.IndexIDMap2, faiss.IndexPreTransform, faiss.IndexRefine)):
        inner = faiss.downcast_index(inner.base_index if isinstance(inner, faiss.IndexRefine) else inner.index)
    return inner


def _hnsw_quantizer(inner: faiss.Index) -> Any:
    """The HNSW coarse quantizer of an IVF index (``IVF{nlist}_HNSW{M}``), or ``None``."""
    if not isinstance(inner, faiss.IndexIVF):
        return None
    q = faiss.downcast_index(inner.quantizer)
    return q if isinstance(q, faiss.IndexHNSW) else None


def set_search_params(index: faiss.Index, params: Mapping[str, Any] | None) -> faiss.Index:
    """Set search-time parameters through IDMap / OPQ / Refine wrappers; return ``index``.

    Args:
        index: any FAISS index.
        params: e.g. ``{"nprobe": 8}`` (IVF: lists scanned, 1..nlist),
            ``{"efSearch": 64}`` (HNSW: candidate list size, >= k) or, for an
            IVF index with an HNSW coarse quantizer (``"IVF8192_HNSW32,Flat"``),
            ``{"nprobe": 8, "quantizer_efSearch": 32}`` (the quantizer's
            efSearch; FAISS raises it to ``nprobe`` at search time if lower).
            IVF also takes ``"max_codes"``: the most database vectors scanned
            per query over its ``nprobe`` lists (0: no cap; FAISS
            ``IndexIVF.max_codes``), which :func:`~replearn.lib.store.index_tuning.tune_index`
            sets to cost between two ``nprobe`` values.
            ``None`` or empty: nothing is changed.

    Raises:
        EmbeddingsError: a parameter the index does not have, or a value < 1.
    """
    if not params:
        return index
    inner = _inner_index(index)
    for name, value in params.items():
        lo = 0 if name == "max_codes" else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise EmbeddingsError(f"search parameter {name} must be an int >= {lo}, got {value!r}")
        if name == "nprobe" and isinstance(inner, faiss.IndexIVF):
            inner.nprobe = int(min(value, inner.nlist))
        elif name == "efSearch" and isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = int(value)
        elif name == "max_codes" and isinstance(inner, faiss.IndexIVF):
            inner.max_codes = int(value)
        elif name == "quantizer_efSearch" and _hnsw_quantizer(inner) is not None:
            _hnsw_quantizer(inner).hnsw.efSearch = int(value)
        else:
            raise EmbeddingsError(
                f"index {type(inner).__name__} has no search parameter {name!r}: nprobe is for IVF, efSearch for "
                "HNSW, quantizer_efSearch for IVF with an HNSW quantizer"
            )
    return index


def get_search_params(index: faiss.Index) -> dict[str, int]:
    """``{"nprobe": ..}`` for IVF (plus ``"max_codes"`` when set and ``"quantizer_efSearch"`` with an HNSW
    quantizer), ``{"efSearch": ..}`` for HNSW, ``{}`` otherwise (through wrappers)."""
    inner = _inner_index(index)
    if isinstance(inner, faiss.IndexIVF):
        out = {"nprobe": int(inner.nprobe)}
        if int(inner.max_codes):
            out["max_codes"] = int(inner.max_codes)
        q = _hnsw_quantizer(inner)
        if q is not None:
            out["quantizer_efSearch"] = int(q.hnsw.efSearch)
        return out
    if isinstance(inner, faiss.IndexHNSW):
        return {"efSearch": int(inner.hnsw.efSearch)}
    return {}


def build_index(
    xb: np.ndarray,
    metric: Metric,
    factory: str = "Flat",
    ids: np.ndarray | None = None,
    *,
    train_size: int | None = None,
    seed: int = 0,
) -> faiss.Index:
    """Build a FAISS index over ``xb`` and add all of it.

    Args:
        xb: ``(N, D)`` real array, finite, N >= 1; cast to float32 (a copy
            only if needed; never modified).
        metric: ``"ip"``, ``"l2"`` or ``"cos"`` (cos: ``xb`` is normalised in a
            copy and the index uses inner product; search with ``metric="cos"``).
        factory: a ``faiss.index_factory`` string, e.g. ``"Flat"``,
            ``"HNSW32"``, ``"IVF1024,Flat"``, ``"IVF1024,PQ16"``. Trainable
            indexes are trained on all of ``xb`` (IVF needs N >= nlist,
            FAISS recommends >= 39 * nlist; fewer than nlist, or fewer than
            256 for PQ, raises EmbeddingsError with the fix instead of FAISS's
            assertion), or on a random subsample of ``train_size`` rows.
        ids: optional ``(N,)`` distinct integers >= 0 (e.g. the table's ``id``
            column); the index is wrapped in ``faiss.IndexIDMap2`` (unless the
            factory already starts with ``IDMap``) and searches return these ids.
            Default: row positions ``0..N-1``.
        train_size: train on this many rows sampled without replacement
            (seeded by ``seed``) instead of all ``N``; ``None`` or >= N: all.
            k-means time grows linearly with it (see
            :mod:`replearn.lib.store.index_choice` for the sizes it picks).
        seed: for the training subsample.

    Returns:
        The trained ``faiss.Index`` with ``ntotal == N`` and ``d == D``.

    Raises:
        EmbeddingsError: empty, non-finite or non-2-D ``xb``; zero vectors with
            ``cos``; bad ``ids``; too few vectors to train the factory.
        ValueError: ``factory`` is not a valid FAISS factory string.
    """
    mt = _faiss_metric(metric)
    xb = _as_matrix(xb, "xb")
    n, d = xb.shape
    if n == 0:
        raise EmbeddingsError("xb is empty: nothing to index")
    if metric == "cos":
        xb = _normalized(xb, "xb")
    has_idmap = factory.replace(" ", "").upper().startswith("IDMAP")
    if ids is not None or has_idmap:
        try:
            ids_np = _as_ids(ids, n)
        except EmbeddingsError as e:
            raise EmbeddingsError(f"build_index: {e}") from None
        neg = np.flatnonzero(ids_np < 0)
        if len(neg):
            raise EmbeddingsError(
                f"ids must be >= 0 (FAISS uses -1 for 'no result'); negative in {_rows(neg, name='positions')}"
            )
        dup = repeated_ids(ids_np)
        if len(dup):
            raise EmbeddingsError(f"duplicate ids: {_rows(dup, 'ids repeated')}")
    try:
        index = faiss.index_factory(d, factory, mt)
    except RuntimeError as e:
        raise ValueError(f"invalid FAISS factory string {factory!r}: {str(e).splitlines()[-1]}") from None
    if not index.is_trained:
        xt = xb
        if train_size is not None and 0 < int(train_size) < n:
            rows = np.sort(np.random.default_rng(seed).choice(n, size=int(train_size), replace=False))
            xt = xb[rows]
        _check_trainable(factory, len(xt))
        try:
            index.train(xt)
        except RuntimeError as e:
            raise EmbeddingsError(
                f"cannot train FAISS index {factory!r} on {n} vectors ({str(e).splitlines()[-1]}): "
                "use a smaller nlist / PQ size or a Flat index for this few vectors"
            ) from None
    if ids is None and not has_idmap:
        index.add(xb)
        return index
    if not has_idmap:
        index = faiss.IndexIDMap2(index)  # the Python wrapper keeps the inner index alive
    index.add_with_ids(xb, ids_np)
    return index


def add_vectors(index: faiss.Index, xb: np.ndarray, metric: Metric, ids: np.ndarray | None = None) -> faiss.Index:
    """Add more vectors to a trained index built by :func:`build_index` (normalised first for ``cos``).

    Args:
        index: trained; an ``IndexIDMap`` (built with ``ids``) needs ``ids``,
            a plain index takes positions ``ntotal..ntotal+n-1`` and refuses ``ids``.
        xb: ``(n, D)`` finite vectors, ``D == index.d``.
        metric: the metric the index was built with.
        ids: ``(n,)`` ids >= 0 for an ``IndexIDMap`` (not checked against those already in it).

    Returns:
        ``index``.

    Raises:
        EmbeddingsError: bad vectors or ids, ids missing for an IDMap or given for a plain index.
    """
    _check_index_metric(index, metric)
    xb = _as_matrix(xb, "xb", index.d)
    if metric == "cos":
        xb = _normalized(xb, "xb")
    has_map = _id_map(index) is not None
    if has_map != (ids is not None):
        raise EmbeddingsError(
            "ids are needed for an index built with ids (IndexIDMap), and refused for one without"
            if has_map else "this index was built without ids: add vectors without ids (positions follow ntotal)"
        )
    if ids is None:
        index.add(xb)
        return index
    ids_np = _as_ids(ids, len(xb))
    neg = np.flatnonzero(ids_np < 0)
    if len(neg):
        raise EmbeddingsError(f"ids must be >= 0; negative in {_rows(neg, name='positions')}")
    index.add_with_ids(xb, ids_np)
    return index


def search(index: faiss.Index, xq: np.ndarray, k: int, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """Search ``index`` for the ``k`` nearest neighbours of each query; never returns -1.

    Args:
        index: a FAISS index from :func:`build_index` / :func:`load_index`.
        xq: ``(nq, D)`` finite real queries, ``D == index.d`` (never modified;
            normalised in a copy for ``cos``).
        k: neighbours wanted, >= 1. Truncated to ``index.ntotal``.
        metric: the metric the index was built with.

    Returns:
        ``(D, I)``, both of shape ``(nq, min(k, ntotal))``, best first:
        ``D`` float32 scores (ip / cos, descending) or squared L2 distances
        (ascending); ``I`` int64 ids (row positions, or the ids given to
        :func:`build_index`), all valid.

    Raises:
        EmbeddingsError: dimension mismatch, NaN/Inf or zero (cos) queries,
            metric inconsistent with the index, ``k < 1``, or an approximate
            index that found fewer than ``min(k, ntotal)`` neighbours for some
            queries (raise ``nprobe`` / ``efSearch`` or lower ``k``).
    """
    k = _check_k(k)
    xq = _prepare_queries(index, xq, metric)
    k_eff = min(k, int(index.ntotal))
    if k_eff == 0:
        return np.empty((len(xq), 0), np.float32), np.empty((len(xq), 0), np.int64)
    D, I = index.search(xq, k_eff)
    short = np.flatnonzero((I < 0).any(axis=1))
    if len(short):
        raise EmbeddingsError(
            f"the index found fewer than k={k_eff} neighbours for {_rows(short, 'queries', 'positions')}: "
            "raise nprobe (IVF) or efSearch (HNSW), or lower k"
        )
    return D, I.astype(np.int64, copy=False)


def search_widening(index: faiss.Index, xq: np.ndarray, k: int, metric: Metric,
                    tries: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """:func:`search`, but where an approximate index finds fewer than ``k`` neighbours (a ``topn`` near the
    tuned ``efSearch`` of an HNSW index, or over the lists an IVF's ``nprobe`` scans), search again with
    ``efSearch`` / ``nprobe`` four times larger (``nprobe`` at most ``nlist``), up to ``tries`` times; the
    index's own settings are restored after. Shapes, units and errors as :func:`search`.

    Raises:
        EmbeddingsError: as :func:`search`, when even the widest try falls short.
    """
    saved = get_search_params(index)
    try:
        for attempt in range(tries + 1):
            try:
                return search(index, xq, k, metric)
            except EmbeddingsError as e:
                if "fewer than k" not in str(e) or attempt == tries or not saved:
                    raise
                wider = {name: value * 4 for name, value in get_search_params(index).items()
                         if name in ("nprobe", "efSearch")}
                wider["efSearch"] = max(wider.get("efSearch", 0), 2 * k) if "efSearch" in saved else 0
                set_search_params(index, {n: v for n, v in wider.items() if v})
        raise AssertionError("unreachable")
    finally:
        set_search_params(index, saved)


def exact_search(
    xb: np.ndarray,
    xq: np.ndarray,
    k: int,
    metric: Metric,
    ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force k-nearest-neighbour search with numpy: the ground truth for FAISS.

    Args:
        xb: ``(N, D)`` finite database vectors.
        xq: ``(nq, D)`` finite queries.
        k: neighbours wanted, >= 1; truncated to N.
        metric: ``"ip"``, ``"l2"`` or ``"cos"`` (same conventions as :func:`search`).
        ids: optional ``(N,)`` ids to return instead of row positions.

    Returns:
        ``(D, I)`` of shape ``(nq, min(k, N))``, best first: float32 scores or
        squared L2 distances, int64 ids. Computed in float32 by
        :func:`replearn.lib.topk.exact_topk` in blocks of queries (about 64 MiB
        of scores at a time); exactly tied neighbours in row order.

    Raises:
        EmbeddingsError: non-finite input, dimension mismatch, zero vectors
            with ``cos``, bad ``k``/``metric``/``ids``.
    """
    _faiss_metric(metric)
    k = _check_k(k)
    xb = _as_matrix(xb, "xb")
    xq = _as_matrix(xq, "xq", xb.shape[1])
    n = len(xb)
    if ids is not None:
        ids = _as_ids(ids, n)
    if metric == "cos":
        xb, xq = _normalized(xb, "xb"), _normalized(xq, "xq")
    D, I = exact_topk(xq, xb, k, "l2" if metric == "l2" else "ip")
    if ids is not None:
        I = ids[I]
    return D, I


def recall_at_k(
    index: faiss.Index,
    xb: np.ndarray,
    xq: np.ndarray,
    k: int = 10,
    *,
    metric: Metric,
    ids: np.ndarray | None = None,
) -> float:
    """Recall@k of ``index`` against exact search: mean over queries of |approx ∩ exact| / k.

    Use held-out queries (vectors not in ``xb``, or a sample the index was not
    tuned on) so the measure is not flattered by self-matches.

    Args:
        index: built over ``xb`` (``index.ntotal == N``).
        xb: ``(N, D)`` the vectors the index holds, in insertion order.
        xq: ``(nq, D)`` finite queries.
        k: neighbours compared, >= 1; when ``k > N`` it is truncated to N
            (so Flat still scores 1.0).
        metric: the metric the index was built with.
        ids: ids the index returns for ``xb``'s rows; default: the
            ``IndexIDMap`` ids if the index has them, else row positions.

    Returns:
        A float in [0, 1]; 1.0 means every query found all its exact
        neighbours. Missing results (-1 from an approximate index) count as
        misses. Ties at the k-th place may make an exact index score slightly
        below 1.0 on data with duplicates.

    Raises:
        EmbeddingsError: ``index.ntotal != N``, and as :func:`search`.
    """
    k = _check_k(k)
    xq_s = _prepare_queries(index, xq, metric)
    xb = np.asarray(xb)
    if len(xb) != index.ntotal:
        raise EmbeddingsError(
            f"xb has {len(xb)} rows but the index holds {index.ntotal} vectors: pass the indexed vectors"
        )
    if ids is None:
        ids = _id_map(index)
    k_eff = min(k, int(index.ntotal))
    _, E = exact_search(xb, xq, k_eff, metric, ids=ids)
    _, I = index.search(xq_s, k_eff)
    hits = 0
    step = max(1, (1 << 22) // (k_eff * k_eff))
    for s in range(0, len(E), step):  # (b, k, 1) == (b, 1, k): membership without a Python loop
        hits += int((I[s : s + step, :, None] == E[s : s + step, None, :]).any(axis=2).sum())
    return hits / (len(E) * k_eff) if len(E) else float("nan")


# --------------------------------------------------------------------------- save / load


def sidecar_path(path: Path | str) -> Path:
    """The JSON metadata file written next to an index: ``path.with_suffix(".json")``."""
    return Path(path).with_suffix(".json")


def save_index(
    index: faiss.Index,
    path: Path | str,
    *,
    metric: Metric,
    factory: str | None = None,
    recall_at_10: float | None = None,
    build_seconds: float | None = None,
    extra: Mapping[str, Any] | None = None,
    tuning: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``index`` to ``path`` and its JSON sidecar (:func:`sidecar_path`), each atomically.

    The index file is written first, then the sidecar; each appears whole or
    not at all (temporary sibling + rename).

    Args:
        index: any FAISS index (CPU).
        path: e.g. ``out/embeddings.faiss`` (sidecar ``out/embeddings.json``);
            must not itself end in ``.json``.
        metric: the metric the index was built with (FAISS cannot tell
            ``cos`` from ``ip``, so it is recorded here).
        factory: the factory string used, e.g. ``"HNSW32"``.
        recall_at_10: from :func:`recall_at_k` with ``k=10``, in [0, 1].
        build_seconds: wall-clock seconds :func:`build_index` took.
        extra: more JSON-serialisable keys for the sidecar (must not clash
            with the standard ones).
        tuning: the report of
            :func:`~replearn.lib.store.index_tuning.build_tuned_index` (or
            :func:`~replearn.lib.store.index_tuning.tune_index`'s dict), stored
            under ``"tuning"``; its measured recall fills ``recall_at_10`` and
            ``build_seconds`` when those are not given.

    Sidecar keys: ``format_version, factory, metric, ntotal, dim,
    recall_at_10, build_seconds, faiss_version, index_file, search_params``
    (the index's current ``nprobe`` / ``efSearch``, re-applied by
    :func:`load_index`), ``tuning`` (or null), plus ``extra``.

    Returns:
        ``Path(path)``.

    Raises:
        EmbeddingsError: ``metric`` inconsistent with the index.
        ValueError: ``path`` ends in ``.json``, or ``extra`` overrides a standard key.
    """
    path = Path(path)
    if path.suffix == ".json":
        raise ValueError(f"index path {path} ends in .json, which is where its metadata sidecar goes")
    _check_index_metric(index, metric)
    if tuning is not None:
        t = tuning.get("tuning", tuning)
        if recall_at_10 is None and t.get("k") == 10:
            recall_at_10 = t.get("recall_at_k")
        if build_seconds is None:
            build_seconds = tuning.get("build_seconds")
        factory = factory or tuning.get("factory")
    meta: dict[str, Any] = {
        "format_version": SIDECAR_FORMAT_VERSION,
        "factory": factory,
        "metric": metric,
        "ntotal": int(index.ntotal),
        "dim": int(index.d),
        "recall_at_10": None if recall_at_10 is None else float(recall_at_10),
        "build_seconds": None if build_seconds is None else float(build_seconds),
        "faiss_version": faiss.__version__,
        "index_file": path.name,
        "search_params": get_search_params(index),
        "tuning": None if tuning is None else json.loads(json.dumps(dict(tuning), default=_json_default)),
    }
    clash = sorted(set(extra or {}) & set(meta))
    if clash:
        raise ValueError(f"extra must not override the standard sidecar keys {clash}")
    meta.update(extra or {})
    with atomic_path(path) as tmp:
        _write_index(index, tmp)
    atomic_write_json(sidecar_path(path), meta)
    return path


def _write_index(index: faiss.Index, tmp: Path) -> None:
    """``faiss.write_index``; its ``RuntimeError`` for an OS error the user can fix (a full disk, a permission:
    ``lib/errors.EXPLAINED_OS_ERRORS``) becomes that ``OSError``, which ``atomic_path`` names with the final
    path, so callers explain it like any other."""
    try:
        faiss.write_index(index, str(tmp))
    except RuntimeError as e:
        for code in EXPLAINED_OS_ERRORS:
            if os.strerror(code) in str(e):
                raise OSError(code, os.strerror(code)) from e
        raise


def load_index(path: Path | str) -> tuple[faiss.Index, dict[str, Any]]:
    """Read an index written by :func:`save_index` and its sidecar.

    Returns:
        ``(index, meta)``: the ``faiss.Index`` (concrete subclass) with the
        sidecar's ``search_params`` (tuned ``nprobe`` / ``efSearch``) applied,
        and the sidecar dict (see :func:`save_index`).

    Raises:
        FileNotFoundError: the index or its sidecar is missing.
        EmbeddingsError: the sidecar is not valid JSON, or its ``ntotal`` /
            ``dim`` / ``metric`` disagree with the index file.
    """
    path = Path(path)
    side = sidecar_path(path)
    for p in (path, side):
        if not p.exists():
            raise FileNotFoundError(f"FAISS index file {p} does not exist (write it with save_index)")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except ValueError as e:
        raise EmbeddingsError(f"index sidecar {side} is not valid JSON: {e}") from None
    index = faiss.read_index(str(path))
    problems = [
        f"{key}: sidecar {meta.get(key)!r} vs index {have!r}"
        for key, have in (("ntotal", int(index.ntotal)), ("dim", int(index.d)))
        if meta.get(key) != have
    ]
    try:
        _check_index_metric(index, meta.get("metric"))
    except EmbeddingsError as e:
        problems.append(str(e))
    if problems:
        raise EmbeddingsError(
            f"index {path} and its sidecar {side} disagree ({'; '.join(problems)}): "
            "they were not written together; rebuild the index"
        )
    set_search_params(index, meta.get("search_params"))
    return index, meta


def timed_build_index(xb: np.ndarray, metric: Metric, *args: Any, **kwargs: Any) -> tuple[faiss.Index, float]:
    """:func:`build_index` (same arguments, same errors) plus the wall-clock seconds it took
    (for ``save_index(build_seconds=...)``)."""
    t0 = time.perf_counter()
    index = build_index(xb, metric, *args, **kwargs)
    return index, time.perf_counter() - t0
