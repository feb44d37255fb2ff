"""The corpus as word ids on disk, read back in bounded chunks.

Token shards (Parquet, one row per document) are mapped to vocabulary ids once;
out-of-vocabulary words are removed before windowing, as in word2vec.c and
gensim. The result is two flat binary files:

* ``ids.int32``: all kept token ids, in corpus order, shape (T,);
* ``offsets.int64``: sentence boundaries, shape (S + 1,), ``offsets[0] == 0``.

Training streams it in chunks of whole sentences, so memory stays flat however
large the corpus is.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from numba import njit

IDS_FILE = "ids.int32"
OFFSETS_FILE = "offsets.int64"
META_FILE = "meta.json"


@dataclass(frozen=True)
class EncodedCorpus:
    """Handle on an encoded corpus directory.

    Attributes:
        path: the directory holding ``ids.int32``, ``offsets.int64``, ``meta.json``.
        n_tokens: T, number of in-vocabulary tokens kept.
        n_sentences: S, number of (pseudo-)sentences.
        raw_tokens: tokens in the token shards before out-of-vocabulary removal
            (the "corpus words" of throughput figures).
    """

    path: Path
    n_tokens: int
    n_sentences: int
    raw_tokens: int

    @classmethod
    def open(cls, path: Path) -> "EncodedCorpus":
        """Open a directory written by :func:`encode_corpus`."""
        meta = json.loads((Path(path) / META_FILE).read_text())
        return cls(Path(path), meta["n_tokens"], meta["n_sentences"], meta["raw_tokens"])

    def offsets(self) -> np.ndarray:
        """Sentence boundaries, int64 (S + 1,); small (8 bytes per sentence)."""
        return np.fromfile(self.path / OFFSETS_FILE, dtype=np.int64)

    def iter_chunks(self, max_tokens: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(ids, bounds)`` chunks of whole sentences.

        Args:
            max_tokens: target tokens per chunk; a sentence longer than this is
                yielded alone, whole (never truncated).

        Yields:
            ids: int32 (n,) token ids of the chunk, read from disk.
            bounds: int64 (s + 1,) sentence boundaries relative to ``ids``.
        """
        offsets = self.offsets()
        with open(self.path / IDS_FILE, "rb") as f:
            s = 0
            S = len(offsets) - 1
            while s < S:
                start = offsets[s]
                # last sentence end <= start + max_tokens, at least one sentence
                e = int(np.searchsorted(offsets, start + max_tokens, side="right")) - 1
                e = max(e, s + 1)
                f.seek(int(start) * 4)
                n = int(offsets[e] - start)
                ids = np.fromfile(f, dtype=np.int32, count=n)
                yield ids, offsets[s : e + 1] - start
                s = e


#: Longest sentence when documents are not joined (``max_tokens`` None or 0): a longer line is cut into pieces
#: of this many tokens, as gensim cuts at 10,000 words (a corpus that is one huge line, the text8 layout, then
#: trains on every thread, with the learning rate decaying inside it).
LINE_CUT_TOKENS = 10_000


@njit
def _group_stream(lengths, cur, max_tokens, cut, pos0, out):
    """Greedy grouping of a stream of document lengths, resumable across batches.

    A document is first cut into pieces of at most ``cut`` tokens. A piece joins
    the open sentence while it stays within ``max_tokens`` (``max_tokens`` 0:
    every piece opens a new sentence). ``cur`` tokens are already in the open
    sentence and ``pos0`` tokens precede this batch. Writes the boundaries it
    closes into ``out``; returns (count, cur).
    """
    n = 0
    pos = pos0
    for length in lengths:
        left = length
        while left > 0:
            piece = min(left, cut)
            if cur > 0 and (max_tokens == 0 or cur + piece > max_tokens):
                out[n] = pos
                n += 1
                cur = 0
            cur += piece
            pos += piece
            left -= piece
    return n, cur


def group_sentences(lengths: np.ndarray, max_tokens: int | None) -> np.ndarray:
    """Join consecutive documents into pseudo-sentences of at most ``max_tokens``.

    Greedy, in order: a document is appended to the current sentence while the
    total stays <= max_tokens; a document longer than max_tokens is cut into
    pieces of max_tokens tokens (word2vec.c cuts its sentences at 1,000 words).

    Args:
        lengths: int64 (n_docs,) token counts, all >= 1.
        max_tokens: cap, or None (or 0) to keep each document (line, Parquet row) as a sentence, a line longer
            than :data:`LINE_CUT_TOKENS` cut into pieces of that many tokens.

    Returns:
        int64 (S + 1,) sentence boundaries in token units, starting at 0.
    """
    grouper = SentenceGrouper(max_tokens)
    inner = grouper.add(np.asarray(lengths, dtype=np.int64))
    return np.concatenate([[0], inner, grouper.close()]).astype(np.int64)


class SentenceGrouper:
    """Streaming form of :func:`group_sentences`: feed document lengths batch by batch.

    Memory is O(batch), so corpora of any number of documents are grouped in flat memory.
    """

    def __init__(self, max_tokens: int | None) -> None:
        self.max_tokens = int(max_tokens or 0)  # 0: one document, one sentence
        self.cut = self.max_tokens or LINE_CUT_TOKENS
        self.cur = 0
        self.pos = 0

    def add(self, lengths: np.ndarray) -> np.ndarray:
        """Boundaries (absolute token positions, int64) closed by this batch of lengths."""
        lengths = np.asarray(lengths, dtype=np.int64)
        out = np.empty(int((lengths // self.cut).sum()) + len(lengths), dtype=np.int64)
        n, self.cur = _group_stream(lengths, self.cur, self.max_tokens, self.cut, self.pos, out)
        self.pos += int(lengths.sum())
        return out[:n]

    def close(self) -> np.ndarray:
        """The final boundary, if a sentence is still open."""
        if self.cur > 0:
            self.cur = 0
            return np.array([self.pos], dtype=np.int64)
        return np.zeros(0, dtype=np.int64)


def encode_corpus(
    shards: Sequence[Path],
    words: Sequence[str],
    out_dir: Path,
    max_sentence_tokens: int | None = 1000,
) -> EncodedCorpus:
    """Map token shards to vocabulary ids and write them to ``out_dir`` atomically.

    Args:
        shards: Parquet files with a ``tokens: list<string>`` column, in order.
        words: the vocabulary, id = position.
        out_dir: destination directory (replaced if present).
        max_sentence_tokens: see :func:`group_sentences`.

    Returns:
        The :class:`EncodedCorpus` handle.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    vocab = pl.DataFrame({"token": list(words), "id": np.arange(len(words), dtype=np.int32)})
    raw = 0
    grouper = SentenceGrouper(max_sentence_tokens)
    try:
        with open(tmp / IDS_FILE, "wb") as f_ids, open(tmp / OFFSETS_FILE, "wb") as f_off:
            np.zeros(1, dtype=np.int64).tofile(f_off)
            n_sent = 0
            for shard in shards:
                pf = pq.ParquetFile(shard)
                for batch in pf.iter_batches(columns=["tokens"], batch_size=100_000):
                    df = pl.from_arrow(batch).with_row_index("doc")
                    raw += int(df["tokens"].list.len().sum() or 0)
                    flat = df.explode("tokens").join(vocab, left_on="tokens", right_on="token", how="inner", maintain_order="left")
                    if flat.height == 0:
                        continue
                    flat["id"].to_numpy().astype(np.int32).tofile(f_ids)
                    closed = grouper.add(flat.group_by("doc", maintain_order=True).len()["len"].to_numpy())
                    closed.tofile(f_off)
                    n_sent += len(closed)
            last = grouper.close()
            last.tofile(f_off)
            n_sent += len(last)
        n_tokens = grouper.pos
        meta = {"n_tokens": n_tokens, "n_sentences": n_sent, "raw_tokens": raw, "vocab_size": len(words),
                "max_sentence_tokens": max_sentence_tokens}
        (tmp / META_FILE).write_text(json.dumps(meta))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return EncodedCorpus(out_dir, n_tokens, n_sent, raw)
