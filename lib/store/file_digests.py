"""File digests remembered between runs: a growing corpus folder is hashed by reading only its new or changed files.

A scheduled retrain reads a corpus folder that gains files week by week.
Hashing every byte each time costs as much as reading the corpus; instead
:func:`file_digest` keeps each file's SHA-256 in a small JSON memo
(``<memo_dir>/<sha256 of the resolved path>.json``) with the file's size,
modification time (ns), inode and device, and answers from it while those are
unchanged: git's index and rsync's quick check work the same way.

A file modified within :data:`RACY_NS` of the moment it was hashed could be
changed again within the file system's timestamp granularity without its
modification time moving ("racily clean" in git's terms); such a memo is
never trusted, so the file is hashed again until it has been still for
that long. The memo is a cache: deleting it costs one read of each file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from replearn.lib.store.atomic import atomic_write_json

__all__ = ["RACY_NS", "file_digest"]

#: A memo is trusted only if the file was last modified at least this long (ns) before it was hashed.
RACY_NS = 2_000_000_000


def _sha256(path: Path, bufsize: int = 1 << 20) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.digest()


def _stat_key(st: os.stat_result) -> dict:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "dev": st.st_dev}


def file_digest(path: Path | str, memo_dir: Path | str | None = None) -> bytes:
    """The SHA-256 (32 bytes) of the file ``path``'s bytes, from the memo in ``memo_dir`` when it still holds.

    Args:
        path: a regular file.
        memo_dir: where the memos live (created when missing); None reads the file every time.

    Returns:
        ``hashlib.sha256(path.read_bytes()).digest()``, read in 1 MiB blocks (constant memory).

    Raises:
        FileNotFoundError / OSError: the file cannot be read. A memo that cannot be read or written is ignored.
    """
    path = Path(path)
    if memo_dir is None:
        return _sha256(path)
    memo = Path(memo_dir) / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32] + ".json")
    key = _stat_key(path.stat())
    try:
        saved = json.loads(memo.read_text())
        if saved["stat"] == key and saved["hashed_ns"] - key["mtime_ns"] >= RACY_NS:
            return bytes.fromhex(saved["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    hashed_ns = time.time_ns()
    digest = _sha256(path)
    if _stat_key(path.stat()) == key:  # unchanged while it was read: the digest stands for these bytes
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(memo, {"path": str(path.resolve()), "stat": key, "hashed_ns": hashed_ns,
                                     "sha256": digest.hex()}, indent=None)
        except OSError:
            pass
    return digest
