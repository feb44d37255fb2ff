"""What changed between the champion word-vector model and a newly trained one.

Scheduled retraining on a growing corpus yields a new model every run; before
promoting it a person wants to know, beyond one accuracy figure, *how* it
differs from the champion. This module computes the pure parts of that report
(no MLflow, no Prefect): numpy and polars on two vocabularies and their vectors.

* **Neighbour stability**: for the shared words, the Jaccard index
  ``J(A, B) = |A ∩ B| / |A ∪ B|`` (P. Jaccard 1912, "The distribution of the
  flora in the alpine zone", New Phytologist 11(2)) of the word's ``topn`` nearest words in the old
  model (set ``A``) and in the new one (set ``B``). Each model is searched in
  its own space over its own whole vocabulary, so the two may have different
  dimensions ``D1``/``D2``; only neighbour *words* are compared. 1 = same
  neighbours, 0 = none in common.
* **Nearest neighbours** are by cosine similarity, the query word itself left
  out: the ``distance`` tool of the word2vec C release (Mikolov et al. 2013),
  gensim's ``KeyedVectors.most_similar(positive=[word])``; ties go to the lower
  (more frequent) row, as in :func:`replearn.lib.topk.exact_topk`.
* **New words**: words of the new vocabulary that the champion lacks, most
  frequent first, with their neighbours in the new model.
* **OOV rate**: the share of token occurrences (and of distinct tokens) of a
  corpus that a vocabulary does not cover -- how much of the data the champion
  could not embed.
* **Metric deltas**: ``after - before`` for each evaluation metric.

Shapes: ``V`` words (``V1`` old, ``V2`` new), ``D`` dimensions; vocabularies
are ordered most frequent first, as every replearn vocabulary is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from replearn.lib.errors import ReplearnInputError
from replearn.lib.topk import exact_topk
from replearn.lib.vectors import unit_rows

__all__ = [
    "WhatChanged",
    "build_what_changed",
    "metric_deltas",
    "nearest_ids",
    "neighbour_changes",
    "new_word_neighbours",
    "oov_rate",
]

_BLOCK_ELEMENTS = 1 << 24
"""Similarity scores held per chunk of query rows (64 MiB in float32): ``max(1, 2**24 // V)`` rows a chunk."""

_CHANGES_SCHEMA = {"word": pl.String, "jaccard": pl.Float64, "before": pl.List(pl.String), "after": pl.List(pl.String)}
_NEW_SCHEMA = {"word": pl.String, "count": pl.Int64, "neighbours": pl.List(pl.String)}
_DELTAS_SCHEMA = {"metric": pl.String, "before": pl.Float64, "after": pl.Float64, "delta": pl.Float64}


# ------------------------------------------------------------------ neighbours
def _matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    """``vectors`` as a finite ``(V, D) float32`` array, or ReplearnInputError."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2:
        raise ReplearnInputError(f"{name} must be a (V, D) matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        i = int(np.argmin(np.isfinite(arr).all(axis=1)))
        raise ReplearnInputError(f"{name} row {i} holds NaN or Inf; neighbours of such a model are meaningless")
    return arr


def _check_topn(topn: int) -> int:
    if isinstance(topn, bool) or not isinstance(topn, (int, np.integer)) or topn < 1:
        raise ReplearnInputError(f"topn must be an int >= 1, got {topn!r}")
    return int(topn)


def nearest_ids(vectors: np.ndarray, rows: np.ndarray, topn: int = 10, *, batch: int | None = None) -> np.ndarray:
    """The ``topn`` nearest rows by cosine similarity of each given row, itself left out.

    ``nn(i) = argsort_{j != i} -cos(v_i, v_j)`` over the whole matrix, with
    ``cos(a, b) = a.b / (|a| |b|)`` -- the word2vec C ``distance`` tool (Mikolov
    et al. 2013) and gensim's ``most_similar(positive=[word], topn)``. A row of
    norm 0 has cosine 0 with every row (never NaN): its neighbours are then the
    lowest rows, and it is nobody's near neighbour unless nothing else is.

    Memory stays bounded: query rows go through in chunks (``batch`` rows at
    a time, default ``max(1, 2**24 // V)``: a ``(batch, V)`` float32 score matrix
    of about 64 MiB), plus one unit-normalised ``(V, D) float32`` copy.

    Args:
        vectors: ``(V, D)`` real matrix (cast to float32; not modified).
        rows: ``(n,)`` integer rows of ``vectors`` in ``[0, V)``, repeats allowed.
        topn: neighbours per row, >= 1; fewer columns when ``V - 1 < topn``.
        batch: query rows per chunk (>= 1); ``None`` for the default above.

    Returns:
        ``(n, min(topn, V - 1)) int64`` rows of ``vectors``, nearest first, ties
        by the lower row; row ``i`` of the result never holds ``rows[i]``.

    Raises:
        ReplearnInputError: ``vectors`` not 2-D or not finite, ``rows`` not 1-D
            or out of range, ``topn < 1``, or ``batch < 1``.
    """
    x = _matrix(vectors, "vectors")
    topn = _check_topn(topn)
    r = np.asarray(rows)
    if r.ndim != 1 or (r.size and not np.issubdtype(r.dtype, np.integer)):
        raise ReplearnInputError(f"rows must be a 1-D integer array, got shape {r.shape} dtype {r.dtype}")
    r = r.astype(np.int64, copy=False)
    v = len(x)
    if r.size and (r.min() < 0 or r.max() >= v):
        raise ReplearnInputError(f"rows holds an index outside [0, {v}); rows must address rows of vectors")
    k = min(topn, v - 1)
    if k < 1 or r.size == 0:
        return np.empty((r.size, max(k, 0)), dtype=np.int64)
    unit, _ = unit_rows(x)
    step = batch if batch is not None else max(1, _BLOCK_ELEMENTS // v)
    _, ids = exact_topk(unit[r], unit, k, "ip", exclude=r[:, None], batch=step)
    return ids


def _vocab(words: Sequence[str], vectors: np.ndarray, name: str) -> tuple[list[str], np.ndarray]:
    """``(list of words, (V, D) float32 vectors)`` after checking they pair up one to one."""
    words = list(words)
    arr = _matrix(vectors, f"{name}_vectors")
    if len(words) != len(arr):
        raise ReplearnInputError(
            f"{name}_words has {len(words)} words but {name}_vectors has {len(arr)} rows; pass one word per row"
        )
    if len(set(words)) != len(words):
        raise ReplearnInputError(f"{name}_words holds a word twice; a vocabulary lists each word once")
    return words, arr


def _jaccard(a: set, b: set) -> float:
    """``|a ∩ b| / |a ∪ b|`` in [0, 1]; 1.0 when both are empty (nothing to disagree on)."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def neighbour_changes(
    old_words: Sequence[str],
    old_vectors: np.ndarray,
    new_words: Sequence[str],
    new_vectors: np.ndarray,
    topn: int = 10,
    max_words: int = 2000,
) -> pl.DataFrame:
    """How much each frequent shared word's neighbourhood moved between two models.

    For each compared word ``w``: ``A`` = its ``topn`` nearest words in the old
    model (cosine, over the whole old vocabulary, ``w`` left out; see
    :func:`nearest_ids`), ``B`` = the same in the new model, and the Jaccard
    index ``J = |A ∩ B| / |A ∪ B|`` (Jaccard 1912). The compared words are the
    first ``max_words`` words of ``new_words`` (in its order, most frequent
    first) that ``old_words`` also holds. A neighbour word may be in only one
    vocabulary; it then simply cannot be shared.

    Args:
        old_words: ``V1`` distinct words of the champion, most frequent first.
        old_vectors: ``(V1, D1)`` its vectors.
        new_words: ``V2`` distinct words of the new model, most frequent first.
        new_vectors: ``(V2, D2)`` its vectors; ``D2`` may differ from ``D1``.
        topn: neighbours per word, >= 1 (fewer when a vocabulary has ``<= topn`` words).
        max_words: how many shared words to compare, >= 0.

    Returns:
        DataFrame ``word (str), jaccard (f64 in [0, 1]), before (list[str]),
        after (list[str])`` (``before``/``after``: the neighbours, nearest
        first), one row per compared word, sorted by ``jaccard`` ascending (most
        changed first), ties in ``new_words`` order. Empty (same columns) when
        the vocabularies share no word.

    Raises:
        ReplearnInputError: words and vector rows differ in number, a repeated
            word, vectors not 2-D or not finite, ``topn < 1`` or ``max_words < 0``.
    """
    topn = _check_topn(topn)
    if isinstance(max_words, bool) or not isinstance(max_words, (int, np.integer)) or max_words < 0:
        raise ReplearnInputError(f"max_words must be an int >= 0, got {max_words!r}")
    old_w, old_x = _vocab(old_words, old_vectors, "old")
    new_w, new_x = _vocab(new_words, new_vectors, "new")
    old_index = {w: i for i, w in enumerate(old_w)}
    new_rows: list[int] = []
    for j, w in enumerate(new_w):
        if len(new_rows) >= max_words:
            break
        if w in old_index:
            new_rows.append(j)
    if not new_rows:
        return pl.DataFrame(schema=_CHANGES_SCHEMA)
    words = [new_w[j] for j in new_rows]
    before_ids = nearest_ids(old_x, np.asarray([old_index[w] for w in words], dtype=np.int64), topn)
    after_ids = nearest_ids(new_x, np.asarray(new_rows, dtype=np.int64), topn)
    before = [[old_w[i] for i in row] for row in before_ids.tolist()]
    after = [[new_w[i] for i in row] for row in after_ids.tolist()]
    jaccard = [_jaccard(set(b), set(a)) for b, a in zip(before, after)]
    df = pl.DataFrame(
        {"word": words, "jaccard": jaccard, "before": before, "after": after, "_order": range(len(words))},
        schema={**_CHANGES_SCHEMA, "_order": pl.Int64},
    )
    return df.sort(["jaccard", "_order"]).drop("_order")


def new_word_neighbours(
    old_words: Iterable[str],
    new_words: Sequence[str],
    new_counts: np.ndarray,
    new_vectors: np.ndarray,
    topn: int = 5,
    limit: int = 20,
) -> pl.DataFrame:
    """The most frequent words the champion lacks, with their nearest words in the new model.

    Neighbours are by cosine over the whole new vocabulary, the word itself left
    out (word2vec's ``distance`` tool, gensim's ``most_similar``; see
    :func:`nearest_ids`).

    Args:
        old_words: the champion's vocabulary (any order).
        new_words: ``V2`` distinct words of the new model.
        new_counts: ``(V2,)`` non-negative integer corpus counts of ``new_words``.
        new_vectors: ``(V2, D)`` the new model's vectors.
        topn: neighbours per word, >= 1 (fewer when ``V2 <= topn``).
        limit: most rows returned, >= 0.

    Returns:
        DataFrame ``word (str), count (i64), neighbours (list[str])``, at most
        ``limit`` rows: the words of ``new_words`` not in ``old_words``, by
        ``count`` descending, ties in ``new_words`` order.

    Raises:
        ReplearnInputError: ``new_counts`` not ``(V2,)`` non-negative integers,
            words and vector rows differ in number, a repeated word, vectors not
            finite, ``topn < 1`` or ``limit < 0``.
    """
    topn = _check_topn(topn)
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
        raise ReplearnInputError(f"limit must be an int >= 0, got {limit!r}")
    new_w, new_x = _vocab(new_words, new_vectors, "new")
    counts = np.asarray(new_counts)
    if counts.shape != (len(new_w),) or (counts.size and not np.issubdtype(counts.dtype, np.integer)):
        raise ReplearnInputError(
            f"new_counts must be ({len(new_w)},) integers, one per new word; "
            f"got shape {counts.shape} dtype {counts.dtype}"
        )
    counts = counts.astype(np.int64, copy=False)
    if counts.size and counts.min() < 0:
        raise ReplearnInputError("new_counts holds a negative count; counts are occurrences in the corpus")
    old = set(old_words)
    fresh = np.asarray([j for j, w in enumerate(new_w) if w not in old], dtype=np.int64)
    fresh = fresh[np.argsort(-counts[fresh], kind="stable")][:limit] if fresh.size else fresh
    ids = nearest_ids(new_x, fresh, topn)
    return pl.DataFrame(
        {
            "word": [new_w[j] for j in fresh.tolist()],
            "count": counts[fresh].tolist(),
            "neighbours": [[new_w[i] for i in row] for row in ids.tolist()],
        },
        schema=_NEW_SCHEMA,
    )


# ------------------------------------------------------------------------- OOV
def oov_rate(known_words: Iterable[str], token_counts: pl.DataFrame) -> dict:
    """How much of a corpus a vocabulary does not cover.

    ``oov_token_rate = sum(count of tokens not known) / sum(count)`` (share of
    running tokens) and ``oov_type_rate = #distinct tokens not known / #distinct
    tokens`` (share of word types), the usual out-of-vocabulary rates of
    language modelling. Rows repeating a token are added up first.

    Args:
        known_words: the vocabulary (e.g. the champion's words).
        token_counts: DataFrame with columns ``token (str)`` and ``count (int >= 0)``.

    Returns:
        ``{"oov_token_rate": float in [0, 1], "oov_type_rate": float in [0, 1],
        "oov_tokens": int, "tokens": int, "types": int, "oov_types": int}``.

    Raises:
        ValueError (:class:`~replearn.lib.errors.ReplearnInputError`):
            ``token_counts`` is empty, lacks a column, holds a null or a negative
            count, or its counts add up to 0.
    """
    missing = {"token", "count"} - set(token_counts.columns)
    if missing:
        raise ReplearnInputError(
            f"token_counts lacks column(s) {sorted(missing)}; it needs 'token' (str) and 'count' (int)"
        )
    if token_counts.height == 0:
        raise ReplearnInputError("token_counts is empty: no tokens to measure the OOV rate on")
    if token_counts["token"].null_count() or token_counts["count"].null_count():
        raise ReplearnInputError("token_counts holds a null token or count; drop or fill those rows")
    if not token_counts["count"].dtype.is_integer():
        raise ReplearnInputError(f"token_counts 'count' must be integers, got {token_counts['count'].dtype}")
    if token_counts["count"].min() < 0:
        raise ReplearnInputError("token_counts holds a negative count; counts are occurrences in the corpus")
    per_type = token_counts.group_by("token").agg(pl.col("count").cast(pl.Int64).sum())
    known = pl.Series("known", list(set(known_words)), dtype=pl.String)
    per_type = per_type.with_columns(oov=~pl.col("token").cast(pl.String).is_in(known.implode()))
    tokens = int(per_type["count"].sum())
    if tokens == 0:
        raise ReplearnInputError("token_counts counts add up to 0: no token occurrences to measure the OOV rate on")
    oov = per_type.filter(pl.col("oov"))
    oov_tokens, oov_types, types = int(oov["count"].sum()), oov.height, per_type.height
    return {
        "oov_token_rate": oov_tokens / tokens,
        "oov_type_rate": oov_types / types,
        "oov_tokens": oov_tokens,
        "tokens": tokens,
        "types": types,
        "oov_types": oov_types,
    }


# --------------------------------------------------------------------- metrics
def metric_deltas(before: Mapping[str, float] | None, after: Mapping[str, float]) -> pl.DataFrame:
    """Each metric of ``after`` beside its ``before`` value and ``delta = after - before``.

    Args:
        before: the champion's metrics, or ``None`` when there is no champion.
        after: the new model's metrics (names like ``analogy_score``).

    Returns:
        DataFrame ``metric (str), before (f64), after (f64), delta (f64)``, one
        row per metric of ``after``, sorted by name; ``before`` and ``delta`` are
        null where ``before`` is ``None`` or lacks that metric. Metrics only in
        ``before`` are left out.
    """
    names = sorted(after)
    prev = before or {}
    b = [float(prev[m]) if m in prev and prev[m] is not None else None for m in names]
    a = [float(after[m]) for m in names]
    d = [None if x is None else y - x for x, y in zip(b, a)]
    return pl.DataFrame({"metric": names, "before": b, "after": a, "delta": d}, schema=_DELTAS_SCHEMA)


# ---------------------------------------------------------------------- report
def _md(text: object) -> str:
    """``text`` safe inside a markdown table cell: markup characters backslash-escaped."""
    s = str(text).replace("\n", " ")
    for ch in "\\`*_[]<>|#":
        s = s.replace(ch, "\\" + ch)
    return s


def _num(x: float | None, fmt: str = "{:.4f}") -> str:
    return "–" if x is None else fmt.format(x)


@dataclass(frozen=True, eq=False)
class WhatChanged:
    """The "what changed" report of a new model against the champion.

    Attributes:
        champion: a label of the champion (e.g. ``"replearn-word2vec v1"``), or
            ``None`` when there is none yet.
        new_words: :func:`new_word_neighbours` output (``word, count, neighbours``).
        neighbour_changes: :func:`neighbour_changes` output (``word, jaccard, before, after``).
        oov: :func:`oov_rate` output for the champion's vocabulary on the new data.
        deltas: :func:`metric_deltas` output (``metric, before, after, delta``).
        n_new_words_total: words of the new vocabulary absent from the champion's,
            all of them (``new_words`` holds only the most frequent).
        topn: neighbours per word behind ``neighbour_changes`` (names the summary metric).

    Equality is identity (``eq=False``): the fields are DataFrames.
    """

    champion: str | None
    new_words: pl.DataFrame
    neighbour_changes: pl.DataFrame
    oov: dict
    deltas: pl.DataFrame
    n_new_words_total: int
    topn: int = 10

    @property
    def mean_jaccard(self) -> float | None:
        """Mean Jaccard index over the compared shared words, in [0, 1]; ``None`` when none were compared."""
        if self.neighbour_changes.height == 0:
            return None
        return float(self.neighbour_changes["jaccard"].mean())

    def summary_metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow: ``changed.oov_token_rate``, ``changed.oov_type_rate``
        (in [0, 1]), ``changed.new_words`` (count), ``changed.words_compared`` (count) and
        ``changed.mean_jaccard_top{topn}`` (in [0, 1]; left out when no word was compared).
        """
        out = {
            "changed.oov_token_rate": float(self.oov["oov_token_rate"]),
            "changed.oov_type_rate": float(self.oov["oov_type_rate"]),
            "changed.new_words": float(self.n_new_words_total),
            "changed.words_compared": float(self.neighbour_changes.height),
        }
        if self.mean_jaccard is not None:
            out[f"changed.mean_jaccard_top{self.topn}"] = self.mean_jaccard
        return out

    def to_markdown(self, limit: int = 15) -> str:
        """A readable markdown report; the two word tables hold at most ``limit`` rows each.

        Sections: title (naming the champion), OOV rates as percentages, the
        most frequent new words with their neighbours, the most changed shared
        words (Jaccard, first 5 neighbours before and after) with the mean
        Jaccard, and the metrics with signed deltas (``+0.0123``).
        """
        vs = self.champion or "no champion"
        lines = [f"# What changed: new model vs {_md(vs)}", ""]

        o = self.oov
        lines += [
            "## Coverage",
            "",
            (f"- Tokens the champion's vocabulary does not cover: **{100 * o['oov_token_rate']:.2f}%** "
             f"of token occurrences ({o['oov_tokens']:,} of {o['tokens']:,})"),
            f"- **{100 * o['oov_type_rate']:.2f}%** of distinct tokens ({o['oov_types']:,} of {o['types']:,})",
            "",
        ]

        lines += ["## New words", ""]
        if self.n_new_words_total == 0 or self.new_words.height == 0:
            lines += ["No word of the new vocabulary is new: the champion knows them all.", ""]
        else:
            shown = self.new_words.head(limit)
            lines += [
                (f"{self.n_new_words_total:,} words are not in the champion's vocabulary; "
                 f"the {shown.height} most frequent:"),
                "",
                "| word | count | nearest words in the new model |",
                "| --- | ---: | --- |",
            ]
            for row in shown.iter_rows(named=True):
                lines.append(f"| {_md(row['word'])} | {row['count']:,} | {_md(', '.join(row['neighbours']))} |")
            lines.append("")

        lines += ["## Most changed neighbourhoods", ""]
        n = self.neighbour_changes.height
        if n == 0:
            lines += ["No shared word was compared.", ""]
        else:
            lines += [
                (f"Mean Jaccard index of the top-{self.topn} neighbours over {n:,} shared words: "
                 f"**{self.mean_jaccard:.3f}** (1 = same neighbours, 0 = none in common)."),
                "",
                "| word | Jaccard | neighbours before | neighbours after |",
                "| --- | ---: | --- | --- |",
            ]
            for row in self.neighbour_changes.head(limit).iter_rows(named=True):
                lines.append(
                    f"| {_md(row['word'])} | {row['jaccard']:.2f} | {_md(', '.join(row['before'][:5]))} "
                    f"| {_md(', '.join(row['after'][:5]))} |"
                )
            lines.append("")

        lines += ["## Metrics", ""]
        if self.deltas.height == 0:
            lines += ["No metrics.", ""]
        else:
            lines += ["| metric | champion | new | delta |", "| --- | ---: | ---: | ---: |"]
            for row in self.deltas.iter_rows(named=True):
                lines.append(
                    f"| {_md(row['metric'])} | {_num(row['before'])} | {_num(row['after'])} "
                    f"| {_num(row['delta'], '{:+.4f}')} |"
                )
            lines.append("")
        return "\n".join(lines)


def build_what_changed(
    *,
    champion: str | None,
    old_words: Sequence[str],
    old_vectors: np.ndarray,
    new_words: Sequence[str],
    new_counts: np.ndarray,
    new_vectors: np.ndarray,
    after_metrics: Mapping[str, float],
    before_metrics: Mapping[str, float] | None = None,
    token_counts: pl.DataFrame | None = None,
    topn: int = 10,
    max_words: int = 2000,
    new_topn: int = 5,
    new_limit: int = 20,
) -> WhatChanged:
    """Assemble a :class:`WhatChanged` from the two models (each piece as its function documents).

    Args:
        champion: the champion's label, or ``None``.
        old_words, old_vectors: the champion's ``V1`` words and ``(V1, D1)`` vectors.
        new_words, new_counts, new_vectors: the new model's ``V2`` words,
            ``(V2,)`` counts and ``(V2, D2)`` vectors.
        after_metrics, before_metrics: the new and the champion's metrics.
        token_counts: ``token, count`` of the new data for the OOV rate; default
            the new vocabulary with its counts (how much of the new model's
            training tokens the champion could not embed).
        topn, max_words: for :func:`neighbour_changes`.
        new_topn, new_limit: ``topn`` and ``limit`` of :func:`new_word_neighbours`.

    Raises:
        ReplearnInputError: as the functions it calls.
    """
    old_set = set(old_words)
    if token_counts is None:
        token_counts = pl.DataFrame(
            {"token": list(new_words), "count": np.asarray(new_counts, dtype=np.int64)},
            schema={"token": pl.String, "count": pl.Int64},
        )
    return WhatChanged(
        champion=champion,
        new_words=new_word_neighbours(old_set, new_words, new_counts, new_vectors, topn=new_topn, limit=new_limit),
        neighbour_changes=neighbour_changes(old_words, old_vectors, new_words, new_vectors, topn, max_words),
        oov=oov_rate(old_set, token_counts),
        deltas=metric_deltas(before_metrics, after_metrics),
        n_new_words_total=sum(1 for w in new_words if w not in old_set),
        topn=topn,
    )
