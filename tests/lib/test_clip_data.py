"""Pairs: digit captions with a template split, users' Parquet / CSV with bad rows, count mismatches."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replearn.lib.clip.data import PairsError, digit_pairs, load_pairs, make_pairs
from replearn.lib.clip.text_tower import CaptionError
from replearn.lib.metric.images import load_digits_8x8


def _png(size=(12, 9), mode="RGB") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, color=(128, 128, 128) if mode == "RGB" else 128).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def digits8():
    return load_digits_8x8()


def test_digit_pairs_split_and_templates(digits8):
    p = digit_pairs(digits8, n_test=300, seed=0, n_test_templates=3)
    assert len(p.train_images) == len(digits8) - 300 and len(p.test) == 300
    assert set(p.train_templates).isdisjoint(p.test_templates)
    assert p.train_captions(0) == p.train_captions(0) and p.train_captions(0) != p.train_captions(1)
    names = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    for cap, y in zip(p.test.captions, p.test.labels):  # every caption names its own digit
        assert names[y] in cap.split() or str(y) in cap.split()
    again = digit_pairs(digits8, n_test=300, seed=0, n_test_templates=3)
    assert again.test.captions == p.test.captions and again.test.keys == p.test.keys


def test_digit_pairs_rejects_bad_split(digits8):
    with pytest.raises(PairsError, match="holds out"):
        digit_pairs(digits8, n_test=0)


def test_make_pairs_count_mismatch_and_empty_caption():
    x = np.zeros((3, 1, 8, 8), dtype=np.float32)
    with pytest.raises(PairsError, match="3 images but 2 captions"):
        make_pairs(x, ["a one", "a two"])
    with pytest.raises(CaptionError, match=r"row 2 \('\.\.\.'\)"):
        make_pairs(x, ["a one", "a two", "..."])
    assert len(make_pairs(x[:, 0], ["a", "b", "c"])) == 3


def test_load_parquet_bytes_paths_and_bad_rows(tmp_path):
    (tmp_path / "img.png").write_bytes(_png((40, 30)))
    (tmp_path / "empty.png").write_bytes(b"")
    # bytes and paths cannot share an Arrow column: use the Hugging Face {bytes, path} struct
    rows = [{"bytes": _png(), "path": None}, {"bytes": b"not an image", "path": None}, {"bytes": b"", "path": None},
            None, {"bytes": None, "path": "img.png"}, {"bytes": None, "path": "missing.png"},
            {"bytes": None, "path": "empty.png"}]
    caps = ["a grey square", "broken", "zero bytes", "null", "a big grey square", "gone", "empty file"]
    table = pa.table({"image": rows, "caption": caps})
    pq.write_table(table, tmp_path / "pairs.parquet")
    with pytest.warns(UserWarning, match="skipped 5 unreadable image"):
        p = load_pairs(tmp_path / "pairs.parquet", size=16)
    assert p.images.shape == (2, 1, 16, 16) and p.captions == ["a grey square", "a big grey square"]
    assert p.n_skipped == 5
    reasons = {s.source.split("#row=")[1].split()[0]: s.reason for s in p.skipped}
    assert set(reasons) == {"1", "2", "3", "5", "6"}
    assert "zero-byte" in reasons["2"] and "null" in reasons["3"] and "not found" in reasons["5"]
    assert "zero-byte" in reasons["6"]
    assert np.allclose(p.images, 128 / 255, atol=1e-3)


def test_load_csv_paths(tmp_path):
    (tmp_path / "a.png").write_bytes(_png((5, 5), "L"))
    (tmp_path / "pairs.csv").write_text("image,caption\na.png,a small grey patch\na.png,the same patch\n")
    p = load_pairs(tmp_path / "pairs.csv", size=8)
    assert len(p) == 2 and p.keys == ["a.png", "a.png"] and p.n_skipped == 0


def test_load_rejects_empty_captions_before_decoding(tmp_path):
    pq.write_table(pa.table({"img": [_png(), _png(), _png()], "text": ["a square", "  ", None]}),
                   tmp_path / "p.parquet")
    with pytest.raises(CaptionError, match=r"2 caption\(s\) in .*p\.parquet column 'text'.*row 1.*row 2"):
        load_pairs(tmp_path / "p.parquet", image_column="img", caption_column="text")


def test_load_missing_column_and_file(tmp_path):
    pq.write_table(pa.table({"img": [_png()], "caption": ["x"]}), tmp_path / "p.parquet")
    with pytest.raises(PairsError, match=r"no column 'image'.*\['img', 'caption'\]"):
        load_pairs(tmp_path / "p.parquet")
    with pytest.raises(PairsError, match="not found"):
        load_pairs(tmp_path / "nope.parquet")


def test_load_all_unreadable_raises(tmp_path):
    pq.write_table(pa.table({"image": [b"junk", b""], "caption": ["a", "b"]}), tmp_path / "p.parquet")
    with pytest.raises(PairsError, match="no readable image"):
        load_pairs(tmp_path / "p.parquet")
