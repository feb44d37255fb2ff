"""The IDX reader: round trip on hand-written files, errors, and the real MNIST test set when present."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.idx import load_mnist, read_idx

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _write_idx(path, arr, code=0x08):
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    data = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    (gzip.open if path.suffix == ".gz" else open)(path, "wb").write(data)


def test_round_trip_uint8_and_big_endian_int32(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.idx.gz", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), a)
    b = np.array([1, -2, 300000], dtype=np.int32)
    _write_idx(tmp_path / "b.idx", b, code=0x0C)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.idx"), b)


def test_bad_files_are_rejected_with_the_path(tmp_path):
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(ReplearnInputError, match="junk"):
        read_idx(tmp_path / "junk")
    a = np.zeros((2, 2), np.uint8)
    _write_idx(tmp_path / "t.idx", a)
    (tmp_path / "t.idx").write_bytes((tmp_path / "t.idx").read_bytes()[:-1])
    with pytest.raises(ReplearnInputError, match="truncated"):
        read_idx(tmp_path / "t.idx")
    with pytest.raises(ReplearnInputError, match="not found"):
        read_idx(tmp_path / "missing.idx")


def test_real_mnist_test_set():
    folder = SHARED_DATA / "mnist"
    if not folder.exists():
        pytest.skip(f"{folder} not present (shared data lives beside the repo)")
    images, labels = load_mnist(folder)
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
