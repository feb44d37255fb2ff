"""Atomic outputs: the final path holds the old or the new content, never a half; no temporaries remain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from replearn.lib.store.atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    temp_sibling,
)


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_temp_sibling_is_hidden_unique_and_in_same_dir(tmp_path):
    final = tmp_path / "out.parquet"
    a, b = temp_sibling(final), temp_sibling(final)
    assert a != b
    assert a.parent == final.parent
    assert a.name.startswith(".out.parquet.tmp-")


def test_file_written_and_renamed(tmp_path):
    final = tmp_path / "sub" / "f.txt"  # parent is created
    with atomic_path(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.startswith(".f.txt.tmp-")
        tmp.write_text("hello")
        assert not final.exists()  # nothing visible before the block ends
    assert final.read_text() == "hello"
    assert _names(final.parent) == ["f.txt"]


def test_file_replaces_existing(tmp_path):
    final = tmp_path / "f.txt"
    final.write_text("old")
    with atomic_path(final) as tmp:
        tmp.write_text("new")
        assert final.read_text() == "old"
    assert final.read_text() == "new"
    assert _names(tmp_path) == ["f.txt"]


def test_exception_leaves_nothing_and_keeps_old(tmp_path):
    final = tmp_path / "f.txt"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert _names(tmp_path) == []

    final.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert final.read_text() == "old"
    assert _names(tmp_path) == ["f.txt"]


def test_exception_in_directory_output_leaves_nothing(tmp_path):
    final = tmp_path / "ds"
    with pytest.raises(ValueError):
        with atomic_path(final) as tmp:
            tmp.mkdir()
            (tmp / "part-0.parquet").write_bytes(b"x")
            raise ValueError
    assert _names(tmp_path) == []


def test_directory_written_and_replaces_existing(tmp_path):
    final = tmp_path / "ds"
    with atomic_path(final) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("1")
    assert _names(final) == ["a"]
    with atomic_path(final) as tmp:
        tmp.mkdir()
        (tmp / "b").write_text("2")
    assert _names(final) == ["b"]  # old content gone, not merged
    assert _names(tmp_path) == ["ds"]  # no .old-/.tmp- leftovers


def test_directory_replaces_file_and_file_replaces_directory(tmp_path):
    final = tmp_path / "x"
    final.write_text("file")
    with atomic_path(final) as tmp:
        tmp.mkdir()
    assert final.is_dir()
    with atomic_path(final) as tmp:
        tmp.write_text("file again")
    assert final.read_text() == "file again"
    assert _names(tmp_path) == ["x"]


def test_block_that_writes_nothing_is_an_error(tmp_path):
    final = tmp_path / "f"
    with pytest.raises(FileNotFoundError, match="yielded path"):
        with atomic_path(final):
            pass
    assert _names(tmp_path) == []


def test_write_helpers(tmp_path):
    assert atomic_write_bytes(tmp_path / "b", b"\x00\x01") == tmp_path / "b"
    assert (tmp_path / "b").read_bytes() == b"\x00\x01"
    atomic_write_text(tmp_path / "t", "héllo")
    assert (tmp_path / "t").read_text(encoding="utf-8") == "héllo"
    obj = {"a": np.float32(0.5), "b": np.arange(3), "p": Path("/x"), "s": {2, 1}, "n": None}
    atomic_write_json(tmp_path / "j.json", obj)
    expected = {"a": 0.5, "b": [0, 1, 2], "p": "/x", "s": [1, 2], "n": None}
    assert json.loads((tmp_path / "j.json").read_text()) == expected
    assert _names(tmp_path) == ["b", "j.json", "t"]


def test_json_refuses_nan_and_unknown_types_without_writing(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "j.json", {"x": float("nan")})
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "j.json", {"x": object()})
    assert _names(tmp_path) == []


def test_npz_round_trip_is_atomic(tmp_path, monkeypatch):
    import numpy as np

    from replearn.lib.store.atomic import atomic_write_npz, read_npz

    path = atomic_write_npz(tmp_path / "a.npz", x=np.arange(3), y=np.eye(2, dtype=np.float32))
    d = read_npz(path)
    assert sorted(d) == ["x", "y"] and d["y"].dtype == np.float32 and d["x"].tolist() == [0, 1, 2]

    def half_then_full_disk(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", half_then_full_disk)
    with pytest.raises(OSError):
        atomic_write_npz(tmp_path / "a.npz", x=np.arange(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]          # no temporary left behind
    monkeypatch.undo()
    assert read_npz(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2]         # the old file, untouched
