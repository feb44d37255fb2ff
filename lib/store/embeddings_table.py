"""The embeddings table: one Parquet file, or a folder of Parquet shards, that a reader can use with nothing else.

Columns (see ``docs``: DESIGN.md, "The embeddings table"):

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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.atomic import _json_default, atomic_path

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

METADATA_KEY = b"replearn"
"""Parquet file-level key-value metadata key holding the :class:`EmbeddingsMetadata` JSON."""

FORMAT_VERSION = 1
"""Version of the table layout, stored in the metadata JSON as ``format_version``."""

MODALITIES = ("text", "image")
"""Allowed non-null values of the ``modality`` column."""

Similarity = Literal["ip", "l2", "cos"]
_SIMILARITIES = get_args(Similarity)

_NORM_TOL = 1e-3
"""|‖v‖₂ - 1| allowed for vectors declared ``normalized``."""

DEFAULT_SHARD_ROWS = 262_144
"""Rows per shard of the folder layout (128 MiB of vectors at D = 128)."""

SHARD_NAME = "part-{:05d}.parquet"
"""File name of shard ``i`` in the folder layout."""

_DEFAULT_COMPRESSION = {
    "id": "zstd", "key": "zstd", "vector": "none", "sense": "zstd", "modality": "zstd", "label": "zstd",
}

_SHOW_ROWS = 5
"""How many offending row ids an error message lists before "... (N rows)"."""


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class EmbeddingsMetadata:
    """What a reader needs to know about an embeddings file; stored in the file itself.

    Attributes:
        family: model family that produced the vectors, e.g. ``"word2vec"``,
            ``"multisense"``, ``"contrastive"``, ``"clip"``. Non-empty.
        dim: vector dimension ``D``, an int >= 1. Must equal ``vectors.shape[1]``.
        normalized: ``True`` if every vector has L2 norm 1 (checked on write,
            tolerance 1e-3).
        similarity: the similarity the index uses: ``"ip"`` (inner product,
            higher is closer), ``"l2"`` (squared Euclidean, lower is closer) or
            ``"cos"`` (cosine, in [-1, 1], higher is closer).
        mlflow_run_id: MLflow run that trained the model, or ``None``.
        source_hash: :func:`content_hash` of the training data, or ``None``.
        config: the training config (JSON-serialisable dict; numpy scalars,
            paths and sets are converted, the dict is deep-copied on construction).
        matrix: which weight matrix was exported, e.g. ``"input"``,
            ``"context"``, ``"mean"``; ``None`` when the model has only one.

    Raises:
        EmbeddingsError: on construction, for an invalid field (empty family,
            ``dim < 1``, unknown similarity, non-JSON config, ...).
    """

    family: str
    dim: int
    normalized: bool
    similarity: Similarity
    mlflow_run_id: str | None = None
    source_hash: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    matrix: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.family, str) or not self.family:
            problems.append(f"family must be a non-empty string, got {self.family!r}")
        if isinstance(self.dim, bool) or not isinstance(self.dim, (int, np.integer)) or self.dim < 1:
            problems.append(f"dim must be an int >= 1, got {self.dim!r}")
        if not isinstance(self.normalized, (bool, np.bool_)):
            problems.append(f"normalized must be a bool, got {self.normalized!r}")
        if self.similarity not in _SIMILARITIES:
            problems.append(f"similarity must be one of {_SIMILARITIES}, got {self.similarity!r}")
        for name in ("mlflow_run_id", "source_hash", "matrix"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                problems.append(f"{name} must be a string or None, got {value!r}")
        if not isinstance(self.config, dict):
            problems.append(f"config must be a dict, got {type(self.config).__name__}")
        if problems:
            raise EmbeddingsError("invalid EmbeddingsMetadata: " + "; ".join(problems))
        try:
            config = json.loads(json.dumps(self.config, default=_json_default, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise EmbeddingsError(
                f"invalid EmbeddingsMetadata: config must be JSON-serialisable (no NaN/Inf): {e}"
            ) from e
        object.__setattr__(self, "dim", int(self.dim))
        object.__setattr__(self, "normalized", bool(self.normalized))
        object.__setattr__(self, "config", config)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict (a deep copy), plus ``format_version``."""
        d = dataclasses.asdict(self)
        d["format_version"] = FORMAT_VERSION
        return d

    def to_json(self) -> str:
        """Return the JSON stored in the Parquet footer under key ``replearn``."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbeddingsMetadata:
        """Build from :meth:`to_dict` output; unknown keys (from newer writers) are ignored.

        Raises:
            EmbeddingsError: a required field is missing or invalid, or
                ``format_version`` is newer than this code understands.
        """
        version = d.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise EmbeddingsError(
                f"embeddings metadata has format_version {version!r}; this replearn reads up to "
                f"{FORMAT_VERSION}: upgrade replearn"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ("family", "dim", "normalized", "similarity") if n not in d]
        if missing:
            raise EmbeddingsError(f"embeddings metadata lacks required fields {missing}")
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, text: str | bytes) -> EmbeddingsMetadata:
        """Parse :meth:`to_json` output. Raises EmbeddingsError for invalid JSON or fields."""
        try:
            d = json.loads(text)
        except ValueError as e:
            raise EmbeddingsError(f"embeddings metadata is not valid JSON: {e}") from e
        if not isinstance(d, dict):
            raise EmbeddingsError(f"embeddings metadata must be a JSON object, got {type(d).__name__}")
        return cls.from_dict(d)


def schema(dim: int) -> pa.Schema:
    """Return the pyarrow schema of an embeddings table with ``dim``-dimensional vectors.

    ``id int64 not null, key string not null, vector fixed_size_list<float32>[dim] not null,
    sense int16, modality string, label string``. No file metadata attached.

    Raises:
        EmbeddingsError: ``dim`` is not an int >= 1.
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise EmbeddingsError(f"dim must be an int >= 1, got {dim!r}")
    return pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("key", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), int(dim)), nullable=False),
            pa.field("sense", pa.int16(), nullable=True),
            pa.field("modality", pa.string(), nullable=True),
            pa.field("label", pa.string(), nullable=True),
        ]
    )


# --------------------------------------------------------------------------- validation helpers


def _rows(ids: np.ndarray, what: str = "rows", name: str = "ids") -> str:
    """Describe offending rows: ``"3 rows (ids 4, 9, 17)"``, ``"7 rows (ids 1, 2, 3, 4, 5, ...)"``.

    ``name`` says what the listed numbers are (``"ids"``, ``"positions"``).
    """
    ids = np.asarray(ids)
    shown = ", ".join(str(int(i)) for i in ids[:_SHOW_ROWS])
    more = ", ..." if len(ids) > _SHOW_ROWS else ""
    if len(ids) == 1:
        what = {"rows": "row", "ids repeated": "id repeated", "queries": "query"}.get(what, what)
    return f"{len(ids)} {what} ({name} {shown}{more})"


def _chunk_rows(d: int) -> int:
    """Rows per block so that a block of a ``(rows, d)`` float32 matrix is about 16 MiB."""
    return max(1, (1 << 22) // max(d, 1))


def _nonfinite_rows(x: np.ndarray) -> np.ndarray:
    """Row positions of ``x`` (N, D) holding NaN or ±Inf, in increasing order; blockwise, O(block) memory."""
    n, d = x.shape
    step = _chunk_rows(d)
    bad = [np.flatnonzero(~np.isfinite(x[s : s + step]).all(axis=1)) + s for s in range(0, n, step)]
    return np.concatenate(bad) if bad else np.empty(0, np.int64)


def _not_unit_rows(x: np.ndarray, tol: float = _NORM_TOL) -> np.ndarray:
    """Row positions of finite ``x`` (N, D) whose L2 norm differs from 1 by more than ``tol``."""
    n, d = x.shape
    step = _chunk_rows(d)
    bad = []
    for s in range(0, n, step):
        blk = x[s : s + step]
        norms = np.sqrt(np.einsum("ij,ij->i", blk, blk, dtype=np.float64))
        bad.append(np.flatnonzero(np.abs(norms - 1.0) > tol) + s)
    return np.concatenate(bad) if bad else np.empty(0, np.int64)


def _as_ids(ids: Any, n: int) -> np.ndarray:
    """Validate ``ids`` and return them as a C-contiguous int64 array of length ``n``."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) != n:
        raise EmbeddingsError(f"ids must be 1-D with one id per vector (N={n}); got shape {ids.shape}")
    if ids.dtype.kind not in "iu":
        raise EmbeddingsError(f"ids must be integers, got dtype {ids.dtype}")
    if ids.dtype.kind == "u" and n and ids.max() > np.iinfo(np.int64).max:
        raise EmbeddingsError(f"ids must fit in int64; the largest is {ids.max()}")
    return np.ascontiguousarray(ids, dtype=np.int64)


def _as_vectors(vectors: Any, dim: int, ids: np.ndarray | None) -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 ``(N, dim)`` matrix (no copy if it already is one).

    ``ids`` (or ``None`` for row positions) only names rows in the error for ragged or null input.
    Accepts a numpy array, a list of rows, or an Arrow (chunked) fixed-size-list / list array.
    """
    def name(rows: np.ndarray) -> np.ndarray:
        return rows if ids is None or len(ids) != n_rows else ids[rows]

    if isinstance(vectors, (pa.Array, pa.ChunkedArray)):
        n_rows = len(vectors)
        if vectors.null_count:
            nulls = np.flatnonzero(vectors.is_null().to_numpy(zero_copy_only=False))
            raise EmbeddingsError(f"null vectors (missing embeddings) in {_rows(name(nulls))}: drop those rows "
                                  "or fill them before export")
        if isinstance(vectors, pa.ChunkedArray):
            vectors = vectors.combine_chunks()
        if not (pa.types.is_fixed_size_list(vectors.type) or pa.types.is_list(vectors.type)
                or pa.types.is_large_list(vectors.type)):
            raise EmbeddingsError(f"an Arrow vectors column must be a list of floats, got {vectors.type}")
        if pa.types.is_fixed_size_list(vectors.type):
            flat = vectors.flatten().to_numpy(zero_copy_only=False)
            vectors = flat.reshape(n_rows, vectors.type.list_size)
        else:
            vectors = [np.asarray(v) for v in vectors.to_numpy(zero_copy_only=False)]
    if not isinstance(vectors, np.ndarray) or vectors.dtype == object:
        n_rows = len(vectors)
        nulls = np.array([i for i, v in enumerate(vectors) if v is None], dtype=np.int64)
        if len(nulls):
            raise EmbeddingsError(f"null vectors (missing embeddings) in {_rows(name(nulls))}: drop those rows "
                                  "or fill them before export")
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                vectors = np.asarray(vectors, dtype=np.float32)
        except (ValueError, TypeError) as e:
            # ragged rows or non-numbers: find the rows whose length is not dim
            try:
                lengths = np.array([len(v) for v in vectors])
            except TypeError:
                raise EmbeddingsError(f"vectors must be an (N, D) array of numbers: {e}") from e
            wrong = np.flatnonzero(lengths != dim)
            names = name(wrong)
            if len(wrong):
                raise EmbeddingsError(
                    f"vectors must all have dimension metadata.dim={dim}; wrong dimension in {_rows(names)}"
                ) from e
            raise EmbeddingsError(f"vectors must be an (N, D) array of numbers: {e}") from e
    if vectors.ndim != 2:
        raise EmbeddingsError(f"vectors must be a 2-D (N, D) array, got shape {vectors.shape}")
    if vectors.dtype.kind not in "fiu":
        raise EmbeddingsError(f"vectors must be real numbers, got dtype {vectors.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32 range -> Inf, reported below
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _string_column(values: Any, n: int, name: str, ids: np.ndarray, *, nullable: bool) -> pa.Array:
    """Convert ``values`` (sequence of str / None, numpy or Arrow array) to a pyarrow string array of length n."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if len(values) != n:
        raise EmbeddingsError(f"{name} must have one entry per vector (N={n}), got {len(values)}")
    try:
        if isinstance(values, pa.Array):
            if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
                raise TypeError(f"Arrow type {values.type}")
            arr = values.cast(pa.string())
        else:
            arr = pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError):
        bad = np.array(
            [i for i, v in enumerate(values) if not (isinstance(v, str) or (nullable and v is None))], dtype=np.int64
        )
        raise EmbeddingsError(
            f"{name} must be strings{' or None' if nullable else ''}; other values in {_rows(ids[bad])}"
        ) from None
    if not nullable and arr.null_count:
        bad = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
        raise EmbeddingsError(f"{name} must not be null; null in {_rows(ids[bad])}")
    return arr


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
    n = table.num_rows
    sharded = shard_rows is not None or path.suffix != ".parquet"
    if shard_rows is not None and (isinstance(shard_rows, bool) or not isinstance(shard_rows, int) or shard_rows < 1):
        raise EmbeddingsError(f"shard_rows must be an int >= 1, got {shard_rows!r}")

    def write(part: pa.Table, where: Path) -> None:
        write_parquet(part, where, row_group_size=row_group_size, compression=compression)

    with atomic_path(path) as tmp:
        if not sharded:
            write(table, tmp)
        else:
            tmp.mkdir()
            step = shard_rows or DEFAULT_SHARD_ROWS
            starts = range(0, n, step)
            jobs = [(table.slice(s, step), tmp / SHARD_NAME.format(i)) for i, s in enumerate(starts)]
            workers = max(1, min(len(jobs), threads or min(4, os.cpu_count() or 1)))
            if workers == 1:
                for part, where in jobs:
                    write(part, where)
            else:  # pyarrow releases the GIL while encoding: shards encode in parallel
                with ThreadPoolExecutor(workers) as ex:
                    list(ex.map(lambda job: write(*job), jobs))
    return path


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


class OptionalColumns(TypedDict, total=False):
    """The optional columns of an embeddings table, as keyword arguments of :func:`write_embeddings` and
    :func:`build_table` (``N`` rows each; an omitted or None column gets defaults / nulls)."""

    ids: Sequence[int] | np.ndarray | None
    """``N`` distinct integers >= 0 (the FAISS ids); default ``0..N-1``."""
    sense: Sequence[int | None] | np.ndarray | None
    """``N`` ints in [0, 32767] or None (multi-sense models)."""
    modality: Sequence[str | None] | None
    """``N`` values ``"text"`` / ``"image"`` / None."""
    label: Sequence[str | None] | None
    """``N`` strings or None."""


def build_table(
    keys: Sequence[str],
    vectors: np.ndarray,
    metadata: EmbeddingsMetadata,
    *,
    where: str = "invalid embeddings",
    **columns: Unpack[OptionalColumns],
) -> pa.Table:
    """Validate the columns of an embeddings table and build it as Arrow, footer metadata included.

    What :func:`write_embeddings` writes, checked the same way (arguments as
    there); vectors cross into Arrow without a copy when they are float32
    C-contiguous. ``ids`` are checked for duplicates and negatives only here,
    within these rows.

    Returns:
        ``pyarrow.Table`` with :func:`schema` ``(metadata.dim)`` and ``metadata`` in its schema metadata.

    Raises:
        EmbeddingsError: as :func:`write_embeddings`, the message starting with ``where``.
        TypeError: a keyword that is not one of :class:`OptionalColumns`.
    """
    unknown = sorted(set(columns) - set(OptionalColumns.__annotations__))
    if unknown:
        raise TypeError(f"unexpected keyword arguments {unknown}; the optional columns are "
                        f"{', '.join(OptionalColumns.__annotations__)}")
    ids, sense = columns.get("ids"), columns.get("sense")
    modality, label = columns.get("modality"), columns.get("label")
    dim = metadata.dim
    try:
        n, ids_np, x = _checked_shape(keys, vectors, dim, ids)
        # content problems: collect them all, so one run reports everything wrong
        problems: list[str] = []
        keys_pa = _keys_column(keys, n, ids_np, problems)
        problems += _vector_problems(x, ids_np, metadata.normalized)
        if ids is not None:
            problems += _id_problems(ids_np)
        sense_pa = _sense_column(sense, n, ids_np, problems)
        optional = _optional_columns(modality, label, n, ids_np, problems)
        if problems:
            raise EmbeddingsError("; ".join(problems))
    except EmbeddingsError as e:
        raise EmbeddingsError(f"{where}: {e}") from None
    # zero-copy: the flat float32 buffer becomes the child array of the fixed-size lists
    flat = pa.FloatArray.from_buffers(pa.float32(), n * dim, [None, pa.py_buffer(x.reshape(-1))])
    vector_pa = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.Table.from_arrays(
        [pa.array(ids_np), keys_pa, vector_pa, sense_pa, optional["modality"], optional["label"]],
        schema=schema(dim).with_metadata({METADATA_KEY: metadata.to_json().encode()}),
    )


def _checked_shape(keys: Sequence[str], vectors: np.ndarray, dim: int, ids: Any) -> tuple[int, np.ndarray, np.ndarray]:
    """``(N, ids (N,) int64, vectors (N, dim) float32 C-contiguous)``; EmbeddingsError for a wrong shape,
    no rows, a dimension other than ``dim`` or ``len(keys) != N`` (raised at once: nothing else can be checked)."""
    try:
        n = len(vectors)
    except TypeError:
        raise EmbeddingsError(f"vectors must be a 2-D (N, D) array, got {type(vectors).__name__}") from None
    ids_np = _as_ids(ids, n)
    x = _as_vectors(vectors, dim, ids_np)
    if n == 0:
        raise EmbeddingsError("no vectors: an embeddings table needs at least one row")
    if x.shape[1] != dim:
        raise EmbeddingsError(
            f"vectors have dimension {x.shape[1]} but metadata.dim={dim}: wrong dimension in {_rows(ids_np)}"
        )
    if len(keys) != n:
        raise EmbeddingsError(f"keys must have one entry per vector (N={n}), got {len(keys)}")
    return n, ids_np, x


def _keys_column(keys: Sequence[str], n: int, ids_np: np.ndarray, problems: list[str]) -> pa.Array | None:
    """The ``key`` column as Arrow strings, or None with the problem appended to ``problems``."""
    try:
        return _string_column(keys, n, "keys", ids_np, nullable=False)
    except EmbeddingsError as e:
        problems.append(str(e))
        return None


def _vector_problems(x: np.ndarray, ids_np: np.ndarray, normalized: bool) -> list[str]:
    """NaN/Inf rows of ``x`` (N, D); else, when ``normalized``, rows whose L2 norm is not 1 (to ``_NORM_TOL``)."""
    bad = _nonfinite_rows(x)
    if len(bad):
        return [f"NaN or Inf values (after casting to float32) in {_rows(ids_np[bad])}"]
    if normalized:
        bad = _not_unit_rows(x)
        if len(bad):
            return [
                f"metadata.normalized is True but the L2 norm differs from 1 by more than {_NORM_TOL} "
                f"in {_rows(ids_np[bad])}: normalise the vectors or set normalized=False"
            ]
    return []


def _id_problems(ids_np: np.ndarray) -> list[str]:
    """Negative and duplicate ids of ``ids_np`` (N,), as messages."""
    problems = []
    neg = np.flatnonzero(ids_np < 0)
    if len(neg):
        problems.append(f"ids must be >= 0 (FAISS uses -1 for 'no result'); negative in {_rows(ids_np[neg])}")
    srt = np.sort(ids_np)
    dup = np.unique(srt[1:][srt[1:] == srt[:-1]])
    if len(dup):
        problems.append(f"duplicate ids: {_rows(dup, 'ids repeated')}")
    return problems


def _sense_column(sense: Any, n: int, ids_np: np.ndarray, problems: list[str]) -> pa.Array:
    """The ``sense`` int16 column (all null when ``sense`` is None); problems appended to ``problems``.

    Raises:
        EmbeddingsError: ``len(sense) != n``.
    """
    sense_pa = pa.nulls(n, pa.int16())
    if sense is None:
        return sense_pa
    if len(sense) != n:
        raise EmbeddingsError(f"sense must have one entry per vector (N={n}), got {len(sense)}")
    try:
        sense_pa = pa.array(sense, type=pa.int16())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as e:
        problems.append(f"sense must be ints in [0, 32767] or None: {e}")
        return pa.nulls(n, pa.int16())
    s = sense_pa.fill_null(0).to_numpy(zero_copy_only=False)
    neg = np.flatnonzero(s < 0)
    if len(neg):
        problems.append(f"sense must be >= 0; negative in {_rows(ids_np[neg])}")
    return sense_pa


def _optional_columns(modality: Any, label: Any, n: int, ids_np: np.ndarray,
                      problems: list[str]) -> dict[str, pa.Array]:
    """``{"modality", "label"}`` Arrow string columns (all null when None); problems appended to ``problems``."""
    optional = {}
    for name, values in (("modality", modality), ("label", label)):
        if values is None:
            optional[name] = pa.nulls(n, pa.string())
            continue
        try:
            optional[name] = _string_column(values, n, name, ids_np, nullable=True)
        except EmbeddingsError as e:
            problems.append(str(e))
    if "modality" in optional and modality is not None:
        m = optional["modality"]
        ok = pc.is_in(m, value_set=pa.array(MODALITIES)).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(~ok & ~m.is_null().to_numpy(zero_copy_only=False))
        if len(bad):
            problems.append(f"modality must be one of {MODALITIES} or None; other values in {_rows(ids_np[bad])}")
    return optional


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
    tables = [pq.read_table(p, columns=cols) for p in parts]
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


def _sha256_file(path: Path, bufsize: int = 1 << 20) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.digest()


def content_hash(paths: Path | str | Iterable[Path | str]) -> str:
    """Return a SHA-256 hex digest (64 chars) of the bytes of one or more files, for provenance.

    Files are read in 1 MiB blocks (constant memory). For a single regular
    file the result equals ``sha256sum FILE``. Otherwise (several paths, or a
    directory, which stands for every file below it) the files are sorted by
    path and the result is the SHA-256 of their concatenated 32-byte SHA-256
    digests: it depends on the contents and their order by path, not on the
    directory the data lives in.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no files (empty list or empty directory).
    """
    single = isinstance(paths, (str, Path)) and Path(paths).is_file()
    files = _expand(paths)
    if not files:
        raise ValueError(f"content_hash: no files in {paths!r}")
    if single:
        return _sha256_file(files[0]).hex()
    files = sorted(files, key=lambda f: str(f))
    h = hashlib.sha256()
    for f in files:
        h.update(_sha256_file(f))
    return h.hexdigest()
