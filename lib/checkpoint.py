"""Per-epoch training checkpoints: one naming scheme, atomic saves, the newest matching one found, removal.

Every trainer (skip-gram, multi-sense, metric learning, CLIP) writes the state
after epoch ``e`` (1-based: ``e`` epochs done) to ``<folder>/epoch-NNNN.<ext>``,
``NNNN`` the epoch with 4 digits (``epoch-0003.pt``), and a killed run,
started again with the same inputs, resumes from the newest checkpoint of its
folder that matches its *key*.

* **Record.** A checkpoint holds one flat dict, the *record*:
  ``{"epoch": e, **key, **payload}``. ``key`` is a plain JSON-able dict of what
  the trained state depends on (the config's ``training_key()``, the
  vocabulary size, the encoder config, ...); ``payload`` is the state (arrays,
  state dicts, history). Key and payload fields sit side by side at the top
  level, so a checkpoint reads without this module
  (``torch.load(path)["state_dict"]``).
* **Formats.** Only the file format differs between trainers, and it is a small
  pluggable part, a :class:`CheckpointFormat` (extension, writer, reader):
  :data:`NPZ` for numpy arrays (the arrays as ``.npz`` entries, every other
  field JSON-encoded in the entry ``meta``) and :func:`torch_format` /
  :data:`TORCH` for ``torch.save`` dicts of state dicts (read back with
  ``torch.load(weights_only=True)``, never unpickling code).
* **Atomic.** A checkpoint is written to a hidden temporary sibling and renamed
  (:func:`replearn.lib.store.atomic.atomic_path`): a reader, or a run killed
  mid-save, sees the previous checkpoints only, never half of one.
* **Matching.** :func:`latest_checkpoint` walks the folder from the highest
  epoch down and returns the first record that reads, whose key fields equal
  the caller's (compared after a JSON round trip, so a tuple equals a list),
  whose epoch is in ``[1, max_epoch]`` and that holds the fields the caller
  needs. Damaged (truncated) and foreign files are skipped, so a file cut short
  by a crash falls back to the epoch before. Names with fewer digits
  (``epoch-002.npz``, written before the 4-digit scheme) are read and ordered
  by their number too.

Example::

    key = {"config": config.training_key(), "vocab_size": V}
    found = latest_checkpoint(folder, key=key, fmt=NPZ, fields=("syn0", "syn1"))
    start = found.epoch if found else 0
    ...
    save_checkpoint(folder, epoch + 1, {"syn0": syn0, "syn1": syn1}, key=key, fmt=NPZ)
    ...
    remove_checkpoints(folder)          # the result is saved: nothing left to resume
"""

from __future__ import annotations

import functools
import json
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replearn.lib.store.atomic import atomic_path

__all__ = [
    "NPZ",
    "TORCH",
    "Checkpoint",
    "CheckpointFormat",
    "checkpoint_path",
    "latest_checkpoint",
    "remove_checkpoints",
    "save_checkpoint",
    "torch_format",
]

EPOCH_DIGITS = 4
"""Digits of the epoch in a checkpoint's file name (``epoch-0003.npz``)."""

_META = "meta"
"""The ``.npz`` entry that holds a record's non-array fields as JSON."""


@dataclass(frozen=True)
class CheckpointFormat:
    """How a record is stored in one file: the part of checkpointing that differs between trainers.

    Attributes:
        ext: file extension without the dot (``"npz"``, ``"pt"``).
        write: ``write(path, record)`` writes the dict ``record`` to ``path``
            exactly (no extension added); may raise anything, nothing is then
            published.
        read: ``read(path) -> record``; any exception means "damaged or
            foreign", and the file is skipped.
    """

    ext: str
    write: Callable[[Path, dict[str, Any]], None]
    read: Callable[[Path], dict[str, Any]]


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint found by :func:`latest_checkpoint`.

    Attributes:
        path: its file, ``<folder>/epoch-NNNN.<ext>``.
        epoch: epochs done when it was written (>= 1), from the record.
        payload: the whole record: the state fields, the key fields and ``"epoch"``.
    """

    path: Path
    epoch: int
    payload: dict[str, Any]


# --------------------------------------------------------------------------- formats


def _write_npz(path: Path, record: dict[str, Any]) -> None:
    """numpy arrays as ``.npz`` entries, every other field JSON in the entry ``meta`` (uncompressed)."""
    arrays = {k: v for k, v in record.items() if isinstance(v, np.ndarray)}
    if _META in arrays:
        raise ValueError(f"an npz checkpoint cannot hold an array named {_META!r}: that entry holds the other fields")
    meta = json.dumps({k: v for k, v in record.items() if k not in arrays})
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a path
        np.savez(f, **arrays, **{_META: np.array(meta)})


def _read_npz(path: Path) -> dict[str, Any]:
    """The record of :func:`_write_npz`: the ``meta`` fields and the arrays (read into memory)."""
    with np.load(path) as z:  # allow_pickle=False: an object array is refused (ValueError)
        record = json.loads(str(z[_META]))
        if not isinstance(record, dict):
            raise ValueError(f"{path}: {_META} is not a JSON object")
        record.update({k: z[k] for k in z.files if k != _META})
    return record


NPZ = CheckpointFormat("npz", _write_npz, _read_npz)
"""numpy checkpoints (word2vec, multi-sense): float/int arrays plus JSON-able fields."""


def _write_torch(path: Path, record: dict[str, Any]) -> None:
    import torch  # lazily: the numpy trainers need no torch

    torch.save(record, path)


def _read_torch(path: Path, map_location: Any) -> dict[str, Any]:
    import torch

    record = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(record, dict):
        raise ValueError(f"{path}: not a dict")
    return record


def torch_format(map_location: Any = "cpu") -> CheckpointFormat:
    """``torch.save`` checkpoints (metric, CLIP), read with ``torch.load(weights_only=True)``.

    Args:
        map_location: where tensors are loaded (``"cpu"``, ``"cuda:0"``, a
            ``torch.device``), as for ``torch.load``.
    """
    return CheckpointFormat("pt", _write_torch, functools.partial(_read_torch, map_location=map_location))


TORCH = torch_format("cpu")
"""torch checkpoints (state dicts, optimiser states, plain Python values), tensors loaded to the CPU."""


# --------------------------------------------------------------------------- naming, saving, finding, removing


def checkpoint_path(folder: Path | str, epoch: int, fmt: CheckpointFormat) -> Path:
    """``<folder>/epoch-NNNN.<fmt.ext>``: the checkpoint of the state after ``epoch`` (>= 1) epochs."""
    return Path(folder) / f"epoch-{epoch:0{EPOCH_DIGITS}d}.{fmt.ext}"


def _record(epoch: int, key: Mapping[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """``{"epoch": epoch, **key, **payload}``; raises ``ValueError`` if the three share a name."""
    clash = (set(key) & set(payload)) | ({"epoch"} & (set(key) | set(payload)))
    if clash:
        raise ValueError(f"checkpoint key and payload must not share field names nor use 'epoch': {sorted(clash)}")
    return {"epoch": int(epoch), **key, **payload}


def save_checkpoint(folder: Path | str, epoch: int, payload: Mapping[str, Any], *, key: Mapping[str, Any],
                    fmt: CheckpointFormat) -> Path:
    """Write the state after ``epoch`` epochs to :func:`checkpoint_path` atomically; return that path.

    Args:
        folder: the run's checkpoint folder (created if missing).
        epoch: epochs done, >= 1.
        payload: the state, in fields ``fmt`` can store (numpy arrays and
            JSON-able values for :data:`NPZ`; tensors, state dicts and plain
            Python values for :data:`TORCH`).
        key: plain JSON-able dict that a resuming run must match
            (:func:`latest_checkpoint`).
        fmt: the file format.

    Raises:
        ValueError: ``key`` and ``payload`` share a field name, or one of them
            uses ``"epoch"``; the format's writer refuses the record.
        Exception: whatever ``fmt.write`` raises; no file, temporary or final, is left.
    """
    path = checkpoint_path(folder, epoch, fmt)
    record = _record(epoch, key, payload)
    with atomic_path(path) as tmp:
        fmt.write(tmp, record)
    return path


def _canonical(value: Any) -> Any:
    """``value`` after a JSON round trip (tuples become lists); raises ``TypeError`` when not JSON-able."""
    return json.loads(json.dumps(value))


def _candidates(folder: Path, fmt: CheckpointFormat) -> list[tuple[int, Path]]:
    """(epoch in the name, path) of ``epoch-<digits>.<ext>`` files in ``folder``, highest epoch first."""
    pattern = re.compile(rf"epoch-(\d+)\.{re.escape(fmt.ext)}")
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.fullmatch(p.name)) and p.is_file()]
    return sorted(found, key=lambda t: (t[0], t[1].name), reverse=True)


def _matches(record: dict[str, Any], key: dict[str, Any], max_epoch: int | None, fields: Iterable[str]) -> bool:
    """Whether ``record`` has the (canonical) key, an epoch in [1, max_epoch] and every field in ``fields``."""
    if any(k not in record or _canonical(record[k]) != v for k, v in key.items()):
        return False
    epoch = int(record["epoch"])
    if epoch < 1 or (max_epoch is not None and epoch > max_epoch):
        return False
    return all(f in record for f in fields)


def latest_checkpoint(folder: Path | str, *, key: Mapping[str, Any], fmt: CheckpointFormat,
                      max_epoch: int | None = None, fields: Iterable[str] = ()) -> Checkpoint | None:
    """The newest readable checkpoint in ``folder`` that matches ``key``, or None (see the module docstring).

    Files are tried from the highest epoch in their name down; one that does not
    read (truncated, foreign, another format) or does not match is skipped.

    Args:
        folder: the run's checkpoint folder; a missing folder gives None.
        key: the plain JSON-able dict given to :func:`save_checkpoint`; every
            field must be equal (after a JSON round trip) in the record.
        fmt: the file format (its extension selects the files, its reader reads them).
        max_epoch: if given, a checkpoint written after more epochs than this is
            skipped (a run asked for fewer epochs than a previous one).
        fields: record fields the caller needs; a record lacking one is skipped.

    Returns:
        :class:`Checkpoint` or None.

    Raises:
        TypeError: ``key`` is not JSON-able.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    want = _canonical(dict(key))
    fields = tuple(fields)
    for _, path in _candidates(folder, fmt):
        try:
            record = fmt.read(path)
            if _matches(record, want, max_epoch, fields):
                return Checkpoint(path, int(record["epoch"]), record)
        except Exception:  # truncated or foreign file: an older checkpoint is used
            continue
    return None


def remove_checkpoints(folder: Path | str) -> None:
    """Delete a checkpoint folder and everything in it; a missing folder is fine, errors are ignored.

    For a run whose result is saved: its checkpoints only served to resume it.
    (A folder held with :func:`replearn.lib.store.folder_lock.locked_folder` is
    removed with :meth:`~replearn.lib.store.folder_lock.LockedFolder.remove`,
    which deletes the lock file last.)
    """
    shutil.rmtree(folder, ignore_errors=True)
