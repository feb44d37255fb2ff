"""Hard negatives mined from a FAISS index over the whole training set, with a false-negative guard.

An in-batch miner (:mod:`replearn.lib.metric.miners`) sees only the B images of
one batch, so its "hardest" negative is the hardest of a few hundred. Here the
embeddings of every training image go into a FAISS index and each anchor's
negatives are its nearest differently-labelled images in the whole set: ANCE
(Xiong et al. 2021, "Approximate Nearest Neighbor Negative Contrastive Learning
for Dense Text Retrieval", ICLR, sec. 3-4: negatives retrieved from an ANN
index of the whole corpus, the index refreshed with the current encoder during
training) and sentence-transformers' ``util.mine_hard_negatives`` (the
``num_negatives`` nearest candidates of each query that are not its positive,
from a FAISS index when ``use_faiss=True``).

:func:`mine_triplets` takes embeddings ``(N, D)`` and labels ``(N,)`` and does:

1. **Index.** An exact ``Flat`` index (:func:`replearn.lib.store.faiss_index.build_index`;
   an exact index costs O(N^2 D) per refresh, about a second for N = 30 000, D = 32,
   and gives the same neighbours as brute force) whose metric follows the loss's
   ``distance``: ``euclidean`` / ``squared_euclidean`` -> ``"l2"``,
   ``cosine_distance`` -> ``"cos"``, ``inner_product`` -> ``"ip"``.
2. **Candidates.** Each anchor's ``k`` nearest *other* items, nearest first
   (:func:`replearn.lib.store.knn_graph.knn_graph` over that index: the anchor
   itself removed by id), ``k`` truncated to ``N - 1``.
3. **False-negative guard.** Candidates that share the anchor's label are
   removed: with class labels they are positives, not negatives (a text miner
   removes only the query's own positive; here the whole class is known). The
   remaining candidates, nearest first, are the anchor's negatives; the first
   ``negatives`` are kept: the hardest of the whole set.
   Once training separates the classes, an anchor's ``k`` nearest may all share
   its label. Such an anchor (``fallback_anchors``) is searched again in an index
   of the other classes only, which gives its nearest negatives whatever ``k``:
   ``k`` decides how much is searched at once, never which negatives are kept.
   A negative's ``negative_rank`` is its 1-based rank among all other items by
   distance (the anchor's retrieval list, before the guard): the same-label items
   nearer than it count, those beyond the ``k`` candidates too (counted exactly).
   ``guard_removed`` is, summed over anchors, the number of same-label items
   ranked ahead of the anchor's last kept negative: the candidates a miner
   without the guard would have taken as negatives (or ranked ahead of them),
   ``max(negative_rank) - #negatives`` per anchor. Only data with a single
   class leaves an anchor without a negative (``anchors_without_negative``).
4. **Positive.** One per anchor, drawn uniformly from the other members of its
   class: with ``u = numpy.random.default_rng(seed).random(N)``, anchor ``i`` of
   class ``c`` (``n_c`` members) takes the ``floor(u[i] * (n_c - 1))``-th member
   of ``c`` other than ``i``, in id order. ANCE and ``mine_hard_negatives`` use
   the query's labelled positive; with class labels any same-class image is one,
   so one is drawn, as a PK batch does. (Taking the farthest same-class image
   instead would make one odd or mislabelled image every anchor's positive, and
   needs all pairs within each class.) An anchor alone in its class gets no
   triplet (``anchors_without_positive``).

**Pairs** (:func:`mine_pair_negatives`; the CLIP flow's image-caption pairs,
lib/clip/mining.py). Queries and candidates of two kinds, e.g. the images and
the distinct captions, each with a class. The index is built over the
candidates and searched with the queries; each query's positive candidate is
given (its own caption), and the guard removes every candidate of the query's
class (the positive included: a caption of the same class text is never a
negative). Steps 1-3 are as above with "other items" read as "all
candidates": a negative's rank counts the candidates ahead of it in the
query's retrieval list, its positive among them. Nothing is drawn (``seed``
0).

The result, :class:`MinedTriplets`, is one row per (anchor, negative):
``anchor_id, positive_id, negative_id, d_ap, d_an, negative_rank``, sorted by
anchor then rank; distances in the loss's convention (larger = farther,
:mod:`replearn.lib.metric.distances`): ``euclidean`` the Euclidean distance,
``squared_euclidean`` its square, ``cosine_distance`` ``1 - cos``,
``inner_product`` ``-<x, y>``. :meth:`MinedTriplets.to_arrow` gives it as a
pyarrow table (the ``mined.parquet`` of the metric flow's ``mine-negatives``
stage); :func:`write_mined` writes that atomically, :func:`read_mined` reads it
and :meth:`MinedTriplets.from_arrow` turns it back into positions (the train
stage's first epoch trains on it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.config import DISTANCES
from replearn.lib.store.atomic import atomic_path
from replearn.lib.store.faiss_index import build_index, search
from replearn.lib.store.knn_graph import knn_graph

__all__ = ["COLUMNS", "MINED_METADATA_KEY", "MinedTriplets", "batch_triplets", "check_mined", "draw_positives",
           "index_metric", "mine_pair_negatives", "mine_triplets", "read_mined", "write_mined"]

COLUMNS = ("anchor_id", "positive_id", "negative_id", "d_ap", "d_an", "negative_rank")
"""The columns of the mined table, in order."""

MINED_METADATA_KEY = b"replearn_mined"
"""Parquet footer key of the mined table's JSON metadata (k, negatives, distance, seed, counts)."""

_METADATA_FIELDS = ("n", "k", "negatives", "distance", "seed", "guard_removed", "anchors_without_positive",
                    "anchors_without_negative", "fallback_anchors")
"""The scalar fields of :class:`MinedTriplets`, as :meth:`MinedTriplets.metadata` names them."""

_INDEX_METRIC = {"euclidean": "l2", "squared_euclidean": "l2", "cosine_distance": "cos", "inner_product": "ip"}


def index_metric(distance: str) -> str:
    """The FAISS metric (``"l2"``, ``"cos"``, ``"ip"``) that ranks neighbours as the loss's ``distance`` does.

    Raises:
        ReplearnInputError: ``distance`` is not one of :data:`~replearn.lib.metric.config.DISTANCES`.
    """
    if distance not in _INDEX_METRIC:
        raise ReplearnInputError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")
    return _INDEX_METRIC[distance]


@dataclass(frozen=True)
class MinedTriplets:
    """Triplets mined from an index (module docstring), one row per (anchor, negative), T rows.

    Attributes:
        anchor, positive, negative: int64 (T,) positions 0..N-1 in the embeddings mined.
        d_ap, d_an: float32 (T,) distances anchor-positive and anchor-negative (the loss's ``distance``).
        negative_rank: int32 (T,) 1-based rank of the negative among all other items by distance (the
            anchor's retrieval list before the guard, beyond the ``k`` candidates too), >= 1.
        n: N, the items mined over. k: candidates searched per anchor (``min(k, N - 1)``).
        negatives: negatives kept per anchor (at most). distance: the loss's distance kind. seed: of the positives.
        guard_removed: same-label items ranked ahead of each anchor's last kept negative, summed (>= 0).
        anchors_without_positive: anchors alone in their class (no triplet).
        anchors_without_negative: anchors with a positive but no item of another label (single-class data).
        fallback_anchors: anchors whose ``k`` candidates held fewer than ``negatives`` negatives, searched
            again among the other classes (module docstring, step 3).
    """

    anchor: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    d_ap: np.ndarray
    d_an: np.ndarray
    negative_rank: np.ndarray
    n: int
    k: int
    negatives: int
    distance: str
    seed: int
    guard_removed: int
    anchors_without_positive: int
    anchors_without_negative: int
    fallback_anchors: int = 0

    def __len__(self) -> int:
        return len(self.anchor)

    def metadata(self) -> dict[str, Any]:
        """The scalar fields as a plain dict (the Parquet footer's JSON)."""
        return {f: getattr(self, f) for f in _METADATA_FIELDS}

    def to_arrow(self, ids: np.ndarray | None = None, extra: dict[str, Any] | None = None) -> pa.Table:
        """The table :data:`COLUMNS` (int64 ids, float32 distances, int32 rank) with :meth:`metadata` (and
        ``extra``) as JSON under :data:`MINED_METADATA_KEY`.

        Args:
            ids: (N,) int64 ids of the N items (e.g. rows of the flow's ``images.npz``, the ``id`` column of the
                exported embeddings); default the positions 0..N-1.
            extra: more JSON-able metadata (e.g. the MLflow run, what the ids are).

        Raises:
            ReplearnInputError: ``ids`` is not (N,).
        """
        pos = np.arange(self.n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        if pos.shape != (self.n,):
            raise ReplearnInputError(f"ids must be ({self.n},), one per item mined over; got shape {pos.shape}")
        table = pa.table({"anchor_id": pos[self.anchor], "positive_id": pos[self.positive],
                          "negative_id": pos[self.negative], "d_ap": self.d_ap.astype(np.float32),
                          "d_an": self.d_an.astype(np.float32), "negative_rank": self.negative_rank.astype(np.int32)})
        meta = {**self.metadata(), **(extra or {})}
        return table.replace_schema_metadata({MINED_METADATA_KEY: json.dumps(meta).encode()})

    @classmethod
    def from_arrow(cls, table: pa.Table, metadata: dict[str, Any], ids: np.ndarray | None = None) -> MinedTriplets:
        """The triplets of a mined table (:meth:`to_arrow`, read back by :func:`read_mined`), in positions again.

        Args:
            table: the columns :data:`COLUMNS`. metadata: its JSON metadata (:meth:`metadata` and more).
            ids: (N,) the ids the table was written with (:meth:`to_arrow`), each id once; default 0..N-1 with N
                the metadata's ``n``. Row ``i`` of the items trained on has id ``ids[i]``.

        Returns:
            :class:`MinedTriplets` sorted by (anchor, negative_rank), as :func:`mine_triplets` returns them.

        Raises:
            ReplearnInputError: a column or a metadata field is missing, ``ids`` do not match the metadata's ``n``
                or repeat, or the table holds an id not in ``ids`` (mined over other data: mine again).
        """
        missing = [c for c in COLUMNS if c not in table.column_names]
        missing += [f for f in _METADATA_FIELDS if f not in metadata]
        if missing:
            raise ReplearnInputError(f"a mined table needs the columns {', '.join(COLUMNS)} and the metadata "
                                     f"{', '.join(_METADATA_FIELDS)}; missing {missing}: write it with "
                                     f"MinedTriplets.to_arrow()")
        n = int(metadata["n"])
        pos_ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        if pos_ids.shape != (n,) or len(np.unique(pos_ids)) != n:
            raise ReplearnInputError(f"the mined table was mined over {n} items; ids must be ({n},) distinct, got "
                                     f"shape {pos_ids.shape}: pass the ids it was written with")
        sorter = np.argsort(pos_ids, kind="stable")

        def positions(column: str) -> np.ndarray:
            v = table.column(column).to_numpy().astype(np.int64)
            at = np.minimum(np.searchsorted(pos_ids, v, sorter=sorter), n - 1)
            p = sorter[at]
            if len(v) and not (pos_ids[p] == v).all():
                bad = v[pos_ids[p] != v]
                raise ReplearnInputError(f"the mined table's {column} holds {len(bad)} id(s) not among the items "
                                         f"trained on (e.g. {bad[:3].tolist()}): it was mined over other data; run "
                                         f"the mine stage again on this data")
            return p.astype(np.int64)

        a, p, ng = positions("anchor_id"), positions("positive_id"), positions("negative_id")
        rank = table.column("negative_rank").to_numpy().astype(np.int32)
        order = np.lexsort((rank, a))
        return cls(anchor=a[order], positive=p[order], negative=ng[order],
                   d_ap=table.column("d_ap").to_numpy().astype(np.float32)[order],
                   d_an=table.column("d_an").to_numpy().astype(np.float32)[order], negative_rank=rank[order],
                   **{f: metadata[f] for f in _METADATA_FIELDS})


def draw_positives(labels: np.ndarray, seed: int) -> np.ndarray:
    """One positive per item: a uniformly drawn other member of its class (module docstring, step 4).

    Args:
        labels: (N,) integer class ids.
        seed: >= 0; ``u = numpy.random.default_rng(seed).random(N)`` decides every draw.

    Returns:
        int64 (N,): for item ``i`` of class ``c`` the ``floor(u[i] * (n_c - 1))``-th member of ``c`` other than
        ``i`` (members in id order), or -1 when ``i`` is alone in its class.
    """
    y = np.asarray(labels)
    n = len(y)
    u = np.random.default_rng(seed).random(n)
    order = np.argsort(y, kind="stable")                                         # ids grouped by class, ascending
    _, start, count = np.unique(y[order], return_index=True, return_counts=True)
    cls = np.searchsorted(y[order][start], y)                                    # (N,) class index of each item
    where = np.empty(n, dtype=np.int64)
    where[order] = np.arange(n) - np.repeat(start, count)                        # (N,) rank of i within its class
    others = count[cls] - 1                                                      # (N,) n_c - 1
    j = np.minimum(np.floor(u * others).astype(np.int64), np.maximum(others - 1, 0))
    j = j + (j >= where)                                                         # skip the item itself
    out = order[np.minimum(start[cls] + j, n - 1)]
    return np.where(others > 0, out, -1).astype(np.int64)


def _distances(xa: np.ndarray, xb: np.ndarray, distance: str) -> np.ndarray:
    """(A, B) float64 distances between the rows of ``xa`` (A, D) and ``xb`` (B, D), as ``distance`` defines them
    (the Euclidean kinds by the distance-matrix expansion, clamped at 0)."""
    a, b = xa.astype(np.float64), xb.astype(np.float64)
    if distance == "cosine_distance":
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return 1.0 - a @ b.T
    if distance == "inner_product":
        return -(a @ b.T)
    d2 = np.maximum((a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T), 0.0)
    return np.sqrt(d2) if distance == "euclidean" else d2


def _pair_distance(xa: np.ndarray, xb: np.ndarray, distance: str) -> np.ndarray:
    """Row-wise distance (T,) float32 between ``xa`` and ``xb`` (T, D), in float64, as ``distance`` defines it."""
    a, b = xa.astype(np.float64), xb.astype(np.float64)
    if distance in ("euclidean", "squared_euclidean"):
        d2 = ((a - b) ** 2).sum(axis=1)
        return (np.sqrt(d2) if distance == "euclidean" else d2).astype(np.float32)
    if distance == "cosine_distance":
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        return (1.0 - (a * b).sum(axis=1) / (na * nb)).astype(np.float32)
    return (-(a * b).sum(axis=1)).astype(np.float32)


def _as_distance(similarity: np.ndarray, distance: str) -> np.ndarray:
    """knn_graph's similarity (cos, ip, or minus the squared L2 distance) -> the loss's distance, float32."""
    s = similarity.astype(np.float64)
    if distance == "euclidean":
        d = np.sqrt(np.maximum(-s, 0.0))
    elif distance == "squared_euclidean":
        d = np.maximum(-s, 0.0)
    elif distance == "cosine_distance":
        d = 1.0 - s
    else:
        d = -s
    return d.astype(np.float32)


def _check_embeddings(embeddings: Any, what: str) -> np.ndarray:
    """float32 (N, D) C-contiguous ``embeddings``, N >= 2, finite; ``what`` names them in the error."""
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.dtype.kind != "f" or len(x) < 2:
        raise ReplearnInputError(f"mining needs float {what} (N, D) with N >= 2; got dtype {x.dtype} shape {x.shape}")
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        raise ReplearnInputError(f"{what} hold NaN/Inf in {len(bad)} row(s), first {bad[:5].tolist()}: "
                                 f"the encoder diverged; lower the learning rate")
    return np.ascontiguousarray(x, dtype=np.float32)


def _check(embeddings: Any, labels: Any, k: int, negatives: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = _check_embeddings(embeddings, "embeddings")
    y = np.asarray(labels)
    if y.shape != (len(x),) or y.dtype.kind not in "iu":
        raise ReplearnInputError(f"labels must be (N,) integer class ids, one per embedding: {len(x)} embeddings, "
                                 f"labels {y.dtype} shape {y.shape}")
    for name, value in (("k", k), ("negatives", negatives)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ReplearnInputError(f"{name} must be an integer >= 1, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ReplearnInputError(f"seed must be an integer >= 0, got {seed!r}")
    return x, y.astype(np.int64)


def mine_triplets(embeddings: np.ndarray, labels: np.ndarray, *, k: int = 100, negatives: int = 1,
                  distance: str = "euclidean", seed: int = 0) -> MinedTriplets:
    """Mine (anchor, positive, hard negative) triplets over all of ``embeddings`` (module docstring, steps 1-4).

    Args:
        embeddings: float (N, D), N >= 2, finite (no zero rows for ``cosine_distance``).
        labels: int (N,) class ids.
        k: candidates searched per anchor at once, >= 1 (truncated to N - 1); anchors with fewer than
            ``negatives`` negatives among them are searched again among the other classes.
        negatives: negatives kept per anchor, >= 1: its ``negatives`` nearest items of another label.
        distance: the loss's distance kind (:data:`~replearn.lib.metric.config.DISTANCES`).
        seed: >= 0, the positives' draw (:func:`draw_positives`).

    Returns:
        :class:`MinedTriplets`, T = sum over anchors with a positive of min(negatives, items of other labels)
        rows, sorted by (anchor, negative_rank); no negative shares its anchor's label.

    Raises:
        ReplearnInputError: embeddings not (N, D) float with N >= 2, NaN/Inf rows, labels not (N,) integers,
            ``k`` / ``negatives`` < 1, ``seed`` < 0, an unknown ``distance``; EmbeddingsError (a subclass)
            for zero vectors with ``cosine_distance``.
    """
    x, y = _check(embeddings, labels, k, negatives, seed)
    return _mine(x, x, y, y, draw_positives(y, seed), int(k), int(negatives), distance, int(seed))


def mine_pair_negatives(queries: np.ndarray, candidates: np.ndarray, query_labels: np.ndarray,
                        candidate_labels: np.ndarray, positive: np.ndarray, *, k: int = 100, negatives: int = 1,
                        distance: str = "cosine_distance") -> MinedTriplets:
    """Hard negatives of N queries among M candidates of another kind, e.g. images among captions: each query's
    positive is given, its negatives are the nearest candidates of another label (module docstring, "Pairs").

    Args:
        queries: float (N, D) (the images' embeddings), N >= 2, finite.
        candidates: float (M, D) (the captions' embeddings), M >= 2, finite, the queries' D.
        query_labels: int (N,), candidate_labels: int (M,): the class of each; the false-negative guard never
            takes a candidate of the query's class (e.g. a caption of the same class text).
        positive: int (N,) the row of each query's positive in ``candidates`` (its own caption), in 0..M-1.
        k: candidates searched per query at once, >= 1 (truncated to M); queries with fewer than ``negatives``
            negatives among them are searched again among the other classes.
        negatives: negatives kept per query, >= 1. distance: :data:`~replearn.lib.metric.config.DISTANCES`
            (``cosine_distance`` for CLIP's towers, whose similarity is the cosine).

    Returns:
        :class:`MinedTriplets` over the N queries: ``anchor`` query rows, ``positive`` and ``negative`` candidate
        rows, ``negative_rank`` the rank among all M candidates (the positive included), ``seed`` 0 (nothing is
        drawn), sorted by (anchor, negative_rank).

    Raises:
        ReplearnInputError: as :func:`mine_triplets`; candidates of another dimension, labels not one integer per
            row, ``positive`` not (N,) rows of ``candidates``.
    """
    x, yq = _check(queries, query_labels, k, negatives, 0)
    c = _check_embeddings(candidates, "candidates")
    yc = np.asarray(candidate_labels)
    if c.shape[1] != x.shape[1] or yc.shape != (len(c),) or yc.dtype.kind not in "iu":
        raise ReplearnInputError(f"candidates must be (M, {x.shape[1]}) float with (M,) integer labels; got "
                                 f"{c.shape} and labels {yc.dtype} {yc.shape}")
    pos = np.asarray(positive)
    if pos.shape != (len(x),) or pos.dtype.kind not in "iu" or (len(pos) and (pos.min() < 0 or pos.max() >= len(c))):
        raise ReplearnInputError(f"positive must be (N,) = ({len(x)},) rows of the {len(c)} candidates, one per "
                                 f"query; got {pos.dtype} {pos.shape}")
    return _mine(x, c, yq, yc.astype(np.int64), pos.astype(np.int64), int(k), int(negatives), distance, 0)


def _mine(xq: np.ndarray, xc: np.ndarray, yq: np.ndarray, yc: np.ndarray, positive: np.ndarray, k: int,
          negatives: int, distance: str, seed: int) -> MinedTriplets:
    """The miner (module docstring, steps 1-3) of queries ``xq`` (N, D) over candidates ``xc`` (M, D): the same
    array for :func:`mine_triplets` (the query itself is no candidate), other items for :func:`mine_pair_negatives`.
    ``yq`` (N,), ``yc`` (M,) their labels; ``positive`` (N,) the positive candidate of each query, -1: none."""
    metric = index_metric(distance)
    n, same = len(xq), xq is xc
    m = len(xc) - 1 if same else len(xc)                                         # candidates per query
    k_eff = min(k, m)
    if same:
        _, dst, sim = knn_graph(xq, k_eff, metric, index=build_index(xq, metric, "Flat"))
        cand, sim = dst.reshape(n, k_eff), sim.reshape(n, k_eff)                 # (N, k) nearest first
    else:
        D, cand = search(build_index(xc, metric, "Flat"), xq, k_eff, metric)    # (N, k) nearest first
        sim = -D if metric == "l2" else D
    d_cand = _as_distance(sim, distance)                                         # (N, k)
    other = ~(yc[cand] == yq[:, None])                                           # (N, k) what the guard keeps
    has_pos = positive >= 0
    labels, size = np.unique(yc, return_counts=True)
    at = np.minimum(np.searchsorted(labels, yq), len(labels) - 1)
    same_label = np.where(labels[at] == yq, size[at], 0) - (1 if same else 0)    # (N,) candidates of its label
    want = np.minimum(negatives, m - same_label)                                 # (N,) negatives to keep
    kept = other & has_pos[:, None]
    kept &= np.cumsum(kept, axis=1) <= want[:, None]                             # the hardest ones among the k
    fallback = has_pos & (kept.sum(axis=1) < want)                               # (N,) need a search beyond k
    a, col = np.nonzero(kept & ~fallback[:, None])                               # row-major: anchor, then rank
    neg, d_an, rank = cand[a, col], d_cand[a, col], col + 1
    if fallback.any():
        fa, fn, fd, fr = _fallback_negatives(xq, xc, yq, yc, np.flatnonzero(fallback), negatives, distance, metric)
        order = np.lexsort((np.concatenate([rank, fr]), np.concatenate([a, fa])))  # by anchor, then rank
        a, neg = np.concatenate([a, fa])[order], np.concatenate([neg, fn])[order]
        d_an, rank = np.concatenate([d_an, fd])[order], np.concatenate([rank, fr])[order]
    p = positive[a]
    last = np.zeros(n, dtype=np.int64)
    np.maximum.at(last, a, rank)                                                 # (N,) rank of the last negative
    return MinedTriplets(
        anchor=a.astype(np.int64), positive=p, negative=neg.astype(np.int64),
        d_ap=_pair_distance(xq[a], xc[p], distance), d_an=d_an.astype(np.float32),
        negative_rank=rank.astype(np.int32), n=n, k=k_eff, negatives=negatives, distance=distance,
        seed=seed, guard_removed=int(last.sum() - len(a)), anchors_without_positive=int((~has_pos).sum()),
        anchors_without_negative=int((has_pos & (want == 0)).sum()), fallback_anchors=int(fallback.sum()))


def _fallback_negatives(xq: np.ndarray, xc: np.ndarray, yq: np.ndarray, yc: np.ndarray, anchors: np.ndarray,
                        negatives: int, distance: str, metric: str) -> tuple[np.ndarray, ...]:
    """``(anchor, negative, d_an, rank)`` (each (F,)) of the ``anchors`` whose ``k`` candidates were too few: per
    class, an exact index over the candidates of the other classes gives their ``negatives`` nearest negatives;
    each negative's rank counts the same-class candidates nearer than it exactly (the query itself not, when
    ``xq is xc``; blocks of about 2**24 distances)."""
    out: list[list[np.ndarray]] = [[], [], [], []]
    for c in np.unique(yq[anchors]):
        fa = anchors[yq[anchors] == c]                                           # (f,) anchors of class c
        others = np.flatnonzero(yc != c)
        members = np.flatnonzero(yc == c)
        D, I = search(build_index(xc[others], metric, "Flat", ids=others), xq[fa], negatives, metric)
        d_an = _as_distance(-D if metric == "l2" else D, distance)               # (f, m) nearest first
        nearer = np.empty(d_an.shape, dtype=np.int64)                             # same-class candidates nearer
        step = max(1, (1 << 24) // max(1, len(members) * d_an.shape[1]))
        for s in range(0, len(fa), step):
            d_same = _distances(xq[fa[s:s + step]], xc[members], distance)        # (b, n_c)
            if xq is xc:
                d_same[fa[s:s + step, None] == members[None, :]] = np.inf        # not the anchor itself
            nearer[s:s + step] = (d_same[:, :, None] < d_an[s:s + step, None, :]).sum(axis=1)
        m = d_an.shape[1]
        out[0].append(np.repeat(fa, m))
        out[1].append(I.ravel())
        out[2].append(d_an.ravel())
        out[3].append((nearer + np.arange(1, m + 1)[None, :]).ravel())
    return tuple(np.concatenate(parts) for parts in out)


def check_mined(mined: MinedTriplets, labels: np.ndarray | None, *, negatives: int, distance: str,
                where: str) -> None:
    """Refuse triplets given to a trainer that were not mined over its items with its settings: another item count,
    distance or number of negatives, positions out of range, or a negative of its anchor's label (other labels).

    Args:
        mined: the triplets given. labels: (N,) the labels the trainer guards with (the metric trainer's class ids,
            the CLIP trainer's caption classes). negatives / distance: the trainer's ``mining_negatives`` and distance.
        where: the trainer, for the message (``train_metric``).

    Raises:
        ReplearnInputError: naming what differs and the fix (mine again with this run's settings).
    """
    n = 0 if labels is None else len(labels)
    differ = [f"{what} {got!r} (this run: {want!r})" for what, got, want in (
        ("items", mined.n, n), ("distance", mined.distance, distance),
        ("negatives per anchor", mined.negatives, negatives)) if got != want]
    if not differ and len(mined):
        ids = np.concatenate([mined.anchor, mined.positive, mined.negative])
        if ids.min() < 0 or ids.max() >= n:
            differ.append(f"positions in [{ids.min()}, {ids.max()}] (this run: 0..{n - 1})")
        elif (labels[mined.negative] == labels[mined.anchor]).any():
            differ.append("negatives of their anchor's label (mined over other labels)")
    if differ:
        raise ReplearnInputError(f"{where}: the mined triplets given do not fit this run: {'; '.join(differ)}; mine "
                                 f"them over these items with this run's settings, or pass mined=None to mine before "
                                 f"epoch 1")


def batch_triplets(mined: MinedTriplets, anchors: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The images a batch of ``anchors`` needs to train on their mined triplets, and those triplets in it.

    Args:
        mined: triplets sorted by anchor (as :func:`mine_triplets` returns them).
        anchors: int (B,) distinct positions 0..N-1 (e.g. one PK batch).

    Returns:
        ``(ids, (a, p, n))``: ``ids`` int64 (M,) the positions to embed, the ``anchors`` first in the order
        given, then every other positive and negative of their triplets once, ascending (B <= M <= B + T_b);
        ``a``, ``p``, ``n`` int64 (T_b,) positions into ``ids`` of the anchors' T_b triplets, in table order.
    """
    idx = np.asarray(anchors, dtype=np.int64)
    start = np.searchsorted(mined.anchor, idx, side="left")
    count = np.searchsorted(mined.anchor, idx, side="right") - start                # (B,) triplets per anchor
    first = np.cumsum(count) - count
    rows = np.repeat(start, count) + np.arange(int(count.sum())) - np.repeat(first, count)
    extra = np.setdiff1d(np.concatenate([mined.positive[rows], mined.negative[rows]]), idx)
    ids = np.concatenate([idx, extra])
    sorter = np.argsort(ids, kind="stable")

    def local(x: np.ndarray) -> np.ndarray:
        return sorter[np.searchsorted(ids, x, sorter=sorter)].astype(np.int64)

    return ids, (local(mined.anchor[rows]), local(mined.positive[rows]), local(mined.negative[rows]))


def write_mined(path: Path | str, table: pa.Table) -> Path:
    """Write a mined table (:meth:`MinedTriplets.to_arrow`) to ``path`` atomically (a temporary name, then renamed).

    Raises:
        ReplearnInputError: the table lacks a column of :data:`COLUMNS`.
    """
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise ReplearnInputError(f"a mined table needs the columns {', '.join(COLUMNS)}; missing {missing}: "
                                 f"build it with MinedTriplets.to_arrow()")
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table.select(list(COLUMNS)).replace_schema_metadata(table.schema.metadata), tmp,
                       compression="zstd")
    return path


def read_mined(path: Path | str) -> tuple[pa.Table, dict[str, Any]]:
    """``(table, metadata)`` of a file :func:`write_mined` wrote.

    Raises:
        FileNotFoundError: no file at ``path`` (run the mine-negatives stage, or ``write_mined``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mined table {path} does not exist (written by the mine-negatives stage)")
    table = pq.read_table(path)
    return table, json.loads((table.schema.metadata or {}).get(MINED_METADATA_KEY, b"{}"))
