"""Token shards: the Parquet files ``part-00000.parquet, part-00001.parquet, ...`` of a token folder.

Each shard has one column ``tokens: list<string>`` (:data:`TOKENS_SCHEMA`), one
row per document, in input order. :class:`ShardWriter` appends tables to
shards of at most ``shard_rows`` rows in full-size row groups;
:func:`iter_token_shards` and :func:`read_tokens` read them back. A token
folder is published atomically (written under a temporary sibling name and
renamed, :func:`replearn.lib.store.atomic.atomic_path`); :func:`check_out_dir`
refuses an output path that could never be replaced by a folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from replearn.lib.errors import CorpusError

__all__ = [
    "TOKENS_SCHEMA",
    "ROW_GROUP_ROWS",
    "PARQUET_OPTIONS",
    "ShardWriter",
    "check_shard_rows",
    "check_out_dir",
    "iter_token_shards",
    "read_tokens",
]

#: Schema of every token shard: ``tokens: list<string>``. The list's child field is
#: named ``element``, as Parquet's nested-type spec has it, so a shard read back
#: with ``pyarrow.parquet.read_table`` has exactly this schema.
TOKENS_SCHEMA = pa.schema([pa.field("tokens", pa.list_(pa.field("element", pa.string())))])
#: Maximum rows per Parquet row group in the token shards.
ROW_GROUP_ROWS = 65_536
#: ``pyarrow.parquet.ParquetWriter`` options of the token shards: no compression and
#: no dictionary (PLAIN strings), the cheapest to write and to read back: about 9
#: bytes per token on disk, some 4x the size with ``compression="zstd"`` and the
#: dictionary on, which costs about a third of the whole tokenize time.
PARQUET_OPTIONS = {"compression": "none", "use_dictionary": False, "write_statistics": False}


def check_shard_rows(shard_rows: int) -> None:
    """Raise ValueError unless ``shard_rows >= 1``."""
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be >= 1, got {shard_rows}")


def check_out_dir(out_dir: Path) -> None:
    """Raise CorpusError if ``out_dir`` exists and is not a folder (it could never be replaced by one)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise CorpusError(f"output path {out_dir} exists and is not a folder; remove it or choose another output")


class ShardWriter:
    """Append tables to ``part-%05d.parquet`` files of at most ``shard_rows`` rows.

    Rows are buffered until a whole row group is there (:data:`ROW_GROUP_ROWS`
    rows, or what the shard has room for), so row groups are full-size
    whatever the size of the tables appended; :meth:`close` writes the rest.
    Tables must have :data:`TOKENS_SCHEMA`; shards are written with
    :data:`PARQUET_OPTIONS`. ``names`` lists the shards written so far.
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
        """Append the rows of ``table``; whole row groups are written as soon as they are complete."""
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
