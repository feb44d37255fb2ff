"""The data home: where runs, caches, checkpoints and the MLflow store live (default ``./.replearn``)."""

from __future__ import annotations

import os
from pathlib import Path


def data_home(home: str | Path | None = None) -> Path:
    """Absolute data home: the argument, else ``$REPLEARN_HOME``, else ``./.replearn``; created if missing."""
    path = Path(home or os.environ.get("REPLEARN_HOME") or ".replearn").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
