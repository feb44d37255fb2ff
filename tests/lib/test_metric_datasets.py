"""Source routing, source content hashes and the probe split (lib/metric/datasets.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.datasets import (
    DIGITS_HASH,
    dataset_arrays,
    load_dataset,
    probe_split,
    source_files,
    source_hash,
)
from replearn.lib.metric.images import ImageDataError


def _folder(root, classes=("a", "b"), n=3):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (9, 9), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_load_dataset_routes_digits_and_folders(tmp_path):
    digits = load_dataset("digits")
    assert digits.images.shape == (1797, 1, 8, 8)
    ds = load_dataset(str(_folder(tmp_path / "imgs")))
    assert ds.images.shape == (6, 1, 28, 28) and list(ds.classes.names) == ["a", "b"]
    with pytest.raises(ImageDataError):
        load_dataset("mnist:" + str(tmp_path / "nowhere"))


def test_source_hash_follows_content_not_location(tmp_path):
    assert source_hash("digits") == DIGITS_HASH and source_files("digits") == []
    a = _folder(tmp_path / "a")
    h = source_hash(str(a))
    assert len(h) == 64 and len(source_files(str(a))) == 6
    moved = a.rename(tmp_path / "moved")
    assert source_hash(str(moved)) == h                       # moving the folder keeps the hash
    (moved / "b" / "0.png").rename(moved / "a" / "9.png")    # a file changes class: other labels, other hash
    assert source_hash(str(moved)) != h
    (moved / ".hidden").write_text("x")                      # hidden files are not read by the loader
    h2 = source_hash(str(moved))
    assert source_hash(str(moved)) == h2
    Image.new("L", (9, 9), 3).save(moved / "a" / "0.png")
    assert source_hash(str(moved)) != h2


def test_source_hash_of_mnist_reads_the_test_files_and_a_missing_source_hashes_its_name(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"1")
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"2")
    assert [p.name for p in source_files(f"mnist:{tmp_path}")] == ["t10k-images-idx3-ubyte.gz"]
    h = source_hash(f"mnist:{tmp_path}")
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"3")
    assert source_hash(f"mnist:{tmp_path}") == h
    assert source_hash(str(tmp_path / "x.parquet")) != source_hash(str(tmp_path / "y.parquet"))
    assert source_files(str(tmp_path / "x.parquet")) == []


def test_probe_split_is_seeded_and_partitions():
    tr, te = probe_split(10, seed=3)
    assert len(tr) == 7 and len(te) == 3
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(10))
    again = probe_split(10, seed=3)
    assert np.array_equal(tr, again[0]) and np.array_equal(te, again[1])
    # the evaluation's split as it was written in the task
    perm = np.random.default_rng(3).permutation(10)
    assert np.array_equal(tr, perm[:7])
    with pytest.raises(ValueError):
        probe_split(10, 0, train_fraction=1.0)


def test_dataset_arrays_split_seen_and_unseen_classes():
    ds = load_dataset("digits")
    arrays = dataset_arrays(ds, 5)
    assert set(arrays) == {"images", "labels", "train_idx", "test_idx", "keys", "names"}
    assert set(arrays["labels"][arrays["train_idx"]]) == {0, 1, 2, 3, 4}
    assert set(arrays["labels"][arrays["test_idx"]]) == {5, 6, 7, 8, 9}
    assert arrays["names"].tolist() == [str(i) for i in range(10)]
    with pytest.raises(ReplearnInputError):
        dataset_arrays(ds, 10)


def test_dataset_arrays_name_every_image_by_its_class(tmp_path):
    ds = load_dataset(str(_folder(tmp_path / "imgs", classes=("x", "y", "z"))))   # sorted by class: x x x y y y ...
    arrays = dataset_arrays(ds, 1)
    assert arrays["names"].tolist() == ["x", "y", "z"]
    assert arrays["names"][arrays["labels"]].tolist() == ds.label_names
