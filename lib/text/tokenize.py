"""Streaming corpus tokenization: text files or Parquet -> Parquet token shards.

Stage 1 of the pipeline (see DESIGN.md, "Stages"). A corpus is read in blocks
of a few MB, so memory stays bounded whatever the corpus size; each block of
lines is tokenized with vectorised kernels (with the default word rules, pure
ASCII lines by numpy straight on the bytes, other lines by polars string
kernels; the result is the same) and appended to Parquet shards
``part-00000.parquet, part-00001.parquet, ...``, each with one column
``tokens: list<string>`` (one row per document, input order preserved).
Decompression, tokenization and Parquet encoding run in overlapping threads.

Accepted sources
----------------
* a plain UTF-8 text file, or one compressed with gzip (``.gz``) or bzip2
  (``.bz2``): one document = one line;
* a folder of such files, read recursively in sorted path order, skipping
  hidden files and folders (names starting with ``.``);
* a ``.parquet`` file (also inside a folder) with a string column
  (``TokenizerConfig.text_column``): one document = one row, newlines and all.

Bad bytes are counted, not fatal: invalid UTF-8 is replaced by U+FFFD and
counted; byte-order marks (U+FEFF) are removed wherever they occur and counted.

Word rules
----------
The defaults of :class:`TokenizerConfig` reproduce the word rules of
``gensim.utils.simple_preprocess(doc)`` (gensim 4.x, ``gensim/utils.py``):
lower-case, maximal runs of letters (no digits), keep tokens of 2..15
characters. Known differences, all on inputs other than plain ASCII words:
``simple_preprocess`` treats ``_`` as a letter (``foo_bar`` is one token, and
tokens starting with ``_`` are dropped), while here ``_`` separates tokens;
NFKC normalization is applied first (``ﬁ`` -> ``fi``); and polars' regex
engine (Rust ``regex``) counts combining marks as word characters where
Python's ``re`` does not.
"""

from __future__ import annotations

import bz2
import dataclasses
import os
import shutil
import uuid
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from replearn.lib.errors import CorpusError

__all__ = [
    "TokenizerConfig",
    "TokenizeStats",
    "TOKENS_SCHEMA",
    "tokenize_corpus",
    "tokenize_pieces",
    "iter_token_shards",
    "read_tokens",
    "default_corpus",
]

#: Schema of every token shard: ``tokens: list<string>``. The list's child field is
#: named ``element``, as Parquet's nested-type spec has it, so a shard read back
#: with ``pyarrow.parquet.read_table`` has exactly this schema.
TOKENS_SCHEMA = pa.schema([pa.field("tokens", pa.list_(pa.field("element", pa.string())))])

#: Bytes of decompressed text read per block (the block is then cut at its last newline).
BLOCK_BYTES = 4 * 1024 * 1024
#: Compressed bytes read per zlib call for ``.gz`` input.
_GZIP_CHUNK = 1024 * 1024
#: Rows per record batch when reading Parquet input.
PARQUET_BATCH_ROWS = 16_384
#: Maximum rows per Parquet row group in the token shards.
ROW_GROUP_ROWS = 65_536
#: ``pyarrow.parquet.ParquetWriter`` options of the token shards: no compression and
#: no dictionary (PLAIN strings), the cheapest to write and to read back: about 9
#: bytes per token on disk, some 4x the size with ``compression="zstd"`` and the
#: dictionary on, which costs about a third of the whole tokenize time.
PARQUET_OPTIONS = {"compression": "none", "use_dictionary": False, "write_statistics": False}
#: Worker threads tokenizing blocks (numpy, polars and pyarrow release the GIL).
_WORKERS = 2
#: Tokenized blocks queued for the writer thread at most (bounds memory).
_WRITE_AHEAD = 2

_NORMALIZATION_FORMS = ("NFC", "NFKC", "NFD", "NFKD")
_REPLACEMENT_BYTES = "\ufffd".encode("utf-8")  # b"\xef\xbf\xbd"
_NON_ASCII = r"[^\x00-\x7F]"
#: The default pattern, runs of letters: on ASCII text exactly ``[A-Za-z]+``, which
#: lets :func:`_tokenize_text_block` tokenize ASCII lines with numpy on the raw bytes.
_LETTERS = r"[^\W\d_]+"
#: Above this share of non-ASCII lines a block is tokenized by polars alone.
_MAX_SLOW_SHARE = 0.25
_TOKEN_LIST = TOKENS_SCHEMA.field("tokens").type  # list<element: string>


@dataclass(frozen=True)
class TokenizerConfig:
    """How text becomes tokens.

    The defaults reproduce the word rules of ``gensim.utils.simple_preprocess``
    (lower-case; maximal runs of letters, no digits; 2..15 characters) — see the
    module docstring for the few differences on non-ASCII text and ``_``.

    Attributes:
        lowercase: lower-case the text before matching (Unicode-aware).
        normalization: Unicode normalization form applied first, one of
            ``"NFC"``, ``"NFKC"``, ``"NFD"``, ``"NFKD"``, or ``None`` for none.
        pattern: a regex in Rust ``regex`` syntax (polars' engine: no
            look-around, no back-references); every non-overlapping match is a
            token. Default ``[^\\W\\d_]+``: runs of letters.
        min_len: shortest token kept, in characters (Unicode code points), >= 1.
        max_len: longest token kept, in characters, >= ``min_len``. Longer
            tokens are dropped, not truncated (as in ``simple_preprocess``).
        text_column: the string column holding documents in Parquet input.

    Raises:
        ValueError: a bound is out of range, the normalization form is unknown,
            the pattern does not compile in polars, or ``text_column`` is empty.
    """

    lowercase: bool = True
    normalization: str | None = "NFKC"
    pattern: str = _LETTERS
    min_len: int = 2
    max_len: int = 15
    text_column: str = "text"

    def __post_init__(self) -> None:
        if self.min_len < 1:
            raise ValueError(f"min_len must be >= 1, got {self.min_len}")
        if self.max_len < self.min_len:
            raise ValueError(f"max_len must be >= min_len ({self.min_len}), got {self.max_len}")
        if self.normalization is not None and self.normalization not in _NORMALIZATION_FORMS:
            raise ValueError(
                f"normalization must be one of {_NORMALIZATION_FORMS} or None, got {self.normalization!r}"
            )
        if not self.text_column:
            raise ValueError("text_column must be a non-empty column name")
        try:
            pl.Series([""]).str.extract_all(self.pattern)
        except Exception as e:  # polars raises ComputeError for a bad regex
            raise ValueError(
                f"pattern {self.pattern!r} does not compile in polars' regex engine "
                f"(Rust regex syntax: no look-around or back-references): {e}"
            ) from e


@dataclass(frozen=True)
class TokenizeStats:
    """What :func:`tokenize_corpus` read and wrote.

    Attributes:
        files: input files read (>= 1).
        documents: documents (rows) written, i.e. non-empty lines / rows with
            at least one token.
        tokens: tokens written (>= 1).
        invalid_utf8: invalid UTF-8 sequences replaced by U+FFFD (text input
            only; Parquet strings are already decoded).
        boms_removed: byte-order marks (U+FEFF) removed, wherever they occurred.
        shards: shard file names inside the output folder, in order.
    """

    files: int
    documents: int
    tokens: int
    invalid_utf8: int
    boms_removed: int
    shards: tuple[str, ...]

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict (``shards`` as a list)."""
        d = dataclasses.asdict(self)
        d["shards"] = list(self.shards)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TokenizeStats":
        """Inverse of :meth:`to_dict`; keys other than the fields (e.g. ``path``) are ignored."""
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name != "shards"},
                   shards=tuple(d["shards"]))


# --------------------------------------------------------------------------- sources


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def list_corpus_files(source: Path) -> list[Path]:
    """Input files of a corpus ``source`` (a file, or every non-hidden file below a folder) in read order.

    Raises:
        CorpusError: the path does not exist, or the folder holds no files.
    """
    if not source.exists():
        raise CorpusError(
            f"corpus not found: {source} (resolved from {Path.cwd()}); "
            "pass an existing text file (.txt, .gz, .bz2), Parquet file, or folder of them"
        )
    if source.is_dir():
        files = sorted(
            (p for p in source.rglob("*") if p.is_file() and not _is_hidden(p, source)),
            key=lambda p: p.relative_to(source).as_posix(),
        )
        if not files:
            raise CorpusError(
                f"no readable files in folder {source} (hidden files are skipped); "
                "put text files (.txt, .gz, .bz2) or Parquet files in it, or pass a file"
            )
        return files
    return [source]


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".gz": "gzip", ".bz2": "bzip2", ".parquet": "parquet"}.get(suffix, "text")


class _GzipStream:
    """Read-only decompressing stream over a gzip file: ``read(size)`` and ``with`` only.

    Same bytes as :class:`gzip.GzipFile` (members concatenated, zero padding
    after a member skipped), but the compressed file is read in
    :data:`_GZIP_CHUNK` pieces and inflated by one ``zlib`` call per piece or
    per ``size`` bytes of output, not per 8 KiB: fewer Python calls, and zlib
    runs long stretches without the GIL. zlib checks each member's header,
    CRC-32 and length (``zlib.error``); a truncated stream raises
    ``EOFError``, as ``GzipFile`` does.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        self._input = b""  # compressed bytes read but not yet inflated
        self._in_member = False  # some bytes of the current member were fed to zlib
        self._members = 0  # members fully read
        self._done = False

    def __enter__(self) -> _GzipStream:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def _end_member(self) -> None:
        self._input = self._inflate.unused_data
        self._inflate = zlib.decompressobj(wbits=31)
        self._in_member = False
        self._members += 1

    def read(self, size: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < size and not self._done:
            if not self._input:
                self._input = self._raw.read(_GZIP_CHUNK)
                if not self._input:
                    if self._in_member:  # the end of the file: flush, then the member must be complete
                        tail = self._inflate.flush()
                        if tail:
                            parts.append(tail)
                            got += len(tail)
                        if not self._inflate.eof:
                            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                        self._end_member()
                        continue
                    self._done = True
                    break
            if not self._in_member and self._members:
                self._input = self._input.lstrip(b"\0")  # zero padding between members, as GzipFile
                if not self._input:
                    continue
            self._in_member = True
            piece = self._inflate.decompress(self._input, size - got)
            if piece:
                parts.append(piece)
                got += len(piece)
            if self._inflate.eof:
                self._end_member()
            else:
                self._input = self._inflate.unconsumed_tail
        return b"".join(parts)


def _open_binary(path: Path, raw: BinaryIO) -> BinaryIO:
    kind = _kind(path)
    if kind == "gzip":
        return _GzipStream(raw)
    if kind == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    return raw


def _iter_line_blocks(stream: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """Yield byte blocks that end at a line break (the last one may not).

    Cutting at ``b"\\n"`` is safe in UTF-8: that byte never occurs inside a
    multi-byte sequence. A line longer than ``block_bytes`` is accumulated
    across reads and yielded whole.
    """
    pending: list[bytes] = []
    while True:
        buf = stream.read(block_bytes)
        if not buf:
            break
        cut = buf.rfind(b"\n")
        if cut < 0:
            pending.append(buf)
            continue
        pending.append(buf[: cut + 1])
        yield b"".join(pending)
        pending = [buf[cut + 1 :]] if cut + 1 < len(buf) else []
    if pending:
        yield b"".join(pending)


def _decode(raw: bytes) -> tuple[str, int, int]:
    """Decode UTF-8 bytes; returns (text, invalid UTF-8 count, BOMs removed).

    Invalid UTF-8 is replaced by U+FFFD; replacements are counted as U+FFFD
    characters after decoding minus genuine U+FFFD already encoded in the
    bytes. Every U+FEFF (byte-order mark, anywhere) is removed and counted.
    """
    text = raw.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    if invalid:
        invalid -= raw.count(_REPLACEMENT_BYTES)
    boms = text.count("\ufeff")
    if boms:
        text = text.replace("\ufeff", "")
    return text, invalid, boms


def _decode_block(raw: bytes) -> tuple[pl.Series, int, int]:
    """Decode a block into a Series of lines; returns (lines, invalid UTF-8 count, BOMs removed).

    As :func:`_decode`; lines are split at ``"\\n"`` only, as ``str.split("\\n")``
    does, inside polars (no Python string per line).
    """
    text, invalid, boms = _decode(raw)
    lines = pl.Series("text", [text], dtype=pl.String).str.split("\n", inclusive=False).explode()
    return lines, invalid, boms


class _RangeStream:
    """Read-only stream over bytes ``[start, end)`` of an open binary file: ``read(size)`` and ``with`` only."""

    def __init__(self, raw: BinaryIO, start: int, end: int) -> None:
        raw.seek(start)
        self._raw = raw
        self._left = max(0, end - start)

    def __enter__(self) -> _RangeStream:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def read(self, size: int) -> bytes:
        if self._left <= 0:
            return b""
        buf = self._raw.read(min(size, self._left))
        self._left -= len(buf)
        return buf


def _iter_text_file(path: Path, on_bytes, block_bytes: int, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Yield raw byte blocks, cut at line breaks, of a plain/gzip/bzip2 text file.

    With ``start`` / ``end`` (plain text only) just the bytes ``[start, end)``
    are read; both should be line starts (see ``replearn.lib.text.partitions``).
    """
    with open(path, "rb") as raw:
        ranged = start > 0 or end is not None
        if ranged and _kind(path) != "text":
            raise ValueError(f"{path}: a byte range can only be read from uncompressed text, not {_kind(path)}")
        with (_RangeStream(raw, start, end if end is not None else path.stat().st_size) if ranged
              else _open_binary(path, raw)) as stream:
            pos = raw.tell()
            for block in _iter_line_blocks(stream, block_bytes):
                now = raw.tell()
                on_bytes(now - pos)
                pos = now
                yield block


def _iter_parquet_file(path: Path, column: str, on_bytes) -> Iterator[pl.Series]:
    """Yield Series of documents (one per non-null row) of a Parquet file's text column."""
    pf = pq.ParquetFile(path)
    schema = pf.schema_arrow
    if column not in schema.names:
        raise CorpusError(
            f"Parquet file {path} has no column {column!r}; available columns: {schema.names}. "
            "Pass the column holding the text with --text-column NAME (TokenizerConfig.text_column)"
        )
    col_type = schema.field(column).type
    is_string_view = getattr(pa.types, "is_string_view", lambda t: False)  # pyarrow >= 16
    if not (pa.types.is_string(col_type) or pa.types.is_large_string(col_type) or is_string_view(col_type)):
        raise CorpusError(
            f"column {column!r} of Parquet file {path} has type {col_type}, not string; "
            "store the documents as a string column or pass another --text-column"
        )
    size = path.stat().st_size
    rows = max(pf.metadata.num_rows, 1)
    for batch in pf.iter_batches(columns=[column], batch_size=PARQUET_BATCH_ROWS):
        on_bytes(size * batch.num_rows // rows)
        yield pl.Series("text", batch.column(0)).cast(pl.String).drop_nulls()


# --------------------------------------------------------------------------- tokenization


def _normalize(s: pl.Series, form: str) -> pl.Series:
    """Unicode-normalize only the non-ASCII rows (ASCII is invariant under every form)."""
    idx = s.str.contains(_NON_ASCII).arg_true()
    if len(idx) == 0:
        return s
    return s.scatter(idx, s.gather(idx).str.normalize(form))


def _token_expr(config: TokenizerConfig, normalize: bool = False) -> pl.Expr:
    """Expression: column ``text`` -> ``tokens`` (a list per row); Unicode-normalizes
    every row first if ``normalize`` (else see :func:`_normalize`)."""
    text = pl.col("text")
    if normalize and config.normalization is not None:
        text = text.str.normalize(config.normalization)
    if config.lowercase:
        text = text.str.to_lowercase()
    tok = pl.element()
    return (
        text.str.extract_all(config.pattern)
        .list.eval(tok.filter(tok.str.len_chars().is_between(config.min_len, config.max_len)))
        .alias("tokens")
    )


@dataclass
class _Block:
    table: pa.Table  # TOKENS_SCHEMA, documents with >= 1 token
    tokens: int
    invalid_utf8: int
    boms: int


def _token_lists(s: pl.Series, config: TokenizerConfig, expr: pl.Expr) -> pl.Series:
    """The tokens of each document of ``s``: one list per row, in order, possibly empty."""
    if config.normalization is not None:
        s = _normalize(s, config.normalization)
    return pl.DataFrame({"text": s}).select(expr).to_series()


def _tokenize_block(item: bytes | pl.Series, config: TokenizerConfig, expr: pl.Expr) -> _Block:
    """Tokenize one block: raw text bytes (one document per line) or a Series of documents.

    Runs in a worker thread; numpy, polars and pyarrow release the GIL. Text
    blocks go to :func:`_tokenize_text_block` (numpy fast path for ASCII lines).
    """
    if isinstance(item, bytes):
        return _tokenize_text_block(item, config, expr)
    s = item
    boms = int(s.str.count_matches("\ufeff", literal=True).sum() or 0)
    if boms:
        s = s.str.replace_all("\ufeff", "", literal=True)
    return _block_from_lists(_token_lists(s, config, expr), 0, boms)


def _block_from_lists(lists: pl.Series, invalid: int, boms: int) -> _Block:
    """A :class:`_Block` of the non-empty token lists of ``lists``."""
    lists = lists.filter(lists.list.len() > 0)
    n_tokens = int(lists.list.len().sum() or 0)
    table = pa.Table.from_arrays([lists.to_arrow()], names=["tokens"]).cast(TOKENS_SCHEMA)
    return _Block(table, n_tokens, invalid, boms)


def _tokenize_text_block(raw: bytes, config: TokenizerConfig, expr: pl.Expr) -> _Block:
    """Tokenize a block of UTF-8 text, one document per line (split at ``b"\\n"``).

    With the default pattern (:data:`_LETTERS`) the lines that are pure ASCII
    are tokenized with numpy straight on the bytes: on ASCII text
    ``[^\\W\\d_]+`` is exactly ``[A-Za-z]+``, NFKC (any form) is the identity,
    Unicode lower-casing is ASCII lower-casing (``byte | 0x20`` on letters), and
    there are no invalid bytes nor BOMs to count. The lines holding a byte
    >= 0x80 are decoded and tokenized by polars with the same expression as
    :func:`_polars_text_block` uses (normalizing each of them; normalizing
    ASCII is a no-op) and merged back in line order, so the result is the same
    as tokenizing every line with polars. Decoding, NFKC and lower-casing are
    line-local (``"\\n"`` is a boundary for all three), so doing them on the
    non-ASCII lines joined by ``"\\n"`` changes nothing. Blocks with more than
    :data:`_MAX_SLOW_SHARE` non-ASCII lines, other patterns, and blocks of
    2 GiB or more go to :func:`_polars_text_block` whole.
    """
    n = len(raw)
    if config.pattern != _LETTERS or n >= 2**31 - 1:
        return _block_from_lists(*_polars_text_block(raw, config, expr))
    a = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(a == 10)
    n_lines = newlines.size + 1  # as str.split("\n"): the text after the last "\n" is a line, maybe empty
    line_starts = np.empty(n_lines, dtype=np.int64)
    line_starts[0] = 0
    line_starts[1:] = newlines + 1
    high = np.flatnonzero(a >= 0x80)
    slow = np.unique(np.searchsorted(newlines, high)) if high.size else high  # lines with non-ASCII bytes
    if slow.size > _MAX_SLOW_SHARE * n_lines:
        return _block_from_lists(*_polars_text_block(raw, config, expr))
    line_ends = np.append(newlines, n)
    slow_spans = list(zip(line_starts[slow].tolist(), line_ends[slow].tolist()))

    # letter[i + 1]: byte i is an ASCII letter on an ASCII line; False pads both ends
    letter = np.empty(n + 2, dtype=bool)
    letter[0] = letter[-1] = False
    scratch = np.bitwise_or(a, np.uint8(0x20))  # ASCII letters to lower case
    scratch -= np.uint8(ord("a"))  # wraps around: letters are now 0..25
    np.less(scratch, np.uint8(26), out=letter[1:-1])
    del scratch
    for s, e in slow_spans:
        letter[s + 1 : e + 1] = False
    runs = np.flatnonzero(letter[1:] != letter[:-1]).reshape(-1, 2)  # run i of letters: raw[runs[i, 0]:runs[i, 1]]
    starts = runs[:, 0]
    lengths = runs[:, 1] - starts
    good = lengths >= config.min_len
    good &= lengths <= config.max_len
    dropped = np.flatnonzero(~good)
    if dropped.size:  # runs too short or too long are dropped whole: clear their letters
        drop_starts, drop_lengths = starts[dropped], lengths[dropped]
        letter[drop_starts + 1] = False  # the first letter (all of it for the many 1-letter runs)
        longer = np.flatnonzero(drop_lengths > 1)
        if longer.size:
            drop_starts, drop_lengths = drop_starts[longer], drop_lengths[longer]
            first = np.cumsum(drop_lengths) - drop_lengths
            total = int(first[-1] + drop_lengths[-1])
            letter[np.repeat(drop_starts - first, drop_lengths) + np.arange(1, total + 1)] = False
        starts, lengths = starts[good], lengths[good]
    del runs, good, dropped
    chars = np.compress(letter[1:-1], a)
    del letter
    if config.lowercase:
        chars |= np.uint8(0x20)
    offsets = np.zeros(starts.size + 1, dtype=np.int32)
    np.cumsum(lengths, dtype=np.int32, out=offsets[1:])
    values = pa.StringArray.from_buffers(starts.size, pa.py_buffer(offsets), pa.py_buffer(chars))
    first_token = np.searchsorted(starts, line_starts)  # index in values of each line's first token
    counts = np.diff(first_token, append=starts.size)  # tokens per line (0 on non-ASCII lines so far)

    invalid = boms = 0
    if slow_spans:
        text, invalid, boms = _decode(b"\n".join([raw[s:e] for s, e in slow_spans]))
        # every line here is non-ASCII (or ASCII once its BOMs are gone, which normalizes to itself)
        slow_lists = pl.DataFrame({"text": text.split("\n")}).select(_token_expr(config, normalize=True))
        slow_lists = slow_lists.to_series().to_arrow()
        slow_counts = slow_lists.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
        slow_values = slow_lists.flatten().cast(pa.string())
        counts[slow] = slow_counts
        first_token[slow] = np.cumsum(slow_counts) - slow_counts  # index in slow_values
    docs = np.flatnonzero(counts)
    list_offsets = np.zeros(docs.size + 1, dtype=np.int32)
    np.cumsum(counts[docs], dtype=np.int32, out=list_offsets[1:])
    if slow_spans and docs.size:  # interleave runs of ASCII and non-ASCII documents, in line order
        is_slow = np.zeros(n_lines, dtype=bool)
        is_slow[slow] = True
        doc_slow = is_slow[docs]
        cuts = (np.flatnonzero(doc_slow[1:] != doc_slow[:-1]) + 1).tolist()
        first, last = docs[[0, *cuts]], docs[[c - 1 for c in cuts] + [docs.size - 1]]
        run_start, run_stop = first_token[first], first_token[last] + counts[last]
        values = pa.concat_arrays([
            (slow_values if s else values).slice(b, e - b)
            for s, b, e in zip(doc_slow[[0, *cuts]].tolist(), run_start.tolist(), run_stop.tolist())
        ])
    tokens = pa.ListArray.from_arrays(pa.array(list_offsets), values, type=_TOKEN_LIST)
    table = pa.Table.from_arrays([tokens], schema=TOKENS_SCHEMA)
    return _Block(table, int(list_offsets[-1]), invalid, boms)


def _polars_text_block(raw: bytes, config: TokenizerConfig, expr: pl.Expr) -> tuple[pl.Series, int, int]:
    """(token lists of every line, invalid UTF-8 count, BOMs removed) of a text block, all in polars."""
    lines, invalid, boms = _decode_block(raw)
    return _token_lists(lines, config, expr), invalid, boms


def _guard_reads(blocks: Iterator, path: Path) -> Iterator:
    """Re-raise read/decompression errors of ``blocks`` as CorpusError naming ``path``."""
    try:
        yield from blocks
    except (OSError, EOFError, zlib.error, pa.ArrowException) as e:
        raise CorpusError(
            f"cannot read {path} as {_kind(path)}: {e}; "
            "check that the file is complete and that its extension matches its format"
        ) from e


class _ShardWriter:
    """Append tables to ``part-%05d.parquet`` files of at most ``shard_rows`` rows.

    Rows are buffered until a whole row group is there (:data:`ROW_GROUP_ROWS`
    rows, or what the shard has room for), so row groups are full-size
    whatever the size of the tables appended; :meth:`close` writes the rest.
    """

    def __init__(self, folder: Path, shard_rows: int) -> None:
        self.folder = folder
        self.shard_rows = shard_rows
        self.names: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_shard = 0
        self._buffer: list[pa.Table] = []
        self._buffered = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._buffer.append(table)
            self._buffered += table.num_rows
        while self._buffered and self._buffered >= self._group_rows():
            self._write_group(self._group_rows())

    def _group_rows(self) -> int:
        """Rows of the next row group: ROW_GROUP_ROWS or the room left in the shard."""
        room = self.shard_rows - self._rows_in_shard
        if self._writer is None or room <= 0:
            room = self.shard_rows  # the next group opens a new shard
        return min(ROW_GROUP_ROWS, room)

    def _write_group(self, rows: int) -> None:
        if self._writer is None or self._rows_in_shard >= self.shard_rows:
            self._open_next()
        table = pa.concat_tables(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        self._writer.write_table(table.slice(0, rows), row_group_size=rows)
        self._rows_in_shard += rows
        self._buffered -= rows
        self._buffer = [table.slice(rows)] if self._buffered else []

    def _open_next(self) -> None:
        self._close_file()
        name = f"part-{len(self.names):05d}.parquet"
        self._writer = pq.ParquetWriter(self.folder / name, TOKENS_SCHEMA, **PARQUET_OPTIONS)
        self.names.append(name)
        self._rows_in_shard = 0

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self, discard: bool = False) -> None:
        """Write the buffered rows (unless ``discard``) and close the current shard."""
        while self._buffered and not discard:
            self._write_group(min(self._buffered, self._group_rows()))
        self._buffer, self._buffered = [], 0
        self._close_file()


def replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move the finished folder ``tmp`` onto ``out_dir`` (same file system); an existing ``out_dir`` is replaced."""
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        return
    old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex}"
    os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        os.replace(old, out_dir)  # put the previous output back
        raise
    shutil.rmtree(old, ignore_errors=True)


def tokenize_corpus(
    source: Path,
    out_dir: Path,
    config: TokenizerConfig = TokenizerConfig(),
    shard_rows: int = 200_000,
    progress: bool = False,
) -> TokenizeStats:
    """Tokenize a corpus into Parquet token shards, streaming.

    Writes ``out_dir/part-00000.parquet, part-00001.parquet, ...``, each with
    one column ``tokens: list<string>`` (see :data:`TOKENS_SCHEMA`), one row
    per document in input order, at most ``shard_rows`` rows per shard and
    :data:`ROW_GROUP_ROWS` rows per row group, written with
    :data:`PARQUET_OPTIONS` (uncompressed). Documents with no tokens
    (blank lines, lines of digits or punctuation) are dropped; long documents
    are kept whole, never truncated; a trailing ``\r`` (CRLF files) is not
    part of any token. Memory is bounded by a few blocks in flight (each
    :data:`BLOCK_BYTES` of text or :data:`PARQUET_BATCH_ROWS` rows, plus the
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
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        counts = tokenize_pieces([(p, 0, None) for p in files], tmp, config, shard_rows, progress)
        if counts.tokens == 0:
            raise empty_corpus_error(source, len(files), config)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dataclasses.replace(counts, files=len(files))


def check_shard_rows(shard_rows: int) -> None:
    """Raise ValueError unless ``shard_rows >= 1``."""
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be >= 1, got {shard_rows}")


def check_out_dir(out_dir: Path) -> None:
    """Raise CorpusError if ``out_dir`` exists and is not a folder (it could never be replaced by one)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise CorpusError(f"output path {out_dir} exists and is not a folder; remove it or choose another output")


def empty_corpus_error(source: Path, n_files: int, config: TokenizerConfig) -> CorpusError:
    """The error for a corpus that yielded no tokens at all."""
    return CorpusError(
        f"empty corpus: {source} yielded no tokens ({n_files} file(s), "
        f"pattern {config.pattern!r}, {config.min_len}..{config.max_len} characters); "
        "check the path, the --text-column, or the tokenizer settings"
    )


#: A piece of a corpus: (file, first byte, end byte or None for the end of the file). Byte ranges are for
#: uncompressed text only and must start and end at line starts.
Piece = tuple[Path, int, "int | None"]


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

    expr = _token_expr(config)
    writer = _ShardWriter(folder, shard_rows)
    documents = tokens = invalid_utf8 = boms = 0
    total_bytes = sum((end if end is not None else Path(path).stat().st_size) - start for path, start, end in pieces)
    pending: deque[Future[_Block]] = deque()
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
                nonlocal documents, tokens, invalid_utf8, boms
                while len(pending) > keep:
                    block = pending.popleft().result()
                    documents += block.table.num_rows
                    tokens += block.tokens
                    invalid_utf8 += block.invalid_utf8
                    boms += block.boms
                    writes.append(write_pool.submit(writer.write, block.table))
                    while len(writes) > _WRITE_AHEAD:
                        writes.popleft().result()

            try:
                for path, start, end in pieces:
                    path = Path(path)
                    if _kind(path) == "parquet":
                        blocks = _iter_parquet_file(path, config.text_column, bar.update)
                    else:
                        blocks = _iter_text_file(path, bar.update, BLOCK_BYTES, start, end)
                    for item in _guard_reads(blocks, path):
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
    )


# --------------------------------------------------------------------------- reading shards


def _shard_paths(token_dir: Path) -> list[Path]:
    token_dir = Path(token_dir)
    if not token_dir.is_dir():
        raise CorpusError(f"token folder not found: {token_dir}; run the tokenize stage first")
    paths = sorted(token_dir.glob("part-*.parquet"))
    if not paths:
        raise CorpusError(f"no token shards (part-*.parquet) in {token_dir}; run the tokenize stage first")
    return paths


def iter_token_shards(token_dir: Path) -> Iterator[pa.Table]:
    """Yield each token shard of ``token_dir`` as a ``pyarrow.Table``, in order.

    Each table has :data:`TOKENS_SCHEMA` (``tokens: list<string>``), one row per
    document. One shard is in memory at a time.

    Raises:
        CorpusError: ``token_dir`` is missing or holds no ``part-*.parquet``.
    """
    for path in _shard_paths(token_dir):
        yield pq.read_table(path)


def read_tokens(token_dir: Path) -> list[list[str]]:
    """Read all documents of ``token_dir`` as lists of tokens (small data only: all in memory).

    Raises:
        CorpusError: as :func:`iter_token_shards`.
    """
    docs: list[list[str]] = []
    for table in iter_token_shards(token_dir):
        docs.extend(table.column("tokens").to_pylist())
    return docs


# --------------------------------------------------------------------------- default corpus

#: gensim test-data files that make up the default corpus.
WIKI_EXCERPT = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_CORPUS = "lee_background.cor"


def _wiki_paragraphs(path: str) -> Iterator[str]:
    """Article paragraphs of a MediaWiki dump, via gensim's own parser and markup filter."""
    from gensim.corpora.wikicorpus import IGNORED_NAMESPACES, extract_pages, filter_wiki

    with bz2.open(path, "rb") as f:
        for title, text, _pageid in extract_pages(f, filter_namespaces=("0",)):
            if not text or text.lstrip()[:9].lower() == "#redirect":
                continue
            if any(title.startswith(ns + ":") for ns in IGNORED_NAMESPACES):
                continue
            for line in filter_wiki(text).split("\n"):
                line = line.replace("'''", "").replace("''", "").strip()
                if line and not (line.startswith("=") and line.endswith("=")):  # skip headings
                    yield line


def default_corpus(dest: Path) -> Path:
    """Build (once) the embedded default corpus as one UTF-8 text file at ``dest``.

    Made only from text shipped inside the gensim wheel, no downloads:

    * the English Wikipedia excerpt ``enwiki-latest-pages-articles1.xml-
      p000000010p000030302-shortened.bz2`` (106 articles), parsed with
      ``gensim.corpora.wikicorpus.extract_pages`` (main namespace only,
      redirects and ``Category:``/``File:``/... pages skipped) and cleaned with
      ``filter_wiki``; one paragraph per line, headings dropped;
    * ``lee_background.cor`` (Lee et al. 2005 news corpus, 300 documents), one
      document per line.

    About 500k words (simple_preprocess tokens). The file is written to a
    temporary sibling and renamed, so ``dest`` is either absent or complete.

    Args:
        dest: path of the text file to create; its parent is created if needed.

    Returns:
        ``dest``; if it already exists it is returned without rebuilding.

    Raises:
        CorpusError: gensim's test data is not installed.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    from gensim.test.utils import datapath

    wiki, lee = datapath(WIKI_EXCERPT), datapath(LEE_CORPUS)
    for p in (wiki, lee):
        if not os.path.exists(p):
            raise CorpusError(
                f"default corpus source not found: {p}; reinstall gensim (pip install --force-reinstall gensim) "
                "or pass your own corpus path"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as out:
            for para in _wiki_paragraphs(wiki):
                out.write(para + "\n")
            with open(lee, encoding="utf-8", errors="replace") as f:
                for line in f:
                    line = line.strip()
                    if line:
                        out.write(line + "\n")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
