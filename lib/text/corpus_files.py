"""Corpus files: which files a corpus is made of, and reading them in blocks.

Accepted sources
----------------
* a plain UTF-8 text file, or one compressed with gzip (``.gz``) or bzip2
  (``.bz2``): one document = one line;
* a folder of such files, read recursively in sorted path order, skipping
  hidden files and folders (names starting with ``.``);
* a ``.parquet`` file (also inside a folder) with a string column
  (``TokenizerConfig.text_column``): one document = one row, newlines and all.

:func:`list_corpus_files` lists the files of a source in read order;
:func:`read_blocks` reads one of them as blocks of a few MB (raw bytes cut at
line breaks for text, Series of documents for Parquet), so memory stays
bounded whatever the file size. Decoding the bytes is
:mod:`replearn.lib.text.utf8_repair`'s job.
"""

from __future__ import annotations

import bz2
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from replearn.lib.errors import CorpusError

__all__ = ["BLOCK_BYTES", "PARQUET_BATCH_ROWS", "list_corpus_files", "file_kind", "read_blocks"]

#: Bytes of decompressed text read per block (the block is then cut at its last newline).
BLOCK_BYTES = 4 * 1024 * 1024
#: Compressed bytes read per zlib call for ``.gz`` input.
_GZIP_CHUNK = 1024 * 1024
#: Rows per record batch when reading Parquet input.
PARQUET_BATCH_ROWS = 16_384


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def list_corpus_files(source: Path) -> list[Path]:
    """Input files of a corpus ``source`` (a file, or every non-hidden file below a folder) in read order.

    Raises:
        CorpusError: the path does not exist, or the folder holds no files.
    """
    if not source.exists():
        from replearn.lib.text.default_corpus import EMBEDDED_CORPORA

        raise CorpusError(
            f"corpus not found: {source} (resolved from {Path.cwd()}); "
            "pass an existing text file (.txt, .gz, .bz2), Parquet file, or folder of them, or an embedded "
            f"corpus: {' or '.join(repr(name) for name in EMBEDDED_CORPORA)}"
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


def file_kind(path: Path) -> str:
    """How ``path`` is read, from its extension: ``"gzip"``, ``"bzip2"``, ``"parquet"`` or ``"text"``."""
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


def _open_binary(path: Path, raw: BinaryIO) -> BinaryIO:
    kind = file_kind(path)
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


def _iter_text_file(path: Path, on_bytes, block_bytes: int, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Yield raw byte blocks, cut at line breaks, of a plain/gzip/bzip2 text file.

    With ``start`` / ``end`` (plain text only) just the bytes ``[start, end)``
    are read; both should be line starts (see ``replearn.lib.text.partitions``).
    """
    with open(path, "rb") as raw:
        ranged = start > 0 or end is not None
        if ranged and file_kind(path) != "text":
            raise ValueError(f"{path}: a byte range can only be read from uncompressed text, not {file_kind(path)}")
        with (_RangeStream(raw, start, end if end is not None else path.stat().st_size) if ranged
              else _open_binary(path, raw)) as stream:
            pos = raw.tell()
            for block in _iter_line_blocks(stream, block_bytes):
                now = raw.tell()
                on_bytes(now - pos)
                pos = now
                yield block


def _iter_parquet_file(path: Path, column: str, on_bytes) -> Iterator[pl.Series]:
    """Yield Series of documents (one per row, nulls kept: the tokenizer counts them) of a Parquet file's text
    column: ``string``, ``large_string``, ``string_view``, or a dictionary of strings (pandas' ``category``)."""
    pf = pq.ParquetFile(path)
    schema = pf.schema_arrow
    if column not in schema.names:
        raise CorpusError(
            f"Parquet file {path} has no column {column!r}; available columns: {schema.names}. "
            "Pass the column holding the text with --text-column NAME (TokenizerConfig.text_column)"
        )
    col_type = schema.field(column).type
    is_string_view = getattr(pa.types, "is_string_view", lambda t: False)  # pyarrow >= 16

    def is_text(t: pa.DataType) -> bool:
        return pa.types.is_string(t) or pa.types.is_large_string(t) or is_string_view(t)

    if not (is_text(col_type) or (pa.types.is_dictionary(col_type) and is_text(col_type.value_type))):
        raise CorpusError(
            f"column {column!r} of Parquet file {path} has type {col_type}, not string; "
            "store the documents as a string column or pass another --text-column"
        )
    size = path.stat().st_size
    rows = max(pf.metadata.num_rows, 1)
    for batch in pf.iter_batches(columns=[column], batch_size=PARQUET_BATCH_ROWS):
        on_bytes(size * batch.num_rows // rows)
        col = batch.column(0)
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        yield pl.Series("text", col).cast(pl.String)


def _guard_reads(blocks: Iterator, path: Path) -> Iterator:
    """Re-raise read/decompression errors of ``blocks`` as CorpusError naming ``path``."""
    try:
        yield from blocks
    except (OSError, EOFError, zlib.error, pa.ArrowException) as e:
        raise CorpusError(
            f"cannot read {path} as {file_kind(path)}: {e}; "
            "check that the file is complete and that its extension matches its format"
        ) from e


def read_blocks(path: Path, text_column: str, on_bytes: Callable[[int], object], start: int = 0,
                end: int | None = None) -> Iterator[bytes | pl.Series]:
    """Read one corpus file lazily, block by block, in order.

    A text file (plain, ``.gz``, ``.bz2``) gives ``bytes`` blocks of about
    :data:`BLOCK_BYTES` decompressed bytes, each ending at a line break (the
    last may not; a longer line is yielded whole), undecoded. A Parquet file
    gives ``polars.Series`` of the strings of ``text_column`` (nulls kept),
    :data:`PARQUET_BATCH_ROWS` rows at a time.

    Args:
        path: the file.
        text_column: the string column holding the documents of a Parquet file.
        on_bytes: called with the number of (compressed) file bytes consumed
            by each block, for a progress bar.
        start, end: read only the bytes ``[start, end)`` (``end=None``: to the
            end of the file); uncompressed text only, both at line starts.

    Raises:
        CorpusError: the file cannot be read or decompressed (naming the file);
            a Parquet file lacks ``text_column`` or it is not a string column.
        ValueError: a byte range was asked of a compressed or Parquet file.
    """
    path = Path(path)
    if file_kind(path) == "parquet":
        blocks = _iter_parquet_file(path, text_column, on_bytes)
    else:
        blocks = _iter_text_file(path, on_bytes, BLOCK_BYTES, start, end)
    return _guard_reads(blocks, path)
