"""Vocabulary and the sampling distributions of skip-gram training.

* :func:`count_tokens` streams over token shards (see
  :mod:`replearn.lib.text.token_shards`) and returns each distinct token's count.
* :func:`build_vocabulary` prunes rare words and fixes a deterministic order
  (count descending, then word ascending), so word ids are reproducible.
* :func:`keep_probability` is word2vec's frequent-word subsampling;
  :func:`noise_distribution` its unigram^0.75 negative-sampling distribution.
* :func:`write_vocabulary` / :func:`read_vocabulary` store it as Parquet with
  columns ``token (string), count (int64), id (int64)``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from replearn.lib.errors import VocabularyError
from replearn.lib.text.token_shards import iter_token_shards

__all__ = [
    "VOCAB_SCHEMA",
    "Vocabulary",
    "count_tokens",
    "build_vocabulary",
    "keep_probability",
    "noise_distribution",
    "write_vocabulary",
    "read_vocabulary",
]

#: Schema of a vocabulary file.
VOCAB_SCHEMA = pa.schema(
    [pa.field("token", pa.string()), pa.field("count", pa.int64()), pa.field("id", pa.int64())]
)
_META_MIN_COUNT = b"replearn.min_count"
_META_MAX_VOCAB = b"replearn.max_vocab"


def count_tokens(token_dir: Path) -> pl.DataFrame:
    """Count every distinct token in the token shards of ``token_dir``, streaming.

    Each shard is exploded and grouped on its own (one shard in memory at a
    time); the per-shard counts are then summed.

    Args:
        token_dir: a folder of ``part-*.parquet`` shards with a
            ``tokens: list<string>`` column, as written by ``tokenize_corpus``.

    Returns:
        DataFrame with columns ``token`` (String, unique) and ``count``
        (Int64, >= 1), sorted by count descending then token ascending.
        Empty if the shards hold no tokens.

    Raises:
        CorpusError: ``token_dir`` is missing or holds no shards.
    """
    parts: list[pl.DataFrame] = []
    for table in iter_token_shards(Path(token_dir)):
        parts.append(
            pl.from_arrow(table.select(["tokens"]))
            .lazy()
            .select(pl.col("tokens").explode().alias("token"))
            .drop_nulls()
            .group_by("token")
            .agg(pl.len().cast(pl.Int64).alias("count"))
            .collect()
        )
    if not parts:
        return pl.DataFrame(schema={"token": pl.String, "count": pl.Int64})
    return (
        pl.concat(parts)
        .group_by("token")
        .agg(pl.col("count").sum())
        .sort(["count", "token"], descending=[True, False])
    )


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Words and their corpus counts; a word's id is its position.

    Order: count descending, ties broken by word ascending (code-point order),
    as produced by :func:`build_vocabulary`, so ids are deterministic.

    Attributes:
        words: the words, unique, length V.
        counts: ``np.ndarray`` of shape (V,), int64, each >= 1, non-increasing.
            Stored read-only.
        min_count: the pruning threshold used (provenance), >= 1.
        max_vocab: the size cap used (provenance), >= 1 or None.
        index: word -> id dict, computed once (not an init argument).

    Raises:
        VocabularyError: words and counts differ in length, a word repeats,
            counts are not int, >= 1 and non-increasing.
    """

    words: tuple[str, ...]
    counts: np.ndarray
    min_count: int = 1
    max_vocab: int | None = None
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        words = tuple(self.words)
        counts = np.array(self.counts, dtype=np.int64, copy=True)
        if counts.ndim != 1 or len(counts) != len(words):
            raise VocabularyError(
                f"counts must have shape ({len(words)},) to match the words, got {counts.shape}"
            )
        if len(counts) and counts.min() < 1:
            raise VocabularyError("every count must be >= 1")
        if len(counts) > 1 and np.any(np.diff(counts) > 0):
            raise VocabularyError("counts must be sorted in descending order (use build_vocabulary)")
        index = {w: i for i, w in enumerate(words)}
        if len(index) != len(words):
            raise VocabularyError(f"{len(words) - len(index)} word(s) repeat in the vocabulary")
        counts.setflags(write=False)
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "index", index)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    @property
    def total(self) -> int:
        """Sum of the counts: corpus tokens covered by the vocabulary."""
        return int(self.counts.sum())

    def __repr__(self) -> str:
        head = ", ".join(repr(w) for w in self.words[:5])
        return (
            f"Vocabulary(V={len(self)}, total={self.total}, min_count={self.min_count}, "
            f"max_vocab={self.max_vocab}, words=({head}{', ...' if len(self) > 5 else ''}))"
        )


def build_vocabulary(counts_df: pl.DataFrame, min_count: int = 5, max_vocab: int | None = None) -> Vocabulary:
    """Keep words with ``count >= min_count``, at most ``max_vocab`` of the most frequent.

    Args:
        counts_df: columns ``token`` (String) and ``count`` (integer), e.g.
            from :func:`count_tokens`; a repeated token has its counts summed,
            null tokens are ignored.
        min_count: drop words seen fewer times, >= 1 (word2vec.c and gensim
            default: 5).
        max_vocab: keep at most this many words, >= 1, or None for no cap.
            Ties at the cut are broken by word ascending (deterministic).

    Returns:
        :class:`Vocabulary` sorted by count descending, then word ascending.

    Raises:
        ValueError: ``min_count < 1`` or ``max_vocab < 1``.
        VocabularyError: ``counts_df`` lacks the columns, or nothing survives
            the pruning.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    if max_vocab is not None and max_vocab < 1:
        raise ValueError(f"max_vocab must be >= 1 or None, got {max_vocab}")
    missing = {"token", "count"} - set(counts_df.columns)
    if missing:
        raise VocabularyError(
            f"token counts need columns 'token' and 'count'; missing {sorted(missing)} "
            f"(columns: {counts_df.columns}); build them with count_tokens"
        )
    all_counts = (
        counts_df.select(pl.col("token").cast(pl.String), pl.col("count").cast(pl.Int64))
        .drop_nulls()
        .group_by("token")
        .agg(pl.col("count").sum())
        .sort(["count", "token"], descending=[True, False])
    )
    kept = all_counts.filter(pl.col("count") >= min_count)
    if max_vocab is not None:
        kept = kept.head(max_vocab)
    if kept.height == 0:
        if all_counts.height == 0:
            raise VocabularyError("no words to build a vocabulary from (empty token counts); tokenize a non-empty corpus")
        top_word, top_count = all_counts.row(0)
        raise VocabularyError(
            f"min_count={min_count} pruned all {all_counts.height} distinct words "
            f"(the most frequent, {top_word!r}, occurs {top_count} times); "
            "lower --min-count or use a larger corpus"
        )
    return Vocabulary(
        words=tuple(kept["token"].to_list()),
        counts=kept["count"].to_numpy(),
        min_count=min_count,
        max_vocab=max_vocab,
    )


def _as_counts(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or len(c) == 0:
        raise ValueError(f"counts must be a non-empty 1-D array, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or c.min() <= 0:
        raise ValueError("counts must be finite and > 0")
    return c


def keep_probability(counts: np.ndarray, sample: float) -> np.ndarray:
    """Probability of keeping each occurrence of a word under frequent-word subsampling.

    With ``t = sample * total`` (``total = counts.sum()``)::

        keep(w) = min(1, (sqrt(c_w / t) + 1) * t / c_w)

    the formula of word2vec.c (``ran = (sqrt(cn / (sample * train_words)) + 1)
    * (sample * train_words) / cn``) and gensim's ``Word2Vec`` (same
    expression, ``threshold_count = sample * retain_total``); a smoothed form
    of the ``1 - sqrt(t / f)`` discard rule in Mikolov et al. 2013,
    "Distributed Representations of Words and Phrases and their
    Compositionality" (NeurIPS). Words rarer than about ``t`` are always kept.

    Args:
        counts: (V,) positive counts (any numeric dtype).
        sample: subsampling threshold as a fraction of the corpus, in [0, 1);
            0 disables subsampling. Typical 1e-3 (gensim default) to 1e-5.
            (gensim's reading of ``sample >= 1`` as an absolute count is not
            supported.)

    Returns:
        (V,) float64, each in (0, 1]; all ones when ``sample == 0``.

    Raises:
        ValueError: ``sample`` outside [0, 1), or counts empty, non-1-D, or
            not all > 0.
    """
    c = _as_counts(counts)
    if not 0.0 <= sample < 1.0:
        raise ValueError(f"sample must be in [0, 1), got {sample}")
    if sample == 0:
        return np.ones_like(c)
    t = sample * c.sum()
    return np.minimum((np.sqrt(c / t) + 1.0) * t / c, 1.0)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """Negative-sampling noise distribution ``P(w) = c_w**power / sum_v c_v**power``.

    ``power = 0.75`` is the unigram^(3/4) distribution of Mikolov et al. 2013
    ("Distributed Representations of Words and Phrases and their
    Compositionality") and word2vec.c's ``InitUnigramTable``; gensim calls it
    ``ns_exponent``. 1 gives the unigram distribution, 0 the uniform one.

    Args:
        counts: (V,) positive counts.
        power: exponent, finite and >= 0 (gensim allows negative values to
            favour rare words; that is rejected here).

    Returns:
        (V,) float64 probabilities, each > 0, summing to 1.

    Raises:
        ValueError: ``power`` negative or not finite, or counts empty,
            non-1-D, or not all > 0.
    """
    c = _as_counts(counts)
    if not (np.isfinite(power) and power >= 0):
        raise ValueError(f"power must be finite and >= 0, got {power}")
    # scale by the max first so that c**power cannot overflow
    w = (c / c.max()) ** power
    return w / w.sum()


def write_vocabulary(vocab: Vocabulary, path: Path) -> Path:
    """Write ``vocab`` to a Parquet file atomically (temporary sibling + ``os.replace``).

    Columns ``token (string), count (int64), id (int64)`` (:data:`VOCAB_SCHEMA`),
    one row per word in id order; ``min_count`` and ``max_vocab`` are kept in
    the file's key-value metadata. The parent folder is created if needed.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {_META_MIN_COUNT: str(vocab.min_count).encode(), _META_MAX_VOCAB: str(vocab.max_vocab).encode()}
    table = pa.table(
        {
            "token": pa.array(vocab.words, pa.string()),
            "count": pa.array(vocab.counts, pa.int64()),
            "id": pa.array(np.arange(len(vocab), dtype=np.int64)),
        },
        schema=VOCAB_SCHEMA.with_metadata(meta),
    )
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_vocabulary(path: Path) -> Vocabulary:
    """Read a vocabulary written by :func:`write_vocabulary`.

    Rows are ordered by ``id``; ``min_count``/``max_vocab`` come from the file
    metadata (1/None if absent).

    Raises:
        VocabularyError: the file is missing, lacks a column, its ids are not
            0..V-1, or its order is not count descending.
    """
    path = Path(path)
    if not path.is_file():
        raise VocabularyError(f"vocabulary file not found: {path}; run the tokenize stage first")
    table = pq.read_table(path)
    missing = {"token", "count", "id"} - set(table.column_names)
    if missing:
        raise VocabularyError(
            f"vocabulary file {path} lacks column(s) {sorted(missing)} (has {table.column_names}); "
            "rewrite it with write_vocabulary"
        )
    df = pl.from_arrow(table.select(["token", "count", "id"])).sort("id")
    if not df["id"].equals(pl.Series("id", np.arange(df.height, dtype=np.int64))):
        raise VocabularyError(f"vocabulary file {path}: ids are not 0..{df.height - 1}; rewrite it with write_vocabulary")
    meta = table.schema.metadata or {}
    max_vocab = meta.get(_META_MAX_VOCAB, b"None").decode()
    try:
        return Vocabulary(
            words=tuple(df["token"].to_list()),
            counts=df["count"].to_numpy(),
            min_count=int(meta.get(_META_MIN_COUNT, b"1")),
            max_vocab=None if max_vocab == "None" else int(max_vocab),
        )
    except VocabularyError as e:
        raise VocabularyError(f"vocabulary file {path}: {e}") from e
