"""Atomic outputs: a reader sees the old file, or the new one, never half of one.

Everything is written to a hidden temporary sibling (``.<name>.tmp-<uuid>``, in
the same directory so the final ``rename`` stays on one filesystem and is
atomic on POSIX) and renamed onto the final name only when writing finished
without an exception.

Files are replaced with one ``os.replace`` (atomic). Directories cannot be
replaced atomically on POSIX, so an existing directory is renamed aside, the new
one renamed in, and the old one deleted: a reader sees the old directory, then
briefly no directory, then the new one, but never a mix of the two.

Example::

    with atomic_path(Path("out/embeddings.parquet")) as tmp:
        pq.write_table(table, tmp)          # a crash here leaves no file behind
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_npz",
    "atomic_write_text",
    "read_npz",
    "temp_sibling",
]


def temp_sibling(final: Path, tag: str = "tmp") -> Path:
    """Return a fresh hidden sibling of ``final``: ``<dir>/.<name>.<tag>-<uuid hex>``.

    The path does not exist yet (a random 128-bit uuid makes collisions
    practically impossible). Used for temporaries (``tag="tmp"``) and for an old
    directory moved aside (``tag="old"``).
    """
    final = Path(final)
    return final.parent / f".{final.name}.{tag}-{uuid.uuid4().hex}"


def _remove(path: Path) -> None:
    """Delete a file, link or directory tree if it exists; never raises for a missing path."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _fsync_file(path: Path) -> None:
    """Flush a regular file's data to disk so the rename never exposes an empty file after a crash."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _commit(tmp: Path, final: Path) -> None:
    """Move the finished ``tmp`` (file or directory) onto ``final``, replacing what is there."""
    if (tmp.is_dir() and not tmp.is_symlink()) or (final.is_dir() and not final.is_symlink()):
        # os.replace cannot put a directory over an existing one (or a file over a
        # directory): move the old one aside first, restore it if the swap fails.
        old = None
        if final.exists() or final.is_symlink():
            old = temp_sibling(final, "old")
            os.replace(final, old)
        try:
            os.replace(tmp, final)
        except BaseException:
            if old is not None:
                os.replace(old, final)
            raise
        if old is not None:
            _remove(old)
    else:
        _fsync_file(tmp)
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(final: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling path to write ``final`` into; rename it onto ``final`` on success.

    Args:
        final: the path the output must end up at. Its parent directory is
            created if missing. An existing file or directory there is replaced.

    Yields:
        ``Path`` ``<final.parent>/.<final.name>.tmp-<uuid>`` that does not exist
        yet. The body creates either a file or a directory there.

    On normal exit the temporary is renamed onto ``final`` (see the module
    docstring for directories). If the body raises (any ``BaseException``,
    KeyboardInterrupt included), the temporary is deleted and the exception
    re-raised; ``final`` is untouched.

    Raises:
        FileNotFoundError: the body exited normally without creating the
            temporary path (nothing would be published).
        OSError: the rename failed (the temporary is deleted); an ``OSError`` of the body
            that names no path (a write into an open file) is raised again naming ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(final)
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise FileNotFoundError(
                f"atomic_path({final}): the block finished without writing the temporary path {tmp}; "
                "write the output to the yielded path, not to the final one"
            )
        _commit(tmp, final)
    except OSError as e:
        _remove(tmp)
        if e.filename is None and e.errno is not None:  # a write into an open file names no path: name the output
            raise type(e)(e.errno, e.strerror, str(final)) from e
        raise
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary sibling + rename); return ``Path(path)``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)  # fsync'd by atomic_path before the rename
    return path


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically, encoded with ``encoding`` (UTF-8 by default); return the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def _json_default(obj: Any) -> Any:
    """Encode the non-JSON types that turn up in configs and metrics: numpy scalars/arrays, paths, sets."""
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    # numpy without importing it: scalars have .item(), arrays have .tolist()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def atomic_write_json(path: Path | str, obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` as UTF-8 JSON (``indent=2``, trailing newline) to ``path`` atomically; return the path.

    numpy scalars and arrays, ``Path`` and sets are converted (``.tolist()``,
    ``str``, sorted list). NaN/Infinity are refused (they are not JSON).

    Raises:
        TypeError: ``obj`` holds something JSON cannot encode (nothing is written).
        ValueError: ``obj`` holds NaN or Infinity (nothing is written).
    """
    text = json.dumps(obj, indent=indent, default=_json_default, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def atomic_write_npz(path: Path | str, **arrays: Any) -> Path:
    """Write ``arrays`` (name -> numpy array) as an uncompressed ``.npz`` to ``path`` atomically; return the path."""
    import numpy as np

    final = Path(path)
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return final


def read_npz(path: Path | str) -> dict[str, Any]:
    """Every array of the ``.npz`` at ``path`` as a dict (read into memory; pickled objects refused)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
