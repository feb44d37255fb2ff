"""Exclusive use of a working folder (training checkpoints) by one process at a time, across processes.

A checkpoint folder is keyed on the corpus and the training settings, so that
a killed run, started again with the same inputs, finds its checkpoints and
resumes. Two identical runs started at the same moment would share it, and
the first to finish would delete it under the other. :func:`locked_folder`
prevents that: it holds an exclusive lock (``fcntl.flock`` through the
``filelock`` library) on a file ``.lock`` inside the folder for as long as the
folder is in use. A second process that finds the folder locked does not
wait: it takes the first free numbered sibling, ``<folder>.1``, ``<folder>.2``,
... (its own checkpoints, which it resumes from in turn if it is killed and
started again while the first one still runs).

The lock belongs to an open file, so the operating system drops it when the
holder dies (SIGKILL included): a restarted run gets the folder back at once
and resumes. :meth:`LockedFolder.remove` deletes the folder, its lock file
last, while the lock is still held; a process that opened the old lock file
just before notices on acquiring that the file it locked is no longer the one
at that path, and tries again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["LOCK_NAME", "LockedFolder", "locked_folder"]

LOCK_NAME = ".lock"
"""Name of the lock file inside a locked folder."""

_RETRIES = 50
"""Attempts per folder when the lock file is being deleted and re-created under us."""


class _Stale(Exception):
    """The file we locked was unlinked (its folder removed) before we got the lock."""


@dataclass
class LockedFolder:
    """A folder this process holds the lock of.

    Attributes:
        path: the folder (it exists): the requested one, or a numbered sibling
            ``<requested>.<slot>`` when another process held the requested one.
        slot: 0 for the requested folder, N for ``<requested>.N``.
    """

    path: Path
    slot: int
    _lock: FileLock

    def remove(self) -> None:
        """Delete the folder and everything in it (its lock file last) while the lock is held.

        If another process created a new lock file in the folder meanwhile, the
        (then empty) folder is left to it.
        """
        for entry in self.path.iterdir():
            if entry.name == LOCK_NAME:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        (self.path / LOCK_NAME).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def _try_lock(folder: Path) -> FileLock | None:
    """Lock ``folder/.lock`` without waiting; ``None`` if another holder has it."""
    path = folder / LOCK_NAME

    def still_there(fd: int) -> None:  # runs right after flock succeeds; raising gives the lock back
        try:
            at_path = os.stat(path)
        except FileNotFoundError:
            raise _Stale from None
        if not os.path.samestat(os.fstat(fd), at_path):
            raise _Stale

    for _ in range(_RETRIES):
        lock = FileLock(path, timeout=0, on_acquired=still_there)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except Timeout:
            return None
        except (_Stale, FileNotFoundError, FileExistsError):
            continue  # the folder was being removed by its previous holder (mkdir and open race with it): again
        return lock
    raise OSError(f"could not lock {path}: its folder keeps being removed and re-created")


@contextlib.contextmanager
def locked_folder(base: Path | str, *, slots: int = 64) -> Iterator[LockedFolder]:
    """Hold an exclusive lock on ``base``, or on the first free sibling ``base.1``, ``base.2``, ... .

    Never waits: a folder whose lock another process (or another thread of
    this one) holds is skipped. The folder is created if missing and left in
    place on exit (unless :meth:`LockedFolder.remove` was called); the lock is
    released on exit, also on an exception.

    Args:
        base: the folder wanted; its parent is created if needed.
        slots: how many folders to try in all (``base`` and ``slots - 1`` siblings), >= 1.

    Yields:
        :class:`LockedFolder` with the folder held.

    Raises:
        OSError: every one of the ``slots`` folders is locked by another
            process, or the lock file cannot be created.
        ValueError: ``slots < 1``.
    """
    base = Path(base)
    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    for slot in range(slots):
        folder = base if slot == 0 else base.with_name(f"{base.name}.{slot}")
        lock = _try_lock(folder)
        if lock is None:
            continue
        try:
            yield LockedFolder(folder, slot, lock)
        finally:
            lock.release()
        return
    raise OSError(f"{base} and its {slots - 1} numbered siblings are all in use by other processes")
