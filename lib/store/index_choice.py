"""Choose a FAISS index from the number of vectors, their dimension and a memory budget (like autofaiss).

:func:`choose_index` returns an :class:`IndexChoice`: a ``faiss.index_factory``
string, the search parameter to tune (``nprobe`` for IVF, ``efSearch`` for
HNSW, none for Flat), how many vectors to train on, and the estimated index
size. It never builds anything; :func:`replearn.lib.store.faiss_index.build_index`
builds the factory and :func:`replearn.lib.store.index_tuning.tune_index`
tunes the search parameter.

Decision, in order (``N`` vectors of dimension ``d``, budget ``B`` bytes, default unlimited):

1. ``N < flat_max`` (default 20,000) and ``N * d * 4 <= B``: ``"Flat"``, exact.
2. ``N <= hnsw_max`` (default 200,000) and the HNSW graph fits:
   ``"HNSW32"`` (Malkov & Yashunin 2018, "Efficient and robust approximate
   nearest neighbor search using Hierarchical Navigable Small World graphs",
   IEEE TPAMI). About ``N * (4 d + 32 * 2 * 4 * 1.05)`` bytes. No training.
3. IVF-Flat fits (``N * (4 d + 8) + nlist * d * 4``): ``"IVF{nlist},Flat"``.
   On clustered data with N around 1M this is also faster per query at
   recall@10 0.95 than HNSW32 (see bench/README.md, "faiss_scale.py"), and it
   builds in a fraction of HNSW's time on few cores.
4. Otherwise product quantisation (Jégou, Douze & Schmid 2011, "Product
   quantization for nearest neighbor search", IEEE TPAMI):
   ``"IVF{nlist},PQ{m}"`` with the largest ``m`` (bytes per vector, dividing
   ``d``) that fits, preceded by an OPQ rotation (Ge, He, Ke & Sun 2013,
   "Optimized product quantization", CVPR) -- ``"OPQ{m},IVF{nlist},PQ{m}"`` --
   when each sub-quantizer codes 4 or more dimensions (``d / m >= 4``), where
   the rotation's balancing of variance across sub-spaces helps most.
5. Nothing fits: :class:`EmbeddingsError` saying how much is needed.

``nlist`` (inverted lists) is the power of two nearest ``4 * sqrt(N)``
(faiss wiki "Guidelines to choose an index": between 4 and 16 sqrt(N)),
capped so that every centroid has at least ``MIN_POINTS_PER_CENTROID`` = 39
training vectors (below that FAISS's k-means warns and clusters badly); the
cap is reported in ``IndexChoice.notes``. Training uses at most
``TRAIN_POINTS_PER_CENTROID`` = 64 vectors per centroid (a subsample; k-means
time grows with it, quality barely). PQ needs at least ``2**8 = 256``
training vectors (one per code of each 8-bit sub-quantizer).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from replearn.lib.errors import EmbeddingsError

__all__ = [
    "MIN_POINTS_PER_CENTROID",
    "MIN_PQ_TRAIN",
    "IndexChoice",
    "cap_nlist",
    "choose_index",
    "estimate_index_bytes",
    "suggest_nlist",
]

MIN_POINTS_PER_CENTROID = 39
"""FAISS's k-means minimum of training vectors per centroid (``ClusteringParameters.min_points_per_centroid``)."""

TRAIN_POINTS_PER_CENTROID = 64
"""Training subsample per IVF centroid; FAISS itself caps at 256."""

MIN_PQ_TRAIN = 256
"""PQ with 8-bit codes trains 256 centroids per sub-quantizer: it needs at least 256 training vectors."""

MIN_PQ_TRAIN_RECOMMENDED = 256 * 39
"""FAISS recommends >= 39 points per PQ centroid as for IVF (9,984); fewer trains a worse codebook."""

PQ_TRAIN_MAX = 65536
"""PQ (and OPQ) codebooks are trained on at most this many vectors."""

HNSW_M = 32
_PQ_M_CHOICES = (64, 48, 32, 24, 16, 12, 8, 4, 2, 1)
"""Bytes per vector tried for PQ, largest first (FAISS supports these for 8-bit codes)."""


@dataclass(frozen=True)
class IndexChoice:
    """What :func:`choose_index` decided.

    Attributes:
        factory: ``faiss.index_factory`` string, e.g. ``"IVF4096,Flat"``.
        kind: ``"flat"``, ``"hnsw"``, ``"ivf_flat"`` or ``"ivf_pq"``.
        metric: ``"ip"``, ``"l2"``, ``"cos"`` or ``"mips"`` (as given).
        search_param: the parameter :func:`~replearn.lib.store.index_tuning.tune_index`
            tunes: ``"nprobe"`` (IVF), ``"efSearch"`` (HNSW) or ``None`` (Flat).
        nlist: inverted lists (IVF) or ``None``.
        pq_m: PQ bytes per vector or ``None``.
        train_size: vectors to train on (a random subsample of ``N``); 0 when
            the index needs no training.
        bytes_estimate: estimated index size in bytes.
        notes: human-readable remarks (caps applied, why this kind).
    """

    factory: str
    kind: str
    metric: str
    search_param: str | None
    nlist: int | None = None
    pq_m: int | None = None
    train_size: int = 0
    bytes_estimate: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the fields (for the index sidecar and MLflow params)."""
        return asdict(self)


def _check_int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) and not hasattr(v, "__index__") or int(v) < lo:
        raise EmbeddingsError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def suggest_nlist(n: int) -> int:
    """The power of two nearest ``4 * sqrt(n)`` (at least 1), before the 39-points cap.

    Examples: 100k -> 1024, 1M -> 4096, 10M -> 16384.
    """
    n = _check_int("n", n, 1)
    return max(1, 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n)))))


def cap_nlist(nlist: int, n_train: int, min_points: int = MIN_POINTS_PER_CENTROID) -> tuple[int, str | None]:
    """Cap ``nlist`` so that each centroid gets at least ``min_points`` of ``n_train`` training vectors.

    Returns:
        ``(nlist', note)``: ``nlist' = min(nlist, n_train // min_points)``,
        rounded down to a power of two when capped; ``note`` says what was
        capped and why, or ``None`` when nothing was.

    Raises:
        EmbeddingsError: ``n_train < min_points``: not even one centroid can be
            trained; the message says to use a Flat index.
    """
    nlist = _check_int("nlist", nlist, 1)
    n_train = _check_int("n_train", n_train, 0)
    most = n_train // min_points
    if most < 1:
        raise EmbeddingsError(
            f"too few vectors to train an IVF index: {n_train} < {min_points} (k-means needs at least "
            f"{min_points} training vectors per centroid): use a Flat index"
        )
    if nlist <= most:
        return nlist, None
    capped = 2 ** int(math.log2(most))
    return capped, (
        f"nlist capped from {nlist} to {capped}: {n_train} training vectors allow at most "
        f"{n_train} // {min_points} = {most} centroids with >= {min_points} vectors each"
    )


def estimate_index_bytes(kind: str, n: int, d: int, *, nlist: int = 0, pq_m: int = 0, opq: bool = False) -> int:
    """Approximate resident size in bytes of an index of ``n`` vectors of dimension ``d``.

    ``flat``: ``4 n d``. ``hnsw``: ``n (4 d + 2 * 32 * 4 * 1.05)`` (level-0
    links are 2M ints, upper levels add ~5 %). ``ivf_flat``: ``n (4 d + 8) + 4
    nlist d`` (codes + ids + centroids). ``ivf_pq``: ``n (m + 8) + 4 nlist d +
    4 * 256 d`` (+ ``4 d^2`` for OPQ). ``+8`` per vector everywhere an
    ``IndexIDMap`` is used is included in the IVF ids.
    """
    if kind == "flat":
        return 4 * n * d
    if kind == "hnsw":
        return int(n * (4 * d + 2 * HNSW_M * 4 * 1.05))
    if kind == "ivf_flat":
        return n * (4 * d + 8) + 4 * nlist * d
    if kind == "ivf_pq":
        return n * (pq_m + 8) + 4 * nlist * d + 4 * 256 * d + (4 * d * d if opq else 0)
    raise EmbeddingsError(f"unknown index kind {kind!r}; one of flat, hnsw, ivf_flat, ivf_pq")


def choose_index(
    n: int,
    d: int,
    metric: str = "l2",
    memory_budget_bytes: int | None = None,
    *,
    flat_max: int = 20_000,
    hnsw_max: int = 200_000,
    nlist: int | None = None,
) -> IndexChoice:
    """Choose a FAISS factory string for ``n`` vectors of dimension ``d`` within a memory budget.

    Args:
        n: number of vectors, >= 1.
        d: dimension, >= 1 (for ``metric="mips"`` pass the original dimension;
            the extra coordinate of the reduction is added here).
        metric: ``"l2"``, ``"ip"``, ``"cos"`` or ``"mips"``; recorded in the
            choice (the factory is metric-independent; the metric is given to
            ``index_factory`` by ``build_index``).
        memory_budget_bytes: the most the index may take, or ``None`` for no
            limit. Compared with :func:`estimate_index_bytes`.
        flat_max: below this many vectors the exact Flat index is used
            (default 20,000: a Flat scan of 20k x 128 costs ~1 ms per query).
        hnsw_max: up to this many vectors HNSW32 is preferred to IVF when it
            fits (default 200,000; beyond it HNSW's build time on few cores
            and its memory grow past IVF's with no gain at recall@10 0.95 on
            clustered data).
        nlist: force the number of inverted lists (still capped at 39 points
            per centroid); default :func:`suggest_nlist`.

    Returns:
        An :class:`IndexChoice` (see the module docstring for the rules).

    Raises:
        EmbeddingsError: bad arguments; nothing fits in the budget (the
            message gives the smallest size needed); IVF/PQ needed but too few
            vectors to train it (fewer than 39 or 256).
    """
    n = _check_int("n", n, 1)
    d = _check_int("d", d, 1)
    if metric not in ("l2", "ip", "cos", "mips"):
        raise EmbeddingsError(f"metric must be one of l2, ip, cos, mips; got {metric!r}")
    if memory_budget_bytes is not None:
        memory_budget_bytes = _check_int("memory_budget_bytes", memory_budget_bytes, 1)
    budget = math.inf if memory_budget_bytes is None else memory_budget_bytes
    dd = d + 1 if metric == "mips" else d
    notes: list[str] = []
    if metric == "mips":
        notes.append("mips: reduced to L2 search over d+1 dimensions (Bachrach et al. 2014)")
    choice = _flat_or_hnsw(n, dd, metric, budget, flat_max, hnsw_max, notes)
    if choice is not None:
        return choice
    return _ivf(n, dd, metric, nlist, hnsw_max, memory_budget_bytes, notes)


def _ivf(n: int, dd: int, metric: str, nlist: int | None, hnsw_max: int, memory_budget_bytes: int | None,
         notes: list[str]) -> IndexChoice:
    """Rules 3-5: IVF-Flat if it fits, else IVF-PQ (:func:`_ivf_pq`), with ``nlist`` capped for training.

    Raises:
        EmbeddingsError: too few vectors to train IVF (or PQ), or nothing fits.
    """
    budget = math.inf if memory_budget_bytes is None else memory_budget_bytes
    if n < MIN_POINTS_PER_CENTROID:
        raise EmbeddingsError(
            f"a Flat index of {n} x {dd} needs {estimate_index_bytes('flat', n, dd)} bytes, over "
            f"memory_budget_bytes={memory_budget_bytes}, "
            f"and {n} vectors are too few to train IVF (>= {MIN_POINTS_PER_CENTROID}): raise the budget"
        )
    want = suggest_nlist(n) if nlist is None else _check_int("nlist", nlist, 1)
    nl, note = cap_nlist(want, n)
    if note:
        notes.append(note)
    train = min(n, TRAIN_POINTS_PER_CENTROID * nl)
    ivf_bytes = estimate_index_bytes("ivf_flat", n, dd, nlist=nl)
    if ivf_bytes <= budget:
        why = "over hnsw_max" if n > hnsw_max else "HNSW over budget"
        return IndexChoice(f"IVF{nl},Flat", "ivf_flat", metric, "nprobe", nlist=nl, train_size=train,
                           bytes_estimate=ivf_bytes, notes=notes + [f"N={n} {why}; IVF-Flat fits"])
    if n < MIN_PQ_TRAIN:
        raise EmbeddingsError(
            f"IVF-Flat needs {ivf_bytes} bytes, over memory_budget_bytes={memory_budget_bytes}, and PQ needs at "
            f"least {MIN_PQ_TRAIN} training vectors (got {n}): raise the budget"
        )
    return _ivf_pq(n, dd, metric, nl, train, ivf_bytes, memory_budget_bytes, notes)


def _flat_or_hnsw(n: int, dd: int, metric: str, budget: float, flat_max: int, hnsw_max: int,
                  notes: list[str]) -> IndexChoice | None:
    """Rules 1-2 of the module docstring: exact Flat below ``flat_max``, HNSW up to ``hnsw_max``, if they
    fit in ``budget`` bytes; None otherwise. ``dd``: the indexed dimension (``d + 1`` for mips)."""
    flat_bytes = estimate_index_bytes("flat", n, dd)
    if n < flat_max and flat_bytes <= budget:
        return IndexChoice("Flat", "flat", metric, None, bytes_estimate=flat_bytes,
                           notes=notes + [f"N={n} < flat_max={flat_max}: exact search"])
    hnsw_bytes = estimate_index_bytes("hnsw", n, dd)
    if n <= hnsw_max and hnsw_bytes <= budget:
        return IndexChoice(f"HNSW{HNSW_M}", "hnsw", metric, "efSearch", bytes_estimate=hnsw_bytes,
                           notes=notes + [f"N={n} <= hnsw_max={hnsw_max} and HNSW{HNSW_M} fits: graph index"])
    return None


def _ivf_pq(n: int, dd: int, metric: str, nl: int, train: int, ivf_bytes: int, memory_budget_bytes: int | None,
            notes: list[str]) -> IndexChoice:
    """Rule 4: IVF-PQ with the most bytes per vector that fit (OPQ when ``dd / m >= 4``).

    Raises:
        EmbeddingsError: not even the smallest PQ fits; the message gives its size.
    """
    budget = math.inf if memory_budget_bytes is None else memory_budget_bytes
    for m in _PQ_M_CHOICES:
        if dd % m or m > dd:
            continue
        opq = dd // m >= 4
        pq_bytes = estimate_index_bytes("ivf_pq", n, dd, nlist=nl, pq_m=m, opq=opq)
        if pq_bytes <= budget:
            factory = f"OPQ{m},IVF{nl},PQ{m}" if opq else f"IVF{nl},PQ{m}"
            if n < MIN_PQ_TRAIN_RECOMMENDED:
                notes.append(f"PQ codebooks trained on {n} < {MIN_PQ_TRAIN_RECOMMENDED} vectors: expect lower recall")
            return IndexChoice(factory, "ivf_pq", metric, "nprobe", nlist=nl, pq_m=m,
                               train_size=min(n, max(train, PQ_TRAIN_MAX)), bytes_estimate=pq_bytes,
                               notes=notes + [f"IVF-Flat ({ivf_bytes} B) over budget: PQ{m} ({m} B/vector)"
                                              + (", OPQ rotation since d/m >= 4" if opq else "")])
    smallest = min(estimate_index_bytes("ivf_pq", n, dd, nlist=nl, pq_m=m) for m in _PQ_M_CHOICES if dd % m == 0)
    raise EmbeddingsError(
        f"no index of {n} x {dd} vectors fits in memory_budget_bytes={memory_budget_bytes}: the smallest "
        f"(IVF-PQ) needs about {smallest} bytes; raise the budget or index fewer vectors"
    )
