"""Tokenization in partitions: a corpus cut into pieces that are tokenized apart (in parallel) and gathered.

Scale-out for stage 1 (docs/design.md, "Scale-out path"). :func:`plan_partitions`
cuts a corpus into :class:`Partition` s: one per input file, and a large
uncompressed text file into byte ranges that start and end at line starts
(a ``.gz`` / ``.bz2`` stream cannot be entered in the middle, a Parquet file
is one partition). Each partition is tokenized on its own with
:func:`tokenize_partition` (on any machine that sees the files: a Prefect
task per partition, run by a thread pool or a Dask / Ray cluster), then
:func:`gather_partitions` moves their shards, renumbered in partition order,
into one token folder and adds up the statistics.

The result is the one :func:`~replearn.lib.text.tokenize.tokenize_corpus`
writes: the same rows (documents) in the same order, the same totals
(files, documents, tokens, invalid UTF-8, BOMs). Tokenization is line-local
(a document is a line; decoding, normalization, lower-casing and matching
never cross a ``"\\n"``, and ``"\\n"`` never occurs inside a UTF-8
multi-byte sequence), so cutting at line starts changes nothing. Only the
shard boundaries may differ: each partition starts a new shard, so a corpus
of several partitions has a few more, shorter shards (still at most
``shard_rows`` rows each); a corpus of one partition gets exactly the
shards of ``tokenize_corpus``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from replearn.lib.errors import CorpusError
from replearn.lib.store.atomic import atomic_path
from replearn.lib.text.config import TokenizerConfig, TokenizeStats
from replearn.lib.text.corpus_files import file_kind, list_corpus_files
from replearn.lib.text.token_shards import check_out_dir, check_shard_rows
from replearn.lib.text.tokenize import empty_corpus_error, tokenize_pieces

__all__ = ["PARTITION_BYTES", "Partition", "gather_partitions", "plan_partitions", "select_files",
           "tokenize_partition"]

#: Uncompressed text files larger than this are cut into byte ranges of about this size (64 MiB: a second or two
#: of tokenization each, far above the per-task overhead of Prefect and Dask). Corpora whose files are all smaller
#: get exactly the shards of ``tokenize_corpus``.
PARTITION_BYTES = 64 * 1024 * 1024
#: Bytes read at a time while looking for the line break after a nominal cut.
_SCAN_BYTES = 64 * 1024


@dataclass(frozen=True)
class Partition:
    """A piece of a corpus that is tokenized on its own.

    Attributes:
        path: the input file (a text, ``.gz``, ``.bz2`` or Parquet file).
        start: first byte, a line start (0 for a whole file).
        end: one past the last byte, a line start or the file size; ``None``
            for the whole file (always so for compressed and Parquet files).
    """

    path: str
    start: int = 0
    end: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict (what a Prefect task takes as a parameter)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Partition:
        return cls(str(d["path"]), int(d.get("start", 0)), None if d.get("end") is None else int(d["end"]))


def _next_line_start(f, pos: int, size: int) -> int:
    """The first line start at or after ``pos``: one past the first ``b"\\n"`` at or after ``pos - 1``; else ``size``."""
    f.seek(pos - 1)
    where = pos - 1
    while where < size:
        buf = f.read(_SCAN_BYTES)
        if not buf:
            break
        nl = buf.find(b"\n")
        if nl >= 0:
            return where + nl + 1
        where += len(buf)
    return size


def _byte_ranges(path: Path, size: int, partition_bytes: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` covering ``[0, size)`` in pieces of about ``partition_bytes``, cut at line starts."""
    cuts = [0]
    with open(path, "rb") as f:
        while cuts[-1] + partition_bytes < size:
            cut = _next_line_start(f, cuts[-1] + partition_bytes, size)
            if cut >= size:
                break
            cuts.append(cut)
    cuts.append(size)
    return list(zip(cuts[:-1], cuts[1:]))


def select_files(source: Path, files: Sequence[str] | None = None) -> list[Path]:
    """The files of the corpus ``source`` in read order (:func:`list_corpus_files`), or only those of ``files``.

    Raises:
        CorpusError: ``source`` does not exist or holds no files.
        ValueError: a file of ``files`` is not one of ``source``'s.
    """
    all_files = list_corpus_files(source)
    if files is None:
        return all_files
    wanted = {str(Path(f)) for f in files}
    if unknown := wanted - {str(p) for p in all_files}:
        raise ValueError(f"not files of the corpus {source}: {sorted(unknown)[:3]}")
    return [p for p in all_files if str(p) in wanted]


def plan_partitions(source: Path | str, partition_bytes: int = PARTITION_BYTES,
                    files: Sequence[str] | None = None) -> list[Partition]:
    """Cut the corpus ``source`` into partitions, in read order.

    One partition per input file (the files of a folder in sorted path order,
    hidden entries skipped, as ``tokenize_corpus`` reads them); an
    uncompressed text file larger than ``partition_bytes`` becomes byte ranges
    of about ``partition_bytes``, each cut just after a line break (a line
    longer than that stays whole in one range). Compressed (``.gz``, ``.bz2``)
    and Parquet files are one partition each. Reads only a few KB around each cut.

    Args:
        source: a text file (plain, ``.gz``, ``.bz2``), a ``.parquet`` file, or a folder of them.
        partition_bytes: target size of a byte range, >= 1.
        files: only these files of ``source`` (the new files of a grown folder), in ``source``'s read order;
            None: all of them.

    Returns:
        The partitions; their ranges cover every file exactly once, without overlap.

    Raises:
        CorpusError: ``source`` does not exist, or a folder holds no (non-hidden) files.
        ValueError: ``partition_bytes < 1``; a file of ``files`` is not one of ``source``'s.
    """
    if partition_bytes < 1:
        raise ValueError(f"partition_bytes must be >= 1, got {partition_bytes}")
    parts: list[Partition] = []
    for path in select_files(Path(source), files):
        size = path.stat().st_size
        if file_kind(path) != "text" or size <= partition_bytes:
            parts.append(Partition(str(path)))
        else:
            parts.extend(Partition(str(path), a, b) for a, b in _byte_ranges(path, size, partition_bytes))
    return parts


def tokenize_partition(partition: Partition, out_dir: Path | str, config: TokenizerConfig = TokenizerConfig(),
                       shard_rows: int = 200_000, progress: bool = False) -> TokenizeStats:
    """Tokenize one partition into shards ``out_dir/part-00000.parquet, ...`` (as ``tokenize_corpus`` writes them).

    The folder is written under a temporary sibling name and renamed onto
    ``out_dir`` on success. A partition without tokens is not an error (the
    corpus as a whole may have some): it leaves an empty folder.

    Returns:
        :class:`TokenizeStats` of this partition; ``files`` is 1 when it starts a file, else 0.

    Raises:
        CorpusError: the file cannot be read or decompressed; a Parquet file
            lacks ``config.text_column`` or it is not a string column;
            ``out_dir`` exists and is not a folder.
        ValueError: ``shard_rows < 1``.
    """
    out_dir = Path(out_dir)
    check_shard_rows(shard_rows)
    check_out_dir(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        stats = tokenize_pieces([(Path(partition.path), partition.start, partition.end)], tmp, config, shard_rows,
                                progress)
    return stats


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst``; copy it where the file system refuses links (EPERM, EXDEV, EMLINK...)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def gather_partitions(source: Path | str, parts: Sequence[tuple[Path | str, TokenizeStats]], out_dir: Path | str,
                      config: TokenizerConfig = TokenizerConfig(), keep_parts: bool = False) -> TokenizeStats:
    """Move (or link) the shards of tokenized partitions, in order, into one token folder ``out_dir``; add up their
    statistics.

    Shards are renamed (never copied) to ``part-00000.parquet, part-00001.parquet, ...``
    in partition order inside a temporary sibling of ``out_dir`` that is then
    renamed onto ``out_dir`` (replacing a previous one); the partition folders
    are removed. With ``keep_parts`` the shards are hard-linked instead (copied
    where the file system has no hard links) and the partition folders stay:
    cached partitions that a later run of a grown corpus reuses. On failure
    ``out_dir`` is untouched. Every folder must be on the file system of ``out_dir``.

    Args:
        source: the corpus (for the error message only).
        parts: ``(partition folder, its TokenizeStats)`` in partition order, as
            :func:`tokenize_partition` returned them.
        out_dir: the token folder to create.
        config: the tokenizer settings used (for the error message only).

    Returns:
        :class:`TokenizeStats` of the whole corpus, equal to what
        ``tokenize_corpus`` reports (``shards`` are the new names).

    Raises:
        CorpusError: no partition yielded a token (the empty-corpus error of
            ``tokenize_corpus``); ``out_dir`` exists and is not a folder; a
            partition folder lacks a shard its statistics name.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    totals = dict(files=0, documents=0, tokens=0, invalid_utf8=0, boms_removed=0, null_documents=0, empty_documents=0)
    for _, st in parts:
        for k in totals:
            totals[k] += getattr(st, k)
    if totals["tokens"] == 0:
        raise empty_corpus_error(Path(source), totals["files"], config)
    names: list[str] = []
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for folder, st in parts:
            for shard in st.shards:
                name = f"part-{len(names):05d}.parquet"
                src = Path(folder) / shard
                if not src.is_file():
                    raise CorpusError(f"partition shard {src} is missing: was the partition folder moved or deleted "
                                      "while the corpus was being tokenized?")
                _link_or_copy(src, tmp / name) if keep_parts else os.replace(src, tmp / name)
                names.append(name)
    if not keep_parts:
        for folder, _ in parts:
            shutil.rmtree(folder, ignore_errors=True)
    return TokenizeStats(shards=tuple(names), **totals)
