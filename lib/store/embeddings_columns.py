"""Validate the columns of an embeddings table and build it as Arrow (:func:`build_table`).

Every check names the offending rows by id (the first five and the count), and
the content checks are collected so that one run reports everything wrong.
Vectors cross into Arrow without a copy when they are float32 C-contiguous:
the ``(N, D)`` buffer *is* the child array of the ``FixedSizeListArray``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict, Unpack

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.embeddings_schema import METADATA_KEY, MODALITIES, EmbeddingsMetadata, schema

__all__ = ["OptionalColumns", "build_table", "repeated_ids"]

_NORM_TOL = 1e-3
"""|‖v‖₂ - 1| allowed for vectors declared ``normalized``."""

_SHOW_ROWS = 5
"""How many offending row ids an error message lists before "... (N rows)"."""


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


def repeated_ids(ids: np.ndarray) -> np.ndarray:
    """The distinct values that occur more than once in ``ids`` (1-D), sorted ascending."""
    srt = np.sort(ids)
    return np.unique(srt[1:][srt[1:] == srt[:-1]])


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
    dup = repeated_ids(ids_np)
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
