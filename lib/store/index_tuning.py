"""Tune an approximate FAISS index's search parameter to reach a target recall@k, and build + tune in one call.

:func:`tune_index` raises ``nprobe`` (IVF; Jégou, Douze & Schmid 2011) or
``efSearch`` (HNSW; Malkov & Yashunin 2018) along a fixed ascending grid until
the lower 95 % confidence bound of recall@k against exact search reaches
``target_recall`` (default 0.95) on held-out queries, keeps the smallest value
that does (the fastest), and measures its latency. Recall grows with either
parameter, so the first value that reaches the target is the cheapest on the
grid. For IVF it then caps the vectors scanned per query (``max_codes``) to
land between two integer ``nprobe`` values, choosing by vectors scanned
(counted, not timed).

Held-out queries: either given (``xq``: vectors not in the index), or
``n_queries`` rows sampled from ``xb`` with each query's own row removed from
both the exact and the approximate results (``k + 1`` neighbours searched,
the query's id dropped), so an index is not credited for finding the query
itself -- the measure then matches held-out queries from the same
distribution.

:func:`build_tuned_index` is the one call for the task layer: choose
(:func:`~replearn.lib.store.index_choice.choose_index`), build on a training
subsample, add everything, tune, and return the index with a JSON-ready
report (choice, build seconds, tuned parameter, recall, ms/query) that
:func:`~replearn.lib.store.faiss_index.save_index` writes into the sidecar
(``tuning=``) and :func:`tuning_metrics` flattens for MLflow.

How tune_index chooses:

"Surely": the one-sided lower confidence bound of the recall over the
queries, ``mean - confidence_z * sd / sqrt(nq)`` (per-query recalls;
default z = 1.645, 95 %), must reach the target, so that the chosen
setting reaches it on other queries from the same distribution too, not
only on these (with 2,000 queries at recall 0.95 the bound is ~0.004
below the mean). ``confidence_z=0`` uses the plain mean.

IVF: the smallest ``nprobe`` of :data:`NPROBE_GRID` that reaches the
target; then, with ``cap_codes`` (default), ``max_codes`` (the most
vectors scanned per query, FAISS ``IndexIVF.max_codes``) is bisected for
that ``nprobe`` and the next grid values up to twice it, and the setting
that scans the fewest vectors per query on average while still reaching
the target is kept (by at least 3 %; otherwise no cap). Scanned vectors
(FAISS's ``indexIVF_stats.ndis``) are counted, not timed, so the choice
does not depend on machine load. This fills the gap between two integer
``nprobe`` values (one more list costs ~1/nprobe more time) and cuts the
cost of queries that fall in the largest lists. HNSW: the smallest
``efSearch`` of :data:`EF_SEARCH_GRID`.

The chosen setting must also return ``k`` results for every query (IVF
with a small ``nprobe`` can come back short, which :func:`search` refuses
rather than pad with -1).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.embeddings_columns import _as_ids
from replearn.lib.store.faiss_index import (
    _as_matrix,
    _check_index_metric,
    _check_k,
    _id_map,
    _normalized,
    add_vectors,
    build_index,
    get_search_params,
    set_search_params,
)
from replearn.lib.store.index_choice import IndexChoice, choose_index
from replearn.lib.topk import exact_topk

__all__ = [
    "EF_SEARCH_GRID",
    "NPROBE_GRID",
    "build_tuned_index",
    "recall_lower_bound",
    "search_param_of",
    "tune_index",
    "tuning_metrics",
]

NPROBE_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
               1536, 2048, 4096, 8192, 16384, 32768, 65536)
"""``nprobe`` values tried, ascending; values above ``nlist`` are skipped (nprobe = nlist is exhaustive)."""

EF_SEARCH_GRID = (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 768, 1024, 2048)
"""``efSearch`` values tried, ascending; values below ``k`` are raised to ``k`` (HNSW needs efSearch >= k)."""


def _unwrap(index: faiss.Index) -> faiss.Index:
    """The innermost index under IDMap / PreTransform (OPQ) / Refine wrappers."""
    index = faiss.downcast_index(index)
    while True:
        if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)):
            index = faiss.downcast_index(index.index)
        elif isinstance(index, faiss.IndexPreTransform):
            index = faiss.downcast_index(index.index)
        elif isinstance(index, faiss.IndexRefine):
            index = faiss.downcast_index(index.base_index)
        else:
            return index


def search_param_of(index: faiss.Index) -> tuple[str | None, int | None]:
    """``("nprobe", nlist)`` for IVF, ``("efSearch", None)`` for HNSW, ``(None, None)`` otherwise."""
    inner = _unwrap(index)
    if isinstance(inner, faiss.IndexIVF):
        return "nprobe", int(inner.nlist)
    if isinstance(inner, faiss.IndexHNSW):
        return "efSearch", None
    return None, None


def _grid(param: str | None, nlist: int | None, k: int) -> list[int]:
    if param == "nprobe":
        g = [p for p in NPROBE_GRID if p < nlist] + [nlist]
        return sorted(set(g))
    if param == "efSearch":
        return sorted({max(e, k) for e in EF_SEARCH_GRID})
    return [0]


def _drop_self(I: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """Remove each row's own id from ``I`` (nq, k+1) and keep the first ``k`` of the rest (-1 if short)."""
    keep = I != self_ids[:, None]
    out = np.full((len(I), k), -1, np.int64)
    for r in range(len(I)):  # nq <= a few thousand: cheap
        row = I[r][keep[r]][:k]
        out[r, : len(row)] = row
    return out


def _row_hits(I: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Per row, |I_row ∩ E_row| (ids; -1 never matches a valid id)."""
    out = np.empty(len(E), np.int64)
    k1, k2 = I.shape[1], E.shape[1]
    step = max(1, (1 << 22) // max(1, k1 * k2))
    for s in range(0, len(E), step):
        out[s : s + step] = (I[s : s + step, :, None] == E[s : s + step, None, :]).any(axis=2).sum(axis=1)
    return out


def recall_lower_bound(per_query: np.ndarray, z: float) -> float:
    """``mean - z * sd / sqrt(nq)`` of per-query recalls: a one-sided normal lower confidence bound (z=0: the mean)."""
    per_query = np.asarray(per_query, np.float64)
    mean = float(per_query.mean())
    if z <= 0 or len(per_query) < 2:
        return mean
    return mean - float(z) * float(per_query.std(ddof=1)) / math.sqrt(len(per_query))


def tune_index(
    index: faiss.Index,
    xb: np.ndarray,
    xq: np.ndarray | None = None,
    *,
    metric: str,
    k: int = 10,
    target_recall: float = 0.95,
    n_queries: int = 2000,
    seed: int = 0,
    ids: np.ndarray | None = None,
    gt: np.ndarray | None = None,
    repeats: int = 3,
    confidence_z: float = 1.645,
    cap_codes: bool = True,
) -> dict[str, Any]:
    """Set ``nprobe`` / ``efSearch`` on ``index`` to the cheapest setting whose recall@k surely reaches ``target_recall``.

    "Surely", the ``max_codes`` cap for IVF and the rule that every query
    must get ``k`` results: see "How tune_index chooses" in the module docstring.

    Args:
        index: built over ``xb`` (from :func:`~replearn.lib.store.faiss_index.build_index`);
            modified in place (its search parameters are set).
        xb: ``(N, D)`` the vectors the index holds, in insertion order (used
            for exact search and, when ``xq`` is None, to sample queries).
        xq: ``(nq, D)`` held-out queries, or ``None`` to sample ``n_queries``
            rows of ``xb`` (self-matches removed, see the module docstring).
        metric: the metric the index was built with: ``"l2"``, ``"ip"``, ``"cos"``.
        k: recall@k is measured, >= 1, truncated to N - 1 for sampled queries.
        target_recall: in (0, 1]; default 0.95.
        n_queries: queries sampled when ``xq`` is None (>= 1, at most N; default 2,000).
        seed: for the query sample.
        ids: the ids the index returns for ``xb``'s rows; default the index's
            ``IndexIDMap`` ids, else row positions.
        gt: optional precomputed exact ``(nq, >= k)`` ids for ``xq`` (saves the
            exact search; only with a given ``xq``).
        repeats: timing runs of the chosen setting; the fastest is reported.
        confidence_z: z of the lower confidence bound (>= 0; default 1.645).
        cap_codes: IVF only: also tune ``max_codes`` (see above).

    Returns:
        A JSON-ready dict: ``param`` (``"nprobe"``, ``"efSearch"`` or None),
        ``value`` (the chosen value or None), ``params`` (every search
        parameter set, e.g. ``{"nprobe": 6, "max_codes": 1180}``, as
        :func:`~replearn.lib.store.faiss_index.get_search_params`),
        ``recall_at_k`` (measured at the chosen setting, in [0, 1]),
        ``recall_lower_bound``, ``confidence_z``, ``k``, ``target_recall``,
        ``reached`` (bool: False when even the largest grid value stays below
        the target; the largest value is then set), ``ms_per_query``
        (wall-clock per query, batch search, current FAISS thread count),
        ``codes_per_query`` (IVF: mean vectors scanned per query, else None),
        ``n_queries``, ``queries`` (``"held-out"`` or ``"database sample, self
        excluded"``), ``tried`` (list of ``{value, recall, recall_lcb,
        ms_per_query, complete}`` along the grid) and ``capped`` (the
        ``max_codes`` settings tried: ``{nprobe, max_codes, recall,
        recall_lcb, codes_per_query}``).

    Raises:
        EmbeddingsError: ``index.ntotal != N``, bad ``k`` / ``target_recall``
            / ``n_queries`` / ``confidence_z``, non-finite input, metric
            inconsistent with the index.
    """
    k = _check_k(k)
    _check_targets(target_recall, confidence_z)
    _check_index_metric(index, metric)
    q = _tuning_queries(index, xb, xq, metric=metric, k=k, n_queries=n_queries, seed=seed, ids=ids, gt=gt)
    param, nlist = search_param_of(index)
    is_ivf = param == "nprobe"
    measure = _Meter(index, q, float(target_recall), float(confidence_z), is_ivf)
    grid = _grid(param, nlist, q.kk)
    if is_ivf:
        set_search_params(index, {"max_codes": 0})
    tried, chosen, chosen_m = _walk_grid(measure, param, grid)
    reached = chosen is not None
    if chosen is None:
        chosen = tried[-1]  # the largest value stays set
    best = {param: chosen["value"]} if param else {}
    best_codes = chosen_m["codes_per_query"] if chosen_m else None
    capped: list[dict[str, Any]] = []
    if is_ivf and cap_codes and reached and chosen["value"] > 1 and best_codes:
        best, best_codes, capped_m = _cap_codes(measure, grid, chosen["value"], best_codes, capped)
        if capped_m is not None:
            chosen = dict(chosen, recall=capped_m["recall"], recall_lcb=capped_m["recall_lcb"])
    if is_ivf:
        set_search_params(index, {"max_codes": 0})
    if best:
        set_search_params(index, best)
    return {
        "param": param,
        "value": best.get(param) if param else None,
        "params": get_search_params(index),
        "recall_at_k": chosen["recall"],
        "recall_lower_bound": chosen["recall_lcb"],
        "confidence_z": float(confidence_z),
        "k": q.k,
        "target_recall": float(target_recall),
        "reached": reached,
        "ms_per_query": _fastest_ms_per_query(index, q, repeats),
        "codes_per_query": best_codes,
        "faiss_threads": faiss.omp_get_max_threads(),
        "n_queries": len(q.xq),
        "queries": "database sample, self excluded" if q.sampled else "held-out",
        "tried": tried,
        "capped": capped,
    }


def _check_targets(target_recall: float, confidence_z: float) -> None:
    """Raise EmbeddingsError unless ``target_recall`` is in (0, 1] and ``confidence_z`` in [0, 10)."""
    if not (isinstance(target_recall, (int, float)) and 0 < target_recall <= 1):
        raise EmbeddingsError(f"target_recall must be in (0, 1], got {target_recall!r}")
    if isinstance(confidence_z, bool) or not isinstance(confidence_z, (int, float)) or not 0 <= confidence_z < 10:
        raise EmbeddingsError(f"confidence_z must be a number in [0, 10), got {confidence_z!r}")


@dataclass(frozen=True)
class _TuningQueries:
    """The queries of one tuning run and their exact neighbours.

    Attributes:
        xq: ``(nq, D)`` float32 queries as the index sees them (normalised for ``cos``).
        k: recall@k measured.
        kk: neighbours searched: ``k + 1`` for database rows (their own id is dropped), else ``k``.
        self_ids: ``(nq,)`` each sampled query's own id, or None for held-out queries.
        exact: ``(nq, k)`` int64 ids of the exact neighbours (ground truth).
    """

    xq: np.ndarray
    k: int
    kk: int
    self_ids: np.ndarray | None
    exact: np.ndarray

    @property
    def sampled(self) -> bool:
        """True when the queries are rows of the database (self-matches removed)."""
        return self.self_ids is not None

    def results(self, I: np.ndarray) -> np.ndarray:
        """``(nq, k)`` ids of an index's ``(nq, kk)`` answer, each sampled query's own id removed."""
        return _drop_self(I, self.self_ids, self.k) if self.sampled else I


def _tuning_queries(index: faiss.Index, xb: np.ndarray, xq: np.ndarray | None, *, metric: str, k: int,
                    n_queries: int, seed: int, ids: np.ndarray | None, gt: np.ndarray | None) -> _TuningQueries:
    """Validate ``xb`` / ``xq``, sample queries from ``xb`` when ``xq`` is None, and find the exact neighbours
    with :func:`~replearn.lib.topk.exact_topk` (a sampled query's own row excluded). Raises as :func:`tune_index`."""
    xb = _as_matrix(xb, "xb", index.d)
    n = len(xb)
    if n != index.ntotal:
        raise EmbeddingsError(f"xb has {n} rows but the index holds {index.ntotal} vectors: pass the indexed vectors")
    if ids is None:
        ids = _id_map(index)
    ids_np = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    rows = None
    if xq is None:
        if isinstance(n_queries, bool) or not isinstance(n_queries, (int, np.integer)) or n_queries < 1:
            raise EmbeddingsError(f"n_queries must be an int >= 1, got {n_queries!r}")
        if n < 2:
            raise EmbeddingsError("tuning with queries sampled from xb needs N >= 2 vectors; pass xq")
        rows = np.sort(np.random.default_rng(seed).choice(n, size=min(int(n_queries), n), replace=False))
        xq, k = xb[rows], min(k, n - 1)
    else:
        xq, k = _as_matrix(xq, "xq", index.d), min(k, n)
    if metric == "cos":
        xb, xq = _normalized(xb, "xb"), _normalized(xq, "xq")
    if gt is not None and rows is None:
        exact = np.asarray(gt)[:, :k]
    else:
        skip = None if rows is None else rows[:, None]
        exact = ids_np[exact_topk(xq, xb, k, "l2" if metric == "l2" else "ip", exclude=skip)[1]]
    if rows is None:
        return _TuningQueries(xq, k, k, None, exact)
    return _TuningQueries(xq, k, k + 1, ids_np[rows], exact)


@dataclass(frozen=True)
class _Meter:
    """Measures one search setting of ``index`` on the tuning queries (call it with the settings)."""

    index: faiss.Index
    q: _TuningQueries
    target_recall: float
    confidence_z: float
    is_ivf: bool

    def __call__(self, settings: dict[str, int]) -> dict[str, Any]:
        """Set ``settings``, search, and return ``{recall, recall_lcb, ms_per_query, complete,
        codes_per_query, ok}``; ``ok``: every query got ``k`` results and the lower bound reaches the target."""
        stats = faiss.cvar.indexIVF_stats if self.is_ivf else None
        if settings:
            set_search_params(self.index, settings)
        if stats is not None:
            stats.reset()
        t0 = time.perf_counter()
        _, I = self.index.search(self.q.xq, self.q.kk)
        ms = 1e3 * (time.perf_counter() - t0) / len(self.q.xq)
        codes = float(stats.ndis) / len(self.q.xq) if stats is not None else None
        I = self.q.results(I)
        per = _row_hits(I, self.q.exact) / self.q.k
        complete = not bool((I < 0).any())  # every query got k results: search() will not raise
        r, lcb = float(per.mean()), recall_lower_bound(per, self.confidence_z)
        return {"recall": r, "recall_lcb": lcb, "ms_per_query": ms, "complete": complete, "codes_per_query": codes,
                "ok": complete and lcb >= self.target_recall}


def _pick(m: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: m[key] for key in keys}


def _walk_grid(measure: _Meter, param: str | None, grid: list[int]
               ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, dict[str, Any] | None]:
    """Try ``grid`` in ascending order until a setting is ``ok``: ``(tried, chosen row or None, its measure)``."""
    tried: list[dict[str, Any]] = []
    for value in grid:
        m = measure({param: value} if param else {})
        tried.append({"value": value if param else None, **_pick(m, "recall", "recall_lcb", "ms_per_query",
                                                                 "complete")})
        if m["ok"]:
            return tried, tried[-1], m
    return tried, None, None


def _cap_codes(measure: _Meter, grid: list[int], p0: int, best_codes: float, capped: list[dict[str, Any]]
               ) -> tuple[dict[str, int], float, dict[str, Any] | None]:
    """IVF: for ``nprobe`` in ``[p0, 2 p0]`` on the grid, the smallest passing ``max_codes`` (bisected); keep
    the setting that scans fewest vectors per query, if at least 3 % fewer than uncapped ``nprobe = p0``.

    Returns:
        ``(best settings, its codes per query, its measure or None when no cap won)``; every setting
        tried is appended to ``capped``.
    """
    best: dict[str, int] = {"nprobe": p0}
    best_m = None
    for v in [g for g in grid if p0 <= g <= 2 * p0]:
        found = _bisect_max_codes(measure, v, int(math.ceil(best_codes)), capped)
        if found is not None and found[1]["codes_per_query"] < 0.97 * best_codes:
            best, best_codes, best_m = {"nprobe": v, "max_codes": found[0]}, found[1]["codes_per_query"], found[1]
    return best, best_codes, best_m


def _bisect_max_codes(measure: _Meter, nprobe: int, hi: int, capped: list[dict[str, Any]]
                      ) -> tuple[int, dict[str, Any]] | None:
    """The smallest ``max_codes`` (to within ``max(8, hi // 64)``) that passes at ``nprobe``, starting from
    ``hi`` (the mean scanned uncapped) and ``hi / 2``; None if ``hi`` fails. A larger cap scans a superset,
    so passing is monotone in the cap."""

    def probe(cap: int) -> dict[str, Any]:
        m = measure({"nprobe": nprobe, "max_codes": cap})
        capped.append({"nprobe": nprobe, "max_codes": cap, **_pick(m, "recall", "recall_lcb", "codes_per_query")})
        return m

    m_hi = probe(hi)
    if not m_hi["ok"]:
        return None
    found, found_m = hi, m_hi
    lo = max(1, int(0.5 * hi))
    m_lo = probe(lo)
    if m_lo["ok"]:
        return lo, m_lo
    while hi - lo > max(8, hi // 64):
        mid = (lo + hi) // 2
        m_mid = probe(mid)
        if m_mid["ok"]:
            hi, found, found_m = mid, mid, m_mid
        else:
            lo = mid
    return found, found_m


def _fastest_ms_per_query(index: faiss.Index, q: _TuningQueries, repeats: int) -> float:
    """Milliseconds per query of the fastest of ``repeats`` (>= 1) batch searches at the current setting."""
    times = []
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        index.search(q.xq, q.kk)
        times.append(1e3 * (time.perf_counter() - t0) / len(q.xq))
    return min(times)


def build_tuned_index(
    xb: np.ndarray,
    metric: str,
    *,
    ids: np.ndarray | None = None,
    memory_budget_bytes: int | None = None,
    factory: str | None = None,
    target_recall: float = 0.95,
    k: int = 10,
    xq: np.ndarray | None = None,
    n_queries: int = 2000,
    seed: int = 0,
    choice_kwargs: dict[str, Any] | None = None,
) -> tuple[faiss.Index, dict[str, Any]]:
    """Choose, build, add and tune an index over ``xb``; return it with a report for the sidecar and MLflow.

    Args:
        xb: ``(N, D)`` finite vectors (cast to float32; normalised in a copy for ``cos``).
        metric: ``"l2"``, ``"ip"``, ``"cos"``, or ``"mips"``: maximum inner
            product over unnormalised vectors through the L2 reduction of
            :mod:`replearn.lib.store.mips` -- the index is then an L2 index over
            ``D + 1`` dimensions, ``report["mips_max_norm"]`` holds ``M``;
            search it with ``search_mips(index, xq, k, M)`` and save it with
            ``save_index(index, path, metric="l2", tuning=report)``.
        ids: optional ``(N,)`` distinct ids >= 0 returned by searches.
        memory_budget_bytes: passed to :func:`~replearn.lib.store.index_choice.choose_index`.
        factory: force a factory string instead of choosing (still tuned).
        target_recall, k, xq, n_queries, seed: as :func:`tune_index`. When
            ``xq`` is None and the chosen index is approximate,
            ``min(n_queries, N // 10)`` rows are held out: the index is built
            on the others, tuned with the held-out rows as queries (truly
            unseen, unlike a database sample: HNSW in particular finds the
            neighbours of an indexed point more easily than of a new one),
            then the held-out rows are added. The index then always returns
            ids (``ids``, else row positions) through an ``IndexIDMap2``.
        choice_kwargs: extra keyword arguments for ``choose_index`` (``flat_max``, ``hnsw_max``, ``nlist``).

    Returns:
        ``(index, report)``; ``report`` (JSON-ready) holds ``choice``
        (:meth:`IndexChoice.to_dict`), ``factory``, ``build_seconds``,
        ``tune_seconds``, ``index_bytes_estimate``
        (:func:`~replearn.lib.store.index_choice.estimate_index_bytes`) and ``tuning`` (:func:`tune_index`'s dict). Pass it
        as ``save_index(..., factory=report["factory"], recall_at_10=...,
        build_seconds=report["build_seconds"], tuning=report)``.

    Raises:
        EmbeddingsError: as ``choose_index``, ``build_index`` and ``tune_index``.
    """
    xb = _as_matrix(xb, "xb")
    n, d = xb.shape
    if n == 0:
        raise EmbeddingsError("xb is empty: nothing to index")
    choice = _choose(n, d, metric, memory_budget_bytes, factory, choice_kwargs)
    max_norm = None
    if metric == "mips":  # Bachrach et al. 2014: L2 search over one extra coordinate
        from replearn.lib.store.mips import mips_augment_database, mips_augment_queries

        xb, max_norm = mips_augment_database(xb)
        xq = None if xq is None else mips_augment_queries(xq)
        metric = "l2"
    ids_np = np.arange(n, dtype=np.int64) if ids is None else _as_ids(ids, n)
    hold = 0
    if xq is None and choice.kind not in ("flat",) and n >= 20:
        hold = min(int(n_queries), n // 10)
    if hold:
        index, tuning, build_seconds, tune_seconds = _build_tune_held_out(
            xb, metric, choice, ids_np, hold, mips=max_norm is not None, k=k, target_recall=target_recall, seed=seed)
    else:
        t0 = time.perf_counter()
        index = build_index(xb, metric, choice.factory, ids=ids, train_size=choice.train_size or None, seed=seed)
        build_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        tuning = tune_index(index, xb, xq, metric=metric, k=k, target_recall=target_recall, n_queries=n_queries,
                            seed=seed, ids=ids)
        tune_seconds = time.perf_counter() - t1
    return index, {
        "mips_max_norm": max_norm,
        "choice": choice.to_dict(),
        "factory": choice.factory,
        "build_seconds": build_seconds,
        "tune_seconds": tune_seconds,
        "index_bytes_estimate": choice.bytes_estimate or None,
        "tuning": tuning,
    }


def _choose(n: int, d: int, metric: str, memory_budget_bytes: int | None, factory: str | None,
            choice_kwargs: dict[str, Any] | None) -> IndexChoice:
    """:func:`~replearn.lib.store.index_choice.choose_index`, or the caller's ``factory`` as a "given" choice."""
    if factory is None:
        return choose_index(n, d, metric, memory_budget_bytes, **(choice_kwargs or {}))
    return IndexChoice(factory, "given", metric, None, notes=["factory given by the caller"])


def _build_tune_held_out(xb: np.ndarray, metric: str, choice: IndexChoice, ids_np: np.ndarray, hold: int, *,
                         mips: bool, k: int, target_recall: float, seed: int
                         ) -> tuple[faiss.Index, dict[str, Any], float, float]:
    """Build on all rows but ``hold`` random ones, tune with those as truly unseen queries, then add them.

    IVF and HNSW add incrementally; ids keep the rows' original ids / positions.
    ``mips``: ``xb`` is MIPS-augmented (``D + 1`` columns), so the held-out
    queries are its first ``D`` columns with a 0 appended.

    Returns:
        ``(index, tuning dict, build seconds, tune seconds)``.
    """
    from replearn.lib.store.mips import mips_augment_queries

    n = len(xb)
    t0 = time.perf_counter()
    mask = np.zeros(n, bool)
    mask[np.random.default_rng(seed).choice(n, size=hold, replace=False)] = True
    rest, held = np.flatnonzero(~mask), np.flatnonzero(mask)
    train = min(choice.train_size, len(rest)) if choice.train_size else None
    index = build_index(xb[rest], metric, choice.factory, ids=ids_np[rest], train_size=train, seed=seed)
    build_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    xq = mips_augment_queries(xb[held][:, :-1]) if mips else xb[held]
    tuning = tune_index(index, xb[rest], xq, metric=metric, k=k, target_recall=target_recall, ids=ids_np[rest])
    tuning["queries"] = f"{hold} database rows held out of the index while tuning, added after"
    tune_seconds = time.perf_counter() - t1
    t2 = time.perf_counter()
    add_vectors(index, xb[held], metric, ids=ids_np[held])
    build_seconds += time.perf_counter() - t2
    return index, tuning, build_seconds, tune_seconds


def tuning_metrics(report: dict[str, Any], prefix: str = "index.") -> dict[str, float]:
    """Flatten a :func:`build_tuned_index` report (or a :func:`tune_index` dict) to MLflow metrics.

    Keys: ``{prefix}recall_at_{k}``, ``{prefix}ms_per_query``,
    ``{prefix}queries_per_second``, ``{prefix}{param}`` (e.g. ``index.nprobe``, ``index.max_codes``),
    ``{prefix}codes_per_query`` (IVF),
    ``{prefix}build_seconds``, ``{prefix}index_bytes_estimate`` where present. Values are floats.
    """
    t = report.get("tuning", report)
    out = {f"{prefix}recall_at_{t['k']}": float(t["recall_at_k"]), f"{prefix}ms_per_query": float(t["ms_per_query"])}
    if t["ms_per_query"] > 0:
        out[f"{prefix}queries_per_second"] = 1e3 / float(t["ms_per_query"])
    if t.get("param"):
        out[f"{prefix}{t['param']}"] = float(t["value"])
    for name, value in (t.get("params") or {}).items():  # e.g. index.max_codes
        out[f"{prefix}{name}"] = float(value)
    if t.get("codes_per_query") is not None:
        out[f"{prefix}codes_per_query"] = float(t["codes_per_query"])
    for key in ("build_seconds", "index_bytes_estimate"):
        if report.get(key) is not None:
            out[f"{prefix}{key}"] = float(report[key])
    return out
