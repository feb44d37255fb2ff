"""Pairs of a source split for the two-tower flow (lib/clip/pairs.py)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replearn.lib.clip.pairs import epoch_captions, held_out_pairs, holdout_split, load_pair_split


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (12, 9), 128).save(buf, format="PNG")
    return buf.getvalue()


def test_digits_split_draws_captions_per_epoch_and_round_trips_through_arrays():
    split = load_pair_split("digits", "image", "caption", epochs=3, n_test=0.2, n_test_templates=3, seed=0)
    n_train = len(split.train_images)
    assert split.train_captions.shape == (3, n_train) and n_train + len(split.test.images) == 1797
    assert split.train_labels is not None and split.skipped == []
    assert not np.array_equal(split.train_captions[0], split.train_captions[1])   # a fresh draw each epoch
    assert set(split.test.captions) <= set(split.gallery) and split.gallery == sorted(set(split.gallery))
    arrays = split.arrays()
    assert "train_labels" in arrays and "test_labels" in arrays
    test = held_out_pairs(arrays)
    assert test.captions == split.test.captions and np.array_equal(test.labels, split.test.labels)
    assert epoch_captions(arrays["train_captions"], 1) == [str(c) for c in split.train_captions[1]]
    assert epoch_captions(arrays["train_captions"], 99) == [str(c) for c in split.train_captions[2]]
    assert split.info() == {"train_pairs": n_train, "test_pairs": len(test.images),
                            "gallery_captions": len(split.gallery), "skipped": 0}


def test_a_users_parquet_holds_out_a_seeded_fraction_and_counts_skipped_rows(tmp_path):
    rows = {"image": [_png()] * 9 + [b"not an image"], "caption": [f"a thing number {i}" for i in range(10)]}
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.table(rows), path)
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        split = load_pair_split(str(path), "image", "caption", epochs=2, n_test=0.25, n_test_templates=3, seed=1)
    assert len(split.skipped) == 1 and split.info()["skipped"] == 1
    assert len(split.test.images) == 2 and len(split.train_images) == 7            # round(0.25 * 9) held out
    assert np.array_equal(split.train_captions[0], split.train_captions[1])        # the same captions each epoch
    assert split.train_labels is None and "train_labels" not in split.arrays()
    assert split.vocab_captions == [str(c) for c in split.train_captions[0]]
    assert held_out_pairs(split.arrays()).labels is None


def test_holdout_split_partitions_and_refuses_too_few_pairs():
    te, tr = holdout_split(10, 0.3, seed=0)
    assert len(te) == 3 and sorted(np.concatenate([te, tr]).tolist()) == list(range(10))
    assert list(te) == sorted(te)
    assert len(holdout_split(3, 0.0, 0)[0]) == 1                                    # at least one held out
    with pytest.raises(ValueError, match="x.csv: 2 readable pairs leave fewer than 2"):
        holdout_split(2, 0.2, 0, "x.csv")
