"""Digit caption generation: measured attributes, tertile bins, templates and their split, prompts."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.lib.clip.captions import (
    CAPTION_TEMPLATES,
    PROMPT_TEMPLATES,
    AttributeBins,
    all_captions,
    attribute_words,
    class_prompts,
    fill_template,
    generate_captions,
    measure_attributes,
    split_templates,
)
from replearn.lib.errors import ReplearnInputError


def _bar(width: int, shear: float = 0.0, rows: tuple[int, int] = (4, 24), size: int = 28) -> np.ndarray:
    """A vertical bar of ``width`` pixels, its top shifted right by ``shear`` pixels per row up."""
    img = np.zeros((size, size), dtype=np.float32)
    for y in range(*rows):
        x0 = int(round(12 + shear * (rows[1] - y)))
        img[y, x0:x0 + width] = 1.0
    return img


def test_thickness_grows_with_stroke_width():
    att = measure_attributes(np.stack([_bar(1), _bar(2), _bar(4), _bar(6)])[:, None])
    assert np.all(np.diff(att["thickness"]) > 0)
    assert att["thickness"][2] == pytest.approx(4.0, rel=0.35)  # about the width in pixels


def test_slant_sign_and_upright():
    att = measure_attributes(np.stack([_bar(2, shear=-0.3), _bar(2), _bar(2, shear=0.3)]))
    assert att["slant"][0] < -0.1 and abs(att["slant"][1]) < 1e-9 and att["slant"][2] > 0.1


def test_size_is_bounding_box_fraction_and_blank_is_zero():
    att = measure_attributes(np.stack([_bar(4, rows=(10, 14)), _bar(4, rows=(2, 26)), np.zeros((28, 28))]))
    assert att["size"][0] == pytest.approx(4 * 4 / 784)
    assert att["size"][0] < att["size"][1]
    assert att["thickness"][2] == att["slant"][2] == att["size"][2] == 0.0


def test_measure_rejects_bad_shape():
    with pytest.raises(ReplearnInputError, match="grayscale"):
        measure_attributes(np.zeros((2, 3, 8, 8)))


def test_bins_are_per_class_tertiles():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 300)
    att = {"thickness": np.where(labels == 0, 1.0, 5.0) + rng.random(600),
           "slant": rng.normal(size=600), "size": rng.random(600)}
    bins = AttributeBins.fit(att, labels)
    b = bins.bin(att, labels)
    for c in (0, 1):  # each class split about evenly into thin / regular / thick
        counts = np.bincount(b["thickness"][labels == c], minlength=3)
        assert np.all(np.abs(counts - 100) <= 2)
    words = attribute_words(b)
    assert {w["thickness"] for w in words} == {"thin", "regular", "thick"}
    assert AttributeBins.from_dict(bins.to_dict()).bin(att, labels)["size"].tolist() == b["size"].tolist()


def test_bins_need_every_class():
    with pytest.raises(ReplearnInputError, match="class 1 has no training image"):
        AttributeBins.fit({"thickness": np.ones(2), "slant": np.ones(2), "size": np.ones(2)}, np.array([0, 2]))


def test_split_templates_is_deterministic_and_disjoint():
    train, test = split_templates(n_test=3, seed=0)
    assert split_templates(n_test=3, seed=0) == (train, test)
    assert len(test) == 3 and not set(train) & set(test)
    assert set(train) | set(test) == set(CAPTION_TEMPLATES)
    assert CAPTION_TEMPLATES[0] in train
    assert split_templates(n_test=3, seed=1) != (train, test)
    with pytest.raises(ReplearnInputError, match="at least one template"):
        split_templates(n_test=len(CAPTION_TEMPLATES))


def test_fill_template_uses_names_digits_and_articles():
    w = {"thickness": "thick", "slant": "upright", "size": "small"}
    assert fill_template("a {thickness} {name}", 7, w) == "a thick seven"
    assert fill_template("a handwritten {digit} {slant}", 7, w) == "a handwritten 7 upright"
    assert fill_template("a {name}", 8) == "an eight"
    assert fill_template("a {digit}", 8) == "an 8"


def test_generate_captions_reproducible_and_uses_both_forms():
    labels = np.arange(10).repeat(20)
    words = [{"thickness": "thin", "slant": "upright", "size": "large"}] * len(labels)
    a = generate_captions(labels, words, CAPTION_TEMPLATES, np.random.default_rng(3))
    b = generate_captions(labels, words, CAPTION_TEMPLATES, np.random.default_rng(3))
    assert a == b and len(a) == 200
    assert any("seven" in c for c in a) and any(" 7" in c for c in a)


def test_prompts_and_all_captions():
    p = class_prompts()
    assert len(p) == 10 and all(len(row) == len(PROMPT_TEMPLATES) for row in p)
    assert "the number 3" in p[3]
    caps = all_captions(["a {thickness} {name}"])
    assert len(caps) == 30 and "a thick seven" in caps
