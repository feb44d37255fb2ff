"""Image datasets: bundled digits, MNIST (when present), image folders and Parquet with bad files, label
encoding and the disjoint-class split."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.images import (ImageDataError, LabelEncoder, load_digits_8x8, load_image_folder,
                                        load_image_parquet, load_mnist_test, split_by_classes)

MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def _png_bytes(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    (Image.fromarray(arr).convert(mode) if mode else Image.fromarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def _make_folder(root: Path) -> Path:
    """cat/: two images (one RGB 40x30, one grey 28x28); dog/: one grey 10x10 (white), a corrupt PNG and a
    text file; a README directly in root; a hidden file."""
    (root / "cat").mkdir(parents=True)
    (root / "dog" / "nested").mkdir(parents=True)
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 0] = 255  # pure red -> luminance 0.299
    Image.fromarray(rgb).save(root / "cat" / "a.png")
    Image.fromarray(np.full((28, 28), 128, np.uint8)).save(root / "cat" / "b.jpg", quality=100)
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(root / "dog" / "nested" / "c.png")
    (root / "dog" / "broken.png").write_bytes(_png_bytes(np.zeros((28, 28), np.uint8))[:40])  # truncated
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("about this data")
    (root / "cat" / ".DS_Store").write_bytes(b"\0\0")
    return root


def test_digits_8x8_shapes_range_and_labels():
    ds = load_digits_8x8()
    assert ds.images.shape == (1797, 1, 8, 8) and ds.images.dtype == np.float32
    assert ds.images.min() == 0.0 and ds.images.max() == 1.0
    assert ds.labels.dtype == np.int64 and set(ds.labels.tolist()) == set(range(10))
    assert ds.classes.names == tuple("0123456789") and len(ds.keys) == 1797 and ds.n_skipped == 0


def test_mnist_test_set():
    if not MNIST.is_dir():
        pytest.skip(f"MNIST not present at {MNIST} (shared data lives beside the repo in ../shared/data/mnist)")
    ds = load_mnist_test(MNIST)
    assert ds.images.shape == (10000, 1, 28, 28) and ds.images.dtype == np.float32
    assert ds.images.min() == 0.0 and ds.images.max() == 1.0
    assert ds.labels.shape == (10000,) and set(ds.labels.tolist()) == set(range(10))


def test_mnist_missing_folder_names_it(tmp_path):
    with pytest.raises(ImageDataError, match="nowhere.*t10k-images"):
        load_mnist_test(tmp_path / "nowhere")


def test_label_encoder_natural_order_round_trip_and_unknown():
    enc = LabelEncoder.fit(["10", "2", "cat", 2, "1"])
    assert enc.names == ("1", "2", "10", "cat")
    ids = enc.encode(["cat", "10", 1])
    assert ids.tolist() == [3, 2, 0] and ids.dtype == np.int64
    assert enc.decode(ids) == ["cat", "10", "1"]
    assert LabelEncoder.from_dict(enc.to_dict()) == enc
    with pytest.raises(ReplearnInputError, match="'dog'"):
        enc.encode(["cat", "dog"])


def test_image_folder_loads_resizes_and_reports_bad_files(tmp_path):
    root = _make_folder(tmp_path / "imgs")
    with pytest.warns(UserWarning, match="skipped 3 unreadable"):
        ds = load_image_folder(root, size=16)
    assert ds.images.shape == (3, 1, 16, 16) and ds.images.dtype == np.float32
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    assert ds.keys == ["cat/a.png", "cat/b.jpg", "dog/nested/c.png"]
    assert ds.classes.names == ("cat", "dog") and ds.labels.tolist() == [0, 0, 1]
    assert ds.label_names == ["cat", "cat", "dog"]
    np.testing.assert_allclose(ds.images[0], 76 / 255, atol=1 / 255)  # red -> L = 0.299 * 255
    np.testing.assert_allclose(ds.images[1], 128 / 255, atol=2 / 255)
    np.testing.assert_allclose(ds.images[2], 1.0)
    skipped = {Path(s.source).name: s.reason for s in ds.skipped}
    assert set(skipped) == {"broken.png", "notes.txt", "README.md"}  # hidden .DS_Store ignored
    assert all(str(root) in s.source for s in ds.skipped)
    assert "no class" in skipped["README.md"]


def test_image_folder_errors(tmp_path):
    with pytest.raises(ImageDataError, match="missing_dir.*not found"):
        load_image_folder(tmp_path / "missing_dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageDataError, match="no images loaded from .*empty"):
        load_image_folder(tmp_path / "empty")
    (tmp_path / "bad" / "x").mkdir(parents=True)
    (tmp_path / "bad" / "x" / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ImageDataError, match="all 1 input.*junk.png"):
        load_image_folder(tmp_path / "bad")


def test_image_parquet_bytes_paths_and_bad_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(tmp_path / "white.png")
    rows = [
        (_png_bytes(np.zeros((28, 28), np.uint8)), "zero"),
        (_png_bytes(np.full((5, 7), 255, np.uint8)), "one"),
        (b"\x89PNG corrupt", "one"),  # corrupt bytes
        (None, "one"),  # null image
        (_png_bytes(np.zeros((28, 28), np.uint8)), None),  # null label
    ]
    pq.write_table(pa.table({"img": pa.array([r[0] for r in rows], pa.binary()),
                             "label": [r[1] for r in rows]}), tmp_path / "d.parquet")
    with pytest.warns(UserWarning, match="skipped 3"):
        ds = load_image_parquet(tmp_path / "d.parquet", "img", "label", size=8)
    assert ds.images.shape == (2, 1, 8, 8)
    assert ds.classes.names == ("one", "zero") and ds.labels.tolist() == [1, 0]
    np.testing.assert_allclose(ds.images[0], 0.0)
    np.testing.assert_allclose(ds.images[1], 1.0)
    assert [s.source.rsplit("#", 1)[1] for s in ds.skipped] == ["row=2", "row=3", "row=4"]
    assert "null label" in ds.skipped[2].reason

    # a column of paths (relative to the file), integer labels, one missing file
    pq.write_table(pa.table({"path": ["white.png", "gone.png", str(tmp_path / "white.png")], "y": [3, 3, 10]}),
                   tmp_path / "p.parquet")
    with pytest.warns(UserWarning, match="gone.png"):
        ds = load_image_parquet(tmp_path / "p.parquet", "path", "y")
    assert ds.images.shape == (2, 1, 28, 28) and ds.classes.names == ("3", "10")
    assert ds.keys[0] == "white.png" and ds.skipped[0].reason == "image file not found"


def test_image_parquet_errors_name_file_and_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pytest.raises(ImageDataError, match="nope.parquet not found"):
        load_image_parquet(tmp_path / "nope.parquet", "img", "label")
    pq.write_table(pa.table({"image": [b"x"], "label": ["a"]}), tmp_path / "t.parquet")
    with pytest.raises(ImageDataError, match=r"t.parquet has no column 'img'.*\['image', 'label'\]"):
        load_image_parquet(tmp_path / "t.parquet", "img", "label")
    with pytest.raises(ImageDataError, match="no images loaded.*row=0: UnidentifiedImageError: .*the bytes"):
        load_image_parquet(tmp_path / "t.parquet", "image", "label")
    (tmp_path / "junk.parquet").write_text("hello")
    with pytest.raises(ImageDataError, match="junk.parquet"):
        load_image_parquet(tmp_path / "junk.parquet", "image", "label")


def test_split_by_classes():
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3, 4])
    tr, te = split_by_classes(y, [0, 2])
    assert tr.tolist() == [0, 2, 4, 6] and te.tolist() == [1, 3, 5, 7, 8]
    tr, te = split_by_classes(y, 3)
    assert set(y[tr]) == {0, 1, 2} and set(y[te]) == {3, 4}
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(len(y)))
    tr, te = split_by_classes(np.array(["b", "a", "c"]), ["a"])
    assert tr.tolist() == [1] and te.tolist() == [0, 2]
    with pytest.raises(ReplearnInputError, match=r"\[7\] do not occur"):
        split_by_classes(y, [0, 7])
    with pytest.raises(ReplearnInputError, match="none is left"):
        split_by_classes(y, range(5))
    with pytest.raises(ReplearnInputError, match="1..4"):
        split_by_classes(y, 5)
