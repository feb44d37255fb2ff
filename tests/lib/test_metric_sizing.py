"""Encoder layers and augmentation shifts that follow the image size; the encoder file round trip."""

from __future__ import annotations

import torch

from replearn.lib.metric.config import MetricTrainConfig
from replearn.lib.metric.encoder_file import load_encoder, save_encoder, untrained_encoder
from replearn.lib.metric.encoders import EncoderConfig, build_encoder
from replearn.lib.metric.sizing import encoder_settings, sized_train_config


def test_encoder_settings_small_and_large_images():
    assert encoder_settings({"kind": "cnn", "dim": 16}, 8) == {"kind": "cnn", "in_size": 8, "dim": 16,
                                                               "channels": [16, 32], "normalize": True}
    assert encoder_settings({"kind": "mlp", "dim": 32}, 28)["channels"] == [16, 32, 64]


def test_sized_train_config_scales_shifts_and_leaves_no_augmentation_alone():
    cfg = {"loss": "supcon", "augment": {}}
    assert sized_train_config(cfg, 28)["augment"] == {"max_translate_px": 2.0}
    assert sized_train_config(cfg, 8)["augment"] == {"max_translate_px": 0.57}
    assert cfg == {"loss": "supcon", "augment": {}}                       # a new dict
    user = {"augment": {"max_translate_px": 4.0, "erase_prob": 0.0}}     # the user's shift, at a 28-pixel side
    assert sized_train_config(user, 14)["augment"] == {"max_translate_px": 2.0, "erase_prob": 0.0}
    assert sized_train_config({"augment": None}, 8) == {"augment": None}


def test_encoder_file_round_trip(tmp_path):
    enc_cfg = EncoderConfig.from_dict(encoder_settings({"kind": "cnn", "dim": 8}, 8))
    encoder = build_encoder(enc_cfg)
    path = tmp_path / "encoder.pt"
    save_encoder(path, encoder, enc_cfg, MetricTrainConfig())
    loaded = load_encoder(path)
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded(x), encoder.eval()(x))
    fresh = untrained_encoder(path)
    assert type(fresh) is type(encoder)
    assert sum(p.numel() for p in fresh.parameters()) == sum(p.numel() for p in encoder.parameters())
