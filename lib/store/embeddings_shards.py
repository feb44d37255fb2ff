"""An embeddings table written by several workers at once: one shard per row range, then one atomic folder.

Scale-out for stage 5 (docs/design.md, "Scale-out path"). Each worker validates
and writes its rows with :func:`write_embeddings_shard` into a shared staging
folder (``part-00000.parquet``, ``part-00001.parquet``, ...: the folder layout
of :func:`~replearn.lib.store.embeddings_table.write_embeddings`, the same
checks, the same Parquet options); :func:`publish_embeddings_shards` then
checks the shards belong together and renames the staging folder onto the
final path, so a reader sees the old table or the whole new one, never a mix.
Read back with ``read_embeddings`` / ``read_vectors``, ``pq.read_table(folder)``
or ``pl.read_parquet(f"{folder}/*.parquet")``, the table equals the one
``write_embeddings`` writes from the same rows in one process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.atomic import atomic_path
from replearn.lib.store.embeddings_columns import _rows, build_table, repeated_ids
from replearn.lib.store.embeddings_schema import METADATA_KEY, EmbeddingsMetadata
from replearn.lib.store.embeddings_table import SHARD_NAME, _check_options, write_parquet

__all__ = ["shard_ranges", "write_embeddings_shard", "publish_embeddings_shards"]


def shard_ranges(n: int, shards: int) -> list[tuple[int, int]]:
    """Cut rows ``0..n`` into at most ``shards`` contiguous ranges ``(start, stop)`` of near-equal size, in order.

    Fewer ranges when ``n < shards`` (no range is empty), one empty range ``(0, 0)`` when ``n == 0``.

    Raises:
        ValueError: ``n < 0`` or ``shards < 1``.
    """
    if n < 0 or shards < 1:
        raise ValueError(f"need n >= 0 and shards >= 1, got n={n}, shards={shards}")
    k = max(1, min(shards, n))
    bounds = [n * i // k for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def write_embeddings_shard(
    folder: Path | str,
    index: int,
    keys: Sequence[str],
    vectors: np.ndarray,
    metadata: EmbeddingsMetadata,
    *,
    ids: Sequence[int] | np.ndarray,
    sense: Sequence[int | None] | np.ndarray | None = None,
    modality: Sequence[str | None] | None = None,
    label: Sequence[str | None] | None = None,
    row_group_size: int = 65536,
    compression: str | dict[str, str] | None = None,
) -> Path:
    """Validate one row range and write it as shard ``index`` of a staging folder; return the shard's path.

    Arguments as in ``write_embeddings`` for these rows (``vectors`` is
    ``(n, D)``), except ``ids``: required, the rows' ids in the whole table
    (e.g. ``np.arange(start, stop)``), since the shards are written apart.
    The file ``folder/part-{index:05d}.parquet`` is written to a temporary
    name and renamed; ``folder`` is created if needed.

    Raises:
        EmbeddingsError: as ``write_embeddings`` for these rows (no rows, NaN,
            wrong dimension, duplicate ids within the shard, ...); ``ids`` is
            None; ``index < 0``.
        TypeError: ``metadata`` is not an :class:`EmbeddingsMetadata`.
    """
    folder = Path(folder)
    _check_options(metadata, row_group_size)
    if ids is None:
        raise EmbeddingsError("write_embeddings_shard needs ids: the rows' ids in the whole table")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise EmbeddingsError(f"shard index must be an int >= 0, got {index!r}")
    path = folder / SHARD_NAME.format(int(index))
    table = build_table(keys, vectors, metadata, ids=ids, sense=sense, modality=modality, label=label,
                        where=f"cannot write embeddings shard {path}")
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write_parquet(table, tmp, row_group_size=row_group_size, compression=compression)
    return path


def publish_embeddings_shards(folder: Path | str, path: Path | str, expected: int | None = None) -> Path:
    """Check the shards in the staging ``folder`` and rename it onto ``path`` atomically; return ``Path(path)``.

    Checks, reading only footers and the ``id`` column: the shards are
    ``part-00000.parquet .. part-{k-1}.parquet`` with none missing (``k ==
    expected`` when given), they carry the same footer metadata (one export),
    and their ids are distinct across shards. An existing ``path`` (file or
    folder) is replaced as ``write_embeddings`` replaces it. On failure
    nothing is renamed and ``folder`` is left for the caller to remove.

    Raises:
        EmbeddingsError: no shards, a gap in the numbering, a shard count other
            than ``expected``, shards with different metadata, or an id in two shards.
        FileNotFoundError: ``folder`` does not exist.
    """
    folder, path = Path(folder), Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"staging folder {folder} does not exist")
    shards = sorted(p for p in folder.glob("*.parquet") if not p.name.startswith((".", "_")))
    names = [p.name for p in shards]
    want = [SHARD_NAME.format(i) for i in range(len(shards) if expected is None else expected)]
    if not shards or names != want:
        raise EmbeddingsError(f"cannot publish {path}: {folder} holds {len(names)} shards (first {names[:5]}), "
                              f"expected {len(want)} (first {want[:5]}), numbered from 0 without gaps")
    raw = [pq.read_schema(p).metadata.get(METADATA_KEY) for p in shards]
    odd = [p.name for p, r in zip(shards, raw) if r != raw[0]]
    if odd:
        raise EmbeddingsError(f"cannot publish {path}: shards {odd[:5]} carry metadata different from {names[0]}")
    ids = np.concatenate([pq.read_table(p, columns=["id"]).column("id").to_numpy() for p in shards])
    dup = repeated_ids(ids)
    if len(dup):
        raise EmbeddingsError(f"cannot publish {path}: ids in more than one shard: {_rows(dup, 'ids repeated')}")
    with atomic_path(path) as tmp:
        os.replace(folder, tmp)
    return path
