"""The embeddings table: one Parquet file, or a folder of Parquet shards, that a reader can use with nothing else.

Columns (docs/design.md, "The embeddings table"):

======== ================================ ==========================================
column   type                             meaning
======== ================================ ==========================================
id       int64, not null, unique, >= 0    row id, also the FAISS id
key      string, not null                 the word, the item's id or path, the caption
vector   fixed_size_list<float32>[dim]    the embedding, finite
sense    int16, nullable, >= 0            sense index for multi-sense vectors
modality string, nullable                 ``"text"`` or ``"image"`` for two-tower models
label    string, nullable                 class label where known
======== ================================ ==========================================

Layouts: one ``.parquet`` file, or a folder of shards ``part-00000.parquet``,
``part-00001.parquet``, ... (each with the same footer metadata) that
:func:`read_embeddings` / :func:`read_vectors` read as one table. Both are
written atomically (a temporary sibling renamed into place); row groups hold
at most ``row_group_size`` rows, so a reader streams them in bounded memory.

File-level key-value metadata holds, under the key ``replearn``, the JSON of
:class:`EmbeddingsMetadata` (model family, dimension, L2-normalised or not, the
similarity the index uses, MLflow run id, source content hash, training config,
which matrix). Plain pyarrow, polars and duckdb read the file without replearn::

    pq.read_metadata(path).metadata[b"replearn"]       # the JSON
    pl.read_parquet(path)                              # vector -> Array(Float32, dim)
    duckdb.sql(f"select key, vector from '{path}'")
    pq.read_table(folder); pl.read_parquet(f"{folder}/*.parquet"); duckdb.sql(f"select * from '{folder}/*.parquet'")

Vectors go from numpy to Arrow and back without a Python loop: the ``(N, D)``
float32 C-contiguous buffer *is* the child array of the ``FixedSizeListArray``.

This module writes and reads tables; the schema and :class:`EmbeddingsMetadata`
live in :mod:`replearn.lib.store.embeddings_schema`, the column checks and
:func:`build_table` in :mod:`replearn.lib.store.embeddings_columns` (both
re-exported here).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Unpack

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.atomic import atomic_path
from replearn.lib.store.file_digests import file_digest
from replearn.lib.store.embeddings_columns import OptionalColumns, _rows, build_table
from replearn.lib.store.embeddings_schema import (
    METADATA_KEY,
    MODALITIES,
    EmbeddingsMetadata,
    Similarity,
    schema,
)

__all__ = [
    "METADATA_KEY",
    "MODALITIES",
    "EmbeddingsMetadata",
    "OptionalColumns",
    "Similarity",
    "build_table",
    "content_hash",
    "DEFAULT_SHARD_ROWS",
    "read_embeddings",
    "read_metadata",
    "read_vectors",
    "schema",
    "write_embeddings",
    "write_parquet",
]

DEFAULT_SHARD_ROWS = 262_144
"""Rows per shard of the folder layout (128 MiB of vectors at D = 128)."""

SHARD_NAME = "part-{:05d}.parquet"
"""File name of shard ``i`` in the folder layout."""

_DEFAULT_COMPRESSION = {
    "id": "zstd", "key": "zstd", "vector": "none", "sense": "zstd", "modality": "zstd", "label": "zstd",
}


# --------------------------------------------------------------------------- write / read


def write_embeddings(
    path: Path | str,
    keys: Sequence[str],
    vectors: np.ndarray,
    metadata: EmbeddingsMetadata,
    *,
    row_group_size: int = 65536,
    shard_rows: int | None = None,
    compression: str | dict[str, str] | None = None,
    threads: int | None = None,
    **columns: Unpack[OptionalColumns],
) -> Path:
    """Validate and write an embeddings table to ``path`` atomically; return ``Path(path)``.

    Two layouts:

    * **one file** (``path`` ends in ``.parquet`` and ``shard_rows`` is None):
      the file is written to a temporary sibling and renamed.
    * **a dataset of shards** (``path`` does not end in ``.parquet``, or
      ``shard_rows`` is given): a folder of ``part-00000.parquet``,
      ``part-00001.parquet``, ... of at most ``shard_rows`` rows each (default
      :data:`DEFAULT_SHARD_ROWS`), in row order, each carrying the same footer
      metadata (any shard alone is self-describing). The folder is written
      under a temporary name and renamed. Read it back as one table with
      :func:`read_embeddings` / :func:`read_vectors`, or without replearn:
      ``pq.read_table(folder)``, ``pl.read_parquet(f"{folder}/*.parquet")``,
      ``duckdb.sql(f"select * from '{folder}/*.parquet'")``.

    Args:
        path: output ``.parquet`` file or folder; its parent is created; an
            existing file/folder is replaced atomically (readers see the old
            or the new one, never a mix).
        keys: ``N`` strings (list, numpy or Arrow string array): words, item ids, captions.
        vectors: ``(N, D)`` real array with ``D == metadata.dim``; float64,
            integer, non-contiguous or Fortran-ordered input is cast to a
            C-contiguous float32 copy, float32 C-contiguous input is used as is
            (the Arrow column shares its buffer: a million rows take well under
            a second to convert). A list of rows is accepted too.
        metadata: :class:`EmbeddingsMetadata`, stored in the file footer.
        ids, sense, modality, label: the optional columns (:class:`OptionalColumns`):
            ``ids`` ``N`` distinct integers >= 0 (the FAISS ids; default ``0..N-1``);
            ``sense`` ``N`` ints in [0, 32767] or None (multi-sense models);
            ``modality`` ``N`` values ``"text"`` / ``"image"`` / None;
            ``label`` ``N`` strings or None. A column left out (or None) is all null.
        row_group_size: rows per Parquet row group (>= 1): bounds the memory
            a reader needs per group (65,536 x 128 floats = 32 MiB).
        shard_rows: rows per shard file (>= 1); implies the folder layout.
        compression: Parquet codec for every column, or a dict column -> codec;
            default: ``zstd`` for ``id, key, sense, modality, label`` and none
            for ``vector`` (float embeddings compress by ~5 % at a third of
            the write speed and a seventh of the read speed).
        threads: shards written in parallel (default ``min(4, os.cpu_count())``).

    Raises:
        EmbeddingsError: before anything is written, naming the offending row
            ids (first five and the count): no rows; NaN or ±Inf values
            (including float64 values beyond float32 range); a dimension other
            than ``metadata.dim``; duplicate or negative ids; null/non-string
            keys; vectors not of unit norm although ``metadata.normalized``;
            column lengths that differ from ``N``; invalid sense/modality/label.
        TypeError: ``metadata`` is not an :class:`EmbeddingsMetadata`.
        OSError: the file cannot be written (no partial or temporary file remains).
    """
    path = Path(path)
    _check_options(metadata, row_group_size)
    table = build_table(keys, vectors, metadata, where=f"cannot write embeddings to {path}", **columns)
    sharded = shard_rows is not None or path.suffix != ".parquet"
    if shard_rows is not None and (isinstance(shard_rows, bool) or not isinstance(shard_rows, int) or shard_rows < 1):
        raise EmbeddingsError(f"shard_rows must be an int >= 1, got {shard_rows!r}")

    with atomic_path(path) as tmp:
        if not sharded:
            write_parquet(table, tmp, row_group_size=row_group_size, compression=compression)
        else:
            tmp.mkdir()
            _write_shards(table, tmp, shard_rows or DEFAULT_SHARD_ROWS, threads,
                          row_group_size=row_group_size, compression=compression)
    return path


def _write_shards(table: pa.Table, folder: Path, step: int, threads: int | None, *, row_group_size: int,
                  compression: str | dict[str, str] | None) -> None:
    """Write ``table`` as shards of ``step`` rows, ``folder/part-00000.parquet``, ..., ``threads`` at a time
    (default ``min(4, os.cpu_count())``); pyarrow releases the GIL while encoding, so shards encode in parallel."""
    jobs = [(table.slice(s, step), folder / SHARD_NAME.format(i)) for i, s in enumerate(range(0, table.num_rows, step))]

    def write(job: tuple[pa.Table, Path]) -> None:
        write_parquet(job[0], job[1], row_group_size=row_group_size, compression=compression)

    workers = max(1, min(len(jobs), threads or min(4, os.cpu_count() or 1)))
    if workers == 1:
        for job in jobs:
            write(job)
    else:
        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(write, jobs))


def _check_options(metadata: EmbeddingsMetadata, row_group_size: int) -> None:
    """TypeError / EmbeddingsError for a wrong ``metadata`` type or ``row_group_size``, before any work."""
    if not isinstance(metadata, EmbeddingsMetadata):
        raise TypeError(f"metadata must be an EmbeddingsMetadata, got {type(metadata).__name__}")
    if isinstance(row_group_size, bool) or not isinstance(row_group_size, int) or row_group_size < 1:
        raise EmbeddingsError(f"row_group_size must be an int >= 1, got {row_group_size!r}")


def write_parquet(table: pa.Table, where: Path, *, row_group_size: int = 65536,
                  compression: str | dict[str, str] | None = None) -> None:
    """Write a table made by :func:`build_table` to the file ``where`` (not atomic: ``where`` is a temporary path).

    ``compression`` as in :func:`write_embeddings` (default: zstd except for ``vector``); dictionary
    encoding for ``key, modality, label, sense``.
    """
    codec = _DEFAULT_COMPRESSION if compression is None else compression
    pq.write_table(table, where, row_group_size=row_group_size, compression=codec,
                   use_dictionary=["key", "modality", "label", "sense"])


def _parts(path: Path) -> list[Path]:
    """The Parquet files of an embeddings path: ``[path]`` for a file, the sorted shards of a folder.

    Raises:
        FileNotFoundError: missing path, or a folder without ``*.parquet`` files.
    """
    _check_exists(path)
    if not path.is_dir():
        return [path]
    parts = sorted(p for p in path.glob("*.parquet") if not p.name.startswith((".", "_")))
    if not parts:
        raise FileNotFoundError(f"embeddings folder {path} holds no .parquet shards")
    return parts


def _metadata_from_schema(sch: pa.Schema, path: Path) -> EmbeddingsMetadata:
    """Parse the ``replearn`` footer metadata and check the vector column against it."""
    raw = (sch.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise EmbeddingsError(
            f"{path} is not a replearn embeddings file: its Parquet metadata lacks the key "
            f"{METADATA_KEY.decode()!r}; write it with replearn.lib.store.embeddings_table.write_embeddings"
        )
    try:
        meta = EmbeddingsMetadata.from_json(raw)
    except EmbeddingsError as e:
        raise EmbeddingsError(f"{path}: {e}") from None
    if "vector" in sch.names:
        t = sch.field("vector").type
        if not (pa.types.is_fixed_size_list(t) and t.value_type == pa.float32() and t.list_size == meta.dim):
            raise EmbeddingsError(
                f"{path}: column 'vector' has type {t}, expected fixed_size_list<float32>[{meta.dim}] "
                "(metadata.dim); the file is corrupt or was not written by replearn"
            )
    return meta


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"embeddings file or folder {path} does not exist")


def read_metadata(path: Path | str) -> EmbeddingsMetadata:
    """Return the :class:`EmbeddingsMetadata` of an embeddings file or shard folder, reading only a footer.

    Raises:
        FileNotFoundError: ``path`` does not exist (or is a folder without shards).
        EmbeddingsError: the file lacks replearn metadata or it is invalid.
    """
    path = Path(path)
    first = _parts(path)[0]
    return _metadata_from_schema(pq.read_schema(first), first)


def read_embeddings(
    path: Path | str, *, columns: Sequence[str] | None = None
) -> tuple[pa.Table, EmbeddingsMetadata]:
    """Read an embeddings table and its metadata.

    Args:
        path: a file or a folder of shards written by :func:`write_embeddings`
            (the shards are read in name order and concatenated without copying).
        columns: subset of ``id, key, vector, sense, modality, label`` to read; default all.

    Returns:
        ``(table, metadata)``: the pyarrow Table (schema as :func:`schema`, with
        the footer metadata) and the parsed :class:`EmbeddingsMetadata`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        EmbeddingsError: the file lacks replearn metadata, its vector column
            does not match ``metadata.dim``, or the shards of a folder carry
            different metadata (they were not written together).
    """
    path = Path(path)
    parts = _parts(path)
    cols = list(columns) if columns is not None else None
    # ParquetFile reads one file without the dataset layer (which imports pandas: 0.3 s of a warm search)
    tables = [pq.ParquetFile(p).read(columns=cols) for p in parts]
    meta = _metadata_from_schema(tables[0].schema, parts[0])
    raw = tables[0].schema.metadata.get(METADATA_KEY)
    odd = [p.name for p, t in zip(parts, tables) if (t.schema.metadata or {}).get(METADATA_KEY) != raw]
    if odd:
        raise EmbeddingsError(
            f"{path}: shards {odd[:5]} carry metadata different from {parts[0].name}: the folder mixes exports; "
            "rewrite it with write_embeddings"
        )
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    return table, meta


def read_vectors(path: Path | str) -> tuple[list[str], np.ndarray, np.ndarray, EmbeddingsMetadata]:
    """Read keys, ids and vectors as Python/numpy objects, ready for FAISS.

    Reads only the ``id``, ``key`` and ``vector`` columns; no Python loop over
    vectors (each Arrow chunk's flat float32 child is copied block-wise).

    Args:
        path: a file or a folder of shards (see :func:`read_embeddings`).

    Returns:
        ``(keys, ids, vectors, metadata)``: ``keys`` list of N str; ``ids``
        int64 array (N,); ``vectors`` float32 C-contiguous writable array
        ``(N, D)`` that owns its memory; :class:`EmbeddingsMetadata`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        EmbeddingsError: not a replearn file, dimension mismatch, or null vectors.
    """
    table, meta = read_embeddings(path, columns=["id", "key", "vector"])
    n, d = table.num_rows, meta.dim
    col = table.column("vector")
    if col.null_count:
        bad = np.flatnonzero(col.is_null().to_numpy())
        ids = table.column("id").to_numpy()
        raise EmbeddingsError(f"{path}: null vectors in {_rows(ids[bad])}")
    vectors = np.empty((n, d), dtype=np.float32)
    start = 0
    for chunk in col.chunks:
        m = len(chunk)
        # flatten() honours the chunk's offset (unlike .values)
        vectors[start : start + m] = chunk.flatten().to_numpy(zero_copy_only=True).reshape(m, d)
        start += m
    ids = np.ascontiguousarray(table.column("id").to_numpy(), dtype=np.int64)
    keys = table.column("key").to_pylist()
    return keys, ids, vectors, meta


# --------------------------------------------------------------------------- provenance


def _expand(paths: Path | str | Iterable[Path | str]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"content_hash: {p} does not exist")
    return files


def content_hash(paths: Path | str | Iterable[Path | str], memo_dir: Path | str | None = None) -> str:
    """Return a SHA-256 hex digest (64 chars) of the bytes of one or more files, for provenance.

    Files are read in 1 MiB blocks (constant memory). For a single regular
    file the result equals ``sha256sum FILE``. Otherwise (several paths, or a
    directory, which stands for every file below it) the files are sorted by
    path and the result is the SHA-256 of their concatenated 32-byte SHA-256
    digests: it depends on the contents and their order by path, not on the
    directory the data lives in. With ``memo_dir``, each file's digest comes from
    its memo there while the file is unchanged (lib/store/file_digests.py), so
    only new or changed files are read.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no files (empty list or empty directory).
    """
    single = isinstance(paths, (str, Path)) and Path(paths).is_file()
    files = _expand(paths)
    if not files:
        raise ValueError(f"content_hash: no files in {paths!r}")
    if single:
        return file_digest(files[0], memo_dir).hex()
    files = sorted(files, key=lambda f: str(f))
    h = hashlib.sha256()
    for f in files:
        h.update(file_digest(f, memo_dir))
    return h.hexdigest()
