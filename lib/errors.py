"""Errors raised by replearn.lib for bad input, and the wording of operating-system errors.

Every error message names the offending file (and row, where there is one) and
says how to fix it. All derive from ``ValueError`` so callers that only know
the standard library still catch them. An ``OSError`` a user can fix outside
replearn (a full disk, a permission) is worded by :func:`explain_os_error`: one
line with the path and the remedy instead of a traceback. Outputs are written to
temporary names and renamed (lib/store/atomic.py), so such an error leaves no
half-written file.
"""

import errno


class ReplearnInputError(ValueError):
    """Base class: the user's input cannot be used as given."""


class CorpusError(ReplearnInputError):
    """A corpus is missing, empty, unreadable, or lacks the named text column."""


class VocabularyError(ReplearnInputError):
    """A vocabulary is empty after pruning, or a word is not in it."""


class EmbeddingsError(ReplearnInputError):
    """Vectors cannot be exported or indexed: NaN/Inf, wrong dimension, duplicate or null rows."""


class TrainingError(ReplearnInputError):
    """Training cannot go on with these settings: the loss became NaN/Inf or the embeddings collapsed.

    ``history`` holds the per-epoch logs recorded before the stop (the failing
    epoch included when it finished), so a caller can still log or plot them.
    """

    def __init__(self, message: str, history: list | None = None):
        super().__init__(message)
        self.history = list(history or [])

    def __reduce__(self):  # keep ``history`` through pickling (process pools, Prefect results)
        return (type(self), (self.args[0] if self.args else "", self.history))


#: errno -> (what happened, the remedy), for the operating-system errors a user can fix outside replearn.
EXPLAINED_OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", "free space there, or point --home (or the corpus) elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota, or point --home elsewhere"),
    errno.EACCES: ("permission denied", "give your user read/write access to it, or point --home elsewhere"),
    errno.EPERM: ("operation not permitted", "give your user read/write access to it, or point --home elsewhere"),
    errno.EROFS: ("read-only file system", "point --home at a writable folder"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) or use fewer --workers"),
    errno.EIO: ("input/output error", "check the disk (dmesg), then run again"),
}


def is_explained_os_error(e: BaseException) -> bool:
    """Whether ``e`` is an ``OSError`` whose errno :data:`EXPLAINED_OS_ERRORS` words."""
    return isinstance(e, OSError) and e.errno in EXPLAINED_OS_ERRORS


def explain_os_error(e: OSError) -> str:
    """``"<what happened>: <path> (<remedy>); no output was left half-written"``; a rename names both paths.

    Args:
        e: an ``OSError`` of any errno (one not in :data:`EXPLAINED_OS_ERRORS` keeps its ``strerror``, no remedy).
    """
    what, remedy = EXPLAINED_OS_ERRORS.get(e.errno, (e.strerror or type(e).__name__, ""))
    paths = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None) or "(no path given)"
    return f"{what}: {paths}" + (f" ({remedy})" if remedy else "") + "; no output was left half-written"
