"""Per-epoch checkpoints (lib/checkpoint.py): one naming scheme, atomic saves, the newest matching checkpoint,
damaged and foreign files skipped, removal; for both formats (npz arrays, torch state dicts)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from replearn.lib.checkpoint import (NPZ, TORCH, Checkpoint, CheckpointFormat, checkpoint_path, latest_checkpoint,
                                     remove_checkpoints, save_checkpoint, torch_format)

KEY = {"config": {"dim": 8, "window": (2, 3)}, "vocab_size": 30}
FORMATS = pytest.mark.parametrize("fmt", [NPZ, TORCH], ids=["npz", "torch"])


def _payload(fmt: CheckpointFormat, value: float) -> dict:
    """A small state of the kind each format holds: float32 arrays, or a state dict of tensors."""
    if fmt is NPZ:
        return {"syn0": np.full((3, 2), value, dtype=np.float32), "pruned": [[1, 0, 0.25, 2]]}
    return {"state_dict": {"w": torch.full((3, 2), value)}, "history": [{"loss": value}]}


def _value(found: Checkpoint) -> float:
    p = found.payload
    return float(p["syn0"][0, 0]) if "syn0" in p else float(p["state_dict"]["w"][0, 0])


def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@FORMATS
def test_save_then_load_round_trips_under_the_four_digit_name(tmp_path, fmt):
    path = save_checkpoint(tmp_path / "ck", 3, _payload(fmt, 1.5), key=KEY, fmt=fmt)
    assert path == checkpoint_path(tmp_path / "ck", 3, fmt) == tmp_path / "ck" / f"epoch-0003.{fmt.ext}"
    assert _names(tmp_path / "ck") == [path.name]                               # no temporary left behind
    found = latest_checkpoint(tmp_path / "ck", key=KEY, fmt=fmt)
    assert found.path == path and found.epoch == 3 and found.payload["epoch"] == 3 and _value(found) == 1.5
    assert found.payload["vocab_size"] == 30                                     # the key fields are in the record
    if fmt is NPZ:
        assert found.payload["syn0"].dtype == np.float32 and found.payload["pruned"] == [[1, 0, 0.25, 2]]
    else:
        assert found.payload["history"] == [{"loss": 1.5}]
        assert torch.load(path, weights_only=True)["state_dict"]["w"].shape == (3, 2)   # readable without this module


@FORMATS
def test_a_failing_write_leaves_no_file_and_keeps_the_previous_checkpoint(tmp_path, fmt):
    save_checkpoint(tmp_path, 1, _payload(fmt, 1.0), key=KEY, fmt=fmt)

    def half_then_fail(path, record):
        path.write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    broken = CheckpointFormat(fmt.ext, half_then_fail, fmt.read)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, _payload(fmt, 2.0), key=KEY, fmt=broken)
    assert _names(tmp_path) == [f"epoch-0001.{fmt.ext}"]                       # neither epoch 2 nor a temporary
    assert latest_checkpoint(tmp_path, key=KEY, fmt=fmt).epoch == 1


@FORMATS
def test_the_newest_matching_checkpoint_is_found_by_epoch_number(tmp_path, fmt):
    for epoch in (1, 2, 9, 10):
        save_checkpoint(tmp_path, epoch, _payload(fmt, float(epoch)), key=KEY, fmt=fmt)
    (tmp_path / f".epoch-0011.{fmt.ext}.tmp-0123abcd").write_bytes(b"a temporary of a killed save")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    found = latest_checkpoint(tmp_path, key=KEY, fmt=fmt)
    assert found.epoch == 10 and _value(found) == 10.0
    # a run asked for fewer epochs does not resume from a later checkpoint
    assert latest_checkpoint(tmp_path, key=KEY, fmt=fmt, max_epoch=9).epoch == 9
    # the other format's files are not looked at
    other = TORCH if fmt is NPZ else NPZ
    assert latest_checkpoint(tmp_path, key=KEY, fmt=other) is None


def test_names_with_fewer_digits_are_ordered_by_their_number(tmp_path):
    """Checkpoints named before the 4-digit scheme (``epoch-009.npz``) still resume, in numeric order."""
    for epoch, name in [(9, "epoch-009.npz"), (10, "epoch-0010.npz"), (2, "epoch-2.npz")]:
        save_checkpoint(tmp_path, epoch, _payload(NPZ, float(epoch)), key=KEY, fmt=NPZ).rename(tmp_path / name)
    assert latest_checkpoint(tmp_path, key=KEY, fmt=NPZ).epoch == 10
    (tmp_path / "epoch-0010.npz").unlink()
    assert latest_checkpoint(tmp_path, key=KEY, fmt=NPZ).path.name == "epoch-009.npz"


@FORMATS
def test_a_mismatching_key_is_skipped(tmp_path, fmt):
    save_checkpoint(tmp_path, 1, _payload(fmt, 1.0), key=KEY, fmt=fmt)
    other = {**KEY, "vocab_size": 31}
    save_checkpoint(tmp_path, 2, _payload(fmt, 2.0), key=other, fmt=fmt)       # newer, another run's
    assert latest_checkpoint(tmp_path, key=KEY, fmt=fmt).epoch == 1
    assert latest_checkpoint(tmp_path, key=other, fmt=fmt).epoch == 2
    assert latest_checkpoint(tmp_path, key={**KEY, "config": {"dim": 16}}, fmt=fmt) is None
    assert latest_checkpoint(tmp_path, key={**KEY, "encoder": None}, fmt=fmt) is None   # a key field it lacks


def test_keys_compare_as_json_so_tuples_equal_lists(tmp_path):
    save_checkpoint(tmp_path, 1, _payload(TORCH, 1.0), key={"channels": (16, 32)}, fmt=TORCH)
    assert latest_checkpoint(tmp_path, key={"channels": [16, 32]}, fmt=TORCH).epoch == 1
    with pytest.raises(TypeError):
        latest_checkpoint(tmp_path, key={"channels": object()}, fmt=TORCH)


@FORMATS
def test_a_truncated_newest_checkpoint_falls_back_to_the_previous(tmp_path, fmt):
    for epoch in (1, 2, 3):
        save_checkpoint(tmp_path, epoch, _payload(fmt, float(epoch)), key=KEY, fmt=fmt)
    newest = checkpoint_path(tmp_path, 3, fmt)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])      # cut short by a crash
    checkpoint_path(tmp_path, 2, fmt).write_bytes(b"")                          # and an empty one
    found = latest_checkpoint(tmp_path, key=KEY, fmt=fmt)
    assert found.epoch == 1 and _value(found) == 1.0


def test_foreign_files_and_records_missing_needed_fields_are_skipped(tmp_path):
    save_checkpoint(tmp_path, 1, _payload(TORCH, 1.0), key=KEY, fmt=TORCH)
    torch.save([1, 2, 3], checkpoint_path(tmp_path, 3, TORCH))                 # not a dict
    torch.save({"epoch": 4, **KEY}, checkpoint_path(tmp_path, 4, TORCH))       # matches, but holds no state
    np.save(tmp_path / "x.npy", np.zeros(2))
    (tmp_path / "x.npy").rename(checkpoint_path(tmp_path, 5, NPZ))             # not a zip
    assert latest_checkpoint(tmp_path, key=KEY, fmt=TORCH).epoch == 4
    assert latest_checkpoint(tmp_path, key=KEY, fmt=TORCH, fields=("state_dict",)).epoch == 1
    assert latest_checkpoint(tmp_path, key=KEY, fmt=NPZ) is None


def test_npz_stores_arrays_as_entries_and_the_rest_as_json_meta(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"sv": np.arange(4, dtype=np.int64), "pruned": []}, key=KEY, fmt=NPZ)
    with np.load(path) as z:
        assert sorted(z.files) == ["meta", "sv"]
        assert json.loads(str(z["meta"])) == {"epoch": 1, "config": {"dim": 8, "window": [2, 3]}, "vocab_size": 30,
                                              "pruned": []}


def test_clashing_field_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="vocab_size"):
        save_checkpoint(tmp_path, 1, {"vocab_size": 3}, key=KEY, fmt=TORCH)
    with pytest.raises(ValueError, match="epoch"):
        save_checkpoint(tmp_path, 1, {"epoch": 3}, key=KEY, fmt=TORCH)
    with pytest.raises(ValueError, match="meta"):
        save_checkpoint(tmp_path, 1, {"meta": np.zeros(1)}, key=KEY, fmt=NPZ)
    assert _names(tmp_path) == []


def test_torch_format_loads_to_the_given_device(tmp_path):
    save_checkpoint(tmp_path, 1, _payload(TORCH, 1.0), key=KEY, fmt=TORCH)
    found = latest_checkpoint(tmp_path, key=KEY, fmt=torch_format(torch.device("cpu")))
    assert found.payload["state_dict"]["w"].device == torch.device("cpu")


def test_missing_folder_gives_none_and_remove_deletes_the_folder(tmp_path):
    assert latest_checkpoint(tmp_path / "none", key=KEY, fmt=NPZ) is None
    save_checkpoint(tmp_path / "ck", 1, _payload(NPZ, 1.0), key=KEY, fmt=NPZ)
    (tmp_path / "ck" / "sub").mkdir()
    remove_checkpoints(tmp_path / "ck")
    assert not (tmp_path / "ck").exists()
    remove_checkpoints(tmp_path / "ck")                                         # already gone: no error
    assert latest_checkpoint(tmp_path / "ck", key=KEY, fmt=NPZ) is None
