"""The checkpoint folder of a training task: held exclusively while it trains, removed once the model is saved.

Checkpoints live under ``<home>/checkpoints/<family>/<key>`` (the key hashes the
data and the settings, :meth:`replearn.infra.run_context.RunContext.checkpoint_dir`),
so that a killed run started again with the same inputs resumes after its last
finished epoch (lib/checkpoint.py). Two identical runs at once must not share
the folder: :func:`training_checkpoints` holds its lock
(lib/store/folder_lock.py), and a second run checkpoints to ``<key>.1`` and
says so. A training task that returns normally has saved its model, so the
folder is removed; one that fails or is killed leaves it for the resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect.logging import get_run_logger

from replearn.lib.store.folder_lock import locked_folder


@contextmanager
def training_checkpoints(checkpoint_dir: str | Path) -> Iterator[Path]:
    """Yield the folder a training task checkpoints to (``checkpoint_dir``, or ``<checkpoint_dir>.N`` when another
    live run holds it), locked for the duration; removed when the body returns, kept when it raises."""
    with locked_folder(Path(checkpoint_dir)) as ckpt:
        if ckpt.slot:
            get_run_logger().warning(
                "another run with the same data and settings holds %s; this run checkpoints to %s (a killed run "
                "started again while the other one still trains resumes from there)", checkpoint_dir, ckpt.path)
        yield ckpt.path
        ckpt.remove()  # the model is saved: the checkpoints only served to resume an interrupted run
