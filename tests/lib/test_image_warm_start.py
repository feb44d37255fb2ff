"""Warm starts of the image families (``--init-from``): a saved metric encoder or CLIP model read back, told from
another family's file, compared setting by setting, and its weights loaded into a fresh model (CLIP's caption
tokens by token)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from replearn.lib.clip.model import (ClipConfig, architecture_differences, build_model, model_state, read_model_state,
                                     warm_start)
from replearn.lib.clip.image_tower import ImageTowerConfig
from replearn.lib.clip.text_tower import PAD, UNK, TextTowerConfig
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.config import EncoderConfig, MetricTrainConfig
from replearn.lib.metric.encoder_file import encoder_differences, read_encoder_file, save_encoder
from replearn.lib.metric.encoders import build_encoder

TINY_ENCODER = EncoderConfig(kind="cnn", in_size=8, channels=(4, 8), dim=6)
TINY_CLIP = ClipConfig(image=ImageTowerConfig(in_size=8, channels=(4, 8), width=8), text=TextTowerConfig(width=8),
                       dim=6)


@pytest.fixture
def encoder_file(tmp_path):
    torch.manual_seed(1)
    encoder = build_encoder(TINY_ENCODER)
    path = tmp_path / "encoder.pt"
    save_encoder(path, encoder, TINY_ENCODER, MetricTrainConfig())
    return path, encoder


@pytest.fixture
def clip_file(tmp_path):
    model = build_model(dataclasses.replace(TINY_CLIP, seed=1), ["a black cat", "a white dog", "one cat"])
    with torch.no_grad():
        model.logit_scale.fill_(3.0)
    path = tmp_path / "model.pt"
    torch.save(model_state(model), path)
    return path, model


def test_an_encoder_file_reads_back_and_its_weights_fit_an_encoder_of_the_same_settings(encoder_file):
    path, encoder = encoder_file
    cfg, state = read_encoder_file(path)
    assert cfg == TINY_ENCODER and encoder_differences(cfg, TINY_ENCODER) == {}
    torch.manual_seed(2)
    fresh = build_encoder(TINY_ENCODER)
    fresh.load_state_dict(state)
    for (name, a), b in zip(encoder.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    other = dataclasses.replace(TINY_ENCODER, dim=12, in_size=28)
    assert encoder_differences(cfg, other) == {"in_size": (8, 28), "dim": (6, 12)}


def test_each_family_refuses_the_others_file(encoder_file, clip_file, tmp_path):
    with pytest.raises(ReplearnInputError, match="is not a metric-learning encoder file.*replearn-metric"):
        read_encoder_file(clip_file[0])
    with pytest.raises(ReplearnInputError, match="is not a CLIP model file.*replearn-clip"):
        read_model_state(encoder_file[0])
    npz = tmp_path / "vectors.npz"  # a word-vector model's file
    import numpy as np

    np.savez(npz, input=np.zeros((2, 3), np.float32))
    for read in (read_encoder_file, read_model_state):
        with pytest.raises(ReplearnInputError, match="--init-from"):
            read(npz)
        with pytest.raises(ReplearnInputError, match="not found"):
            read(tmp_path / "missing.pt")


def test_clip_warm_start_loads_both_towers_and_the_scale_and_carries_caption_tokens_by_token(clip_file):
    path, saved = clip_file
    state = read_model_state(path)
    assert architecture_differences(ClipConfig.from_dict(state["config"]), TINY_CLIP) == {}
    # new captions: "cat" and "a" are known, "bird" and "red" are new, "dog", "black", "white", "one" dropped
    model = build_model(TINY_CLIP, ["a red bird", "a cat", "a cat"])
    fresh = model.text.embed.weight.detach().clone()
    kept, tokens = warm_start(model, state)
    assert (kept, tokens) == (2, 4)
    old_ids = {t: i + 2 for i, t in enumerate(saved.vocab.tokens)}
    new_rows, old_rows = model.text.embed.weight.detach(), saved.text.embed.weight.detach()
    for i, t in enumerate(model.vocab.tokens):  # a plain loop as the reference
        expected = old_rows[old_ids[t]] if t in old_ids else fresh[i + 2]
        assert torch.equal(new_rows[i + 2], expected), t
    assert torch.equal(new_rows[PAD], old_rows[PAD]) and torch.equal(new_rows[UNK], old_rows[UNK])
    ours, theirs = model.state_dict(), saved.state_dict()
    for name in ours:
        if name != "text.embed.weight":
            assert torch.equal(ours[name], theirs[name]), name
    assert model.scale == pytest.approx(float(torch.tensor(3.0).exp()))


def test_clip_architecture_differences_name_the_settings_that_shape_the_towers():
    saved = TINY_CLIP
    assert architecture_differences(saved, dataclasses.replace(saved, lr=1e-5, epochs=3, seed=7)) == {}
    assert architecture_differences(saved, dataclasses.replace(saved, text=TextTowerConfig(width=8, min_count=2))) == {}
    assert architecture_differences(saved, dataclasses.replace(saved, text=TextTowerConfig(width=8, max_len=4))) == {}
    other = dataclasses.replace(saved, dim=12, image=ImageTowerConfig(in_size=28, channels=(4, 8), width=8),
                                text=TextTowerConfig(kind="transformer", width=8, heads=2))
    assert architecture_differences(saved, other) == {"dim": (6, 12), "image.in_size": (8, 28),
                                                      "text.kind": ("bag", "transformer")}
    transformer = dataclasses.replace(saved, text=TextTowerConfig(kind="transformer", width=8, heads=2))
    assert architecture_differences(transformer, dataclasses.replace(
        saved, text=TextTowerConfig(kind="transformer", width=8, heads=4, max_len=16))) == {
        "text.heads": (2, 4), "text.max_len": (32, 16)}
