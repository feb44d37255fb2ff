"""The data home: where runs, caches, checkpoints and the MLflow store live (default ``./.replearn``)."""

from __future__ import annotations

import os
from pathlib import Path

from replearn.lib.errors import ReplearnInputError


def data_home(home: str | Path | None = None) -> Path:
    """Absolute data home: the argument, else ``$REPLEARN_HOME``, else ``./.replearn``; created if missing.

    Raises:
        ReplearnInputError: the path is a file, or cannot be created (the message names it and says why).
    """
    path = Path(home or os.environ.get("REPLEARN_HOME") or ".replearn").expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ReplearnInputError(f"data home {path} is a file, not a folder: pass a folder with --home "
                                 "(or REPLEARN_HOME)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReplearnInputError(f"cannot create the data home {path}: {e.strerror} ({e.filename}); pass a "
                                 "folder you can write with --home (or REPLEARN_HOME)") from None
    return path


def inside_home(home: str | Path, *parts: str) -> Path:
    """``home / parts...`` resolved, refusing any part that would leave ``home`` (``..``, absolute paths, links out).

    Raises:
        ValueError: the resolved path is not inside the data home (the message names both).
    """
    root = Path(home).resolve()
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise ValueError(f"{'/'.join(parts)!r} would leave the data home {root}; use a plain name without '..' or '/'")
    return path
