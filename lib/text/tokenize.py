"""Streaming corpus tokenization: text files or Parquet -> Parquet token shards.

Stage 1 of the pipeline (see docs/design.md, "Stages"). A corpus is read in blocks
of a few MB, so memory stays bounded whatever the corpus size; each block of
lines is tokenized with vectorised kernels (with the default word rules, pure
ASCII lines by numpy straight on the bytes, other lines by polars string
kernels; the result is the same) and appended to Parquet shards
``part-00000.parquet, part-00001.parquet, ...``, each with one column
``tokens: list<string>`` (one row per document, input order preserved).
Decompression, tokenization and Parquet encoding run in overlapping threads.

This module is the entry point, :func:`tokenize_corpus`, and its streaming
core :func:`tokenize_pieces`; each step has a module of its own:

* :mod:`replearn.lib.text.config`: :class:`TokenizerConfig` (the word rules,
  gensim ``simple_preprocess`` by default) and :class:`TokenizeStats`;
* :mod:`replearn.lib.text.corpus_files`: the accepted sources (text files,
  ``.gz``, ``.bz2``, folders, Parquet text columns) and reading them in blocks;
* :mod:`replearn.lib.text.utf8_repair`: invalid UTF-8 replaced and counted,
  byte-order marks removed and counted (bad bytes are never fatal);
* :mod:`replearn.lib.text.word_rules` and :mod:`replearn.lib.text.ascii_fast_path`:
  the tokenizer kernels (polars; numpy for ASCII lines);
* :mod:`replearn.lib.text.token_shards`: the shard schema, writing and reading;
* :mod:`replearn.lib.text.partitions`: the same result, tokenized in partitions
  on several workers;
* :mod:`replearn.lib.text.default_corpus`: the corpus used when none is given.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl

from replearn.lib.errors import CorpusError
from replearn.lib.store.atomic import atomic_path
from replearn.lib.text.ascii_fast_path import tokenize_text_block
from replearn.lib.text.config import TokenizerConfig, TokenizeStats
from replearn.lib.text.corpus_files import list_corpus_files, read_blocks
from replearn.lib.text.token_shards import ShardWriter, check_out_dir, check_shard_rows
from replearn.lib.text.word_rules import TokenBlock, token_expr, tokenize_documents

__all__ = ["Piece", "tokenize_corpus", "tokenize_pieces", "empty_corpus_error"]

#: Worker threads tokenizing blocks (numpy, polars and pyarrow release the GIL).
_WORKERS = 2
#: Tokenized blocks queued for the writer thread at most (bounds memory).
_WRITE_AHEAD = 2

#: A piece of a corpus: (file, first byte, end byte or None for the end of the file). Byte ranges are for
#: uncompressed text only and must start and end at line starts.
Piece = tuple[Path, int, "int | None"]


def tokenize_corpus(
    source: Path,
    out_dir: Path,
    config: TokenizerConfig = TokenizerConfig(),
    shard_rows: int = 200_000,
    progress: bool = False,
) -> TokenizeStats:
    """Tokenize a corpus into Parquet token shards, streaming.

    Writes ``out_dir/part-00000.parquet, part-00001.parquet, ...``, each with
    one column ``tokens: list<string>`` (see
    :data:`~replearn.lib.text.token_shards.TOKENS_SCHEMA`), one row per
    document in input order, at most ``shard_rows`` rows per shard and
    :data:`~replearn.lib.text.token_shards.ROW_GROUP_ROWS` rows per row group,
    written with :data:`~replearn.lib.text.token_shards.PARQUET_OPTIONS`
    (uncompressed). Documents with no tokens (blank lines, lines of digits or
    punctuation) are dropped; long documents are kept whole, never truncated;
    a trailing ``\r`` (CRLF files) is not part of any token. Memory is bounded
    by a few blocks in flight (each
    :data:`~replearn.lib.text.corpus_files.BLOCK_BYTES` of text or
    :data:`~replearn.lib.text.corpus_files.PARQUET_BATCH_ROWS` rows, plus the
    longest line, plus one row group being assembled), not by the corpus
    size: blocks are read in this thread, tokenized by :data:`_WORKERS`
    threads and written in input order by one writer thread, so
    decompression, tokenization and Parquet encoding overlap.

    The output is atomic: everything is written to a temporary sibling folder
    ``out_dir.parent / ".{out_dir.name}.tmp-<uuid>"`` that is renamed onto
    ``out_dir`` only on success (replacing a previous ``out_dir``); on any
    failure the temporary folder is removed and ``out_dir`` is untouched.

    Args:
        source: a text file (plain, ``.gz``, ``.bz2``), a ``.parquet`` file, or
            a folder of them (recursive, sorted, hidden entries skipped).
        out_dir: output folder; its parent is created if needed.
        config: word rules and the Parquet text column.
        shard_rows: maximum documents per shard, >= 1.
        progress: show a tqdm progress bar over the bytes read.

    Returns:
        :class:`TokenizeStats` with file, document, token, invalid-UTF-8 and
        BOM counts and the shard names.

    Raises:
        CorpusError: ``source`` is missing; a folder holds no (non-hidden)
            files; a file cannot be read or decompressed; a Parquet file lacks
            ``config.text_column`` or it is not a string column; the corpus
            yields no tokens at all; ``out_dir`` exists and is not a folder.
        ValueError: ``shard_rows < 1``.
    """
    source, out_dir = Path(source), Path(out_dir)
    check_shard_rows(shard_rows)
    files = list_corpus_files(source)
    check_out_dir(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        counts = tokenize_pieces([(p, 0, None) for p in files], tmp, config, shard_rows, progress)
        if counts.tokens == 0:
            raise empty_corpus_error(source, len(files), config)
    return dataclasses.replace(counts, files=len(files))


def empty_corpus_error(source: Path, n_files: int, config: TokenizerConfig) -> CorpusError:
    """The error for a corpus that yielded no tokens at all."""
    return CorpusError(
        f"empty corpus: {source} yielded no tokens ({n_files} file(s), "
        f"pattern {config.pattern!r}, {config.min_len}..{config.max_len} characters); "
        "check the path, the --text-column, or the tokenizer settings"
    )


def _tokenize_block(item: bytes | pl.Series, config: TokenizerConfig, expr: pl.Expr) -> TokenBlock:
    """Tokenize one block: raw text bytes (one document per line) or a Series of documents.

    Runs in a worker thread; numpy, polars and pyarrow release the GIL. Text
    blocks go to :func:`~replearn.lib.text.ascii_fast_path.tokenize_text_block`
    (numpy fast path for ASCII lines).
    """
    if isinstance(item, bytes):
        return tokenize_text_block(item, config, expr)
    return tokenize_documents(item, config, expr)


def tokenize_pieces(pieces: list[Piece], folder: Path, config: TokenizerConfig, shard_rows: int,
                    progress: bool = False) -> TokenizeStats:
    """Tokenize ``pieces`` in order into shards ``part-00000.parquet, ...`` inside the existing ``folder``.

    The streaming core of :func:`tokenize_corpus` (and of one partition in
    ``replearn.lib.text.partitions``): reads, tokenizes and writes as that
    function describes, but neither checks for an empty result nor publishes
    ``folder`` atomically (the caller writes into a temporary folder and renames
    it). Returns the counts with ``files`` = the pieces that start a file
    (start byte 0), so the pieces of one file, tokenized apart, add up to one.

    Raises:
        CorpusError: a file cannot be read or decompressed, or a Parquet file
            lacks the text column (as :func:`tokenize_corpus`).
    """
    from tqdm.auto import tqdm

    expr = token_expr(config)
    writer = ShardWriter(folder, shard_rows)
    documents = tokens = invalid_utf8 = boms = nulls = empty = 0
    total_bytes = sum((end if end is not None else Path(path).stat().st_size) - start for path, start, end in pieces)
    pending: deque[Future[TokenBlock]] = deque()
    writes: deque[Future[None]] = deque()
    try:
        with (
            tqdm(total=total_bytes, unit="B", unit_scale=True, desc="tokenize", disable=not progress) as bar,
            ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="tokenize") as pool,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize-write") as write_pool,
        ):
            # Read (and decompress) in this thread, tokenize up to _WORKERS blocks
            # ahead in worker threads, write results in input order in one writer
            # thread, at most _WRITE_AHEAD blocks behind: bounded memory, order kept.
            def drain(keep: int) -> None:
                nonlocal documents, tokens, invalid_utf8, boms, nulls, empty
                while len(pending) > keep:
                    block = pending.popleft().result()
                    documents += block.table.num_rows
                    tokens += block.tokens
                    invalid_utf8 += block.invalid_utf8
                    boms += block.boms
                    nulls += block.null_documents
                    empty += block.empty_documents
                    writes.append(write_pool.submit(writer.write, block.table))
                    while len(writes) > _WRITE_AHEAD:
                        writes.popleft().result()

            try:
                for path, start, end in pieces:
                    for item in read_blocks(Path(path), config.text_column, bar.update, start, end):
                        pending.append(pool.submit(_tokenize_block, item, config, expr))
                        drain(keep=_WORKERS)
                drain(keep=0)
                while writes:
                    writes.popleft().result()
            except BaseException:
                for fut in (*pending, *writes):  # don't start queued work; running work is awaited on exit
                    fut.cancel()
                raise
        writer.close()
    except BaseException:
        writer.close(discard=True)
        raise
    return TokenizeStats(
        files=sum(1 for _, start, _ in pieces if start == 0),
        documents=documents,
        tokens=tokens,
        invalid_utf8=invalid_utf8,
        boms_removed=boms,
        shards=tuple(writer.names),
        null_documents=nulls,
        empty_documents=empty,
    )
