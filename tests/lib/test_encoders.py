"""Encoders: output shape (B, dim) on the unit sphere for 8x8 and 28x28 inputs, config round trip through a
checkpoint, zero-safe normalisation, clear input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from replearn.lib.metric.encoders import (EncoderConfig, MLPEncoder, SmallCNN, build_encoder, embed,
                                          l2_normalize)


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
@pytest.mark.parametrize("size", [8, 28])
def test_output_shape_and_unit_norm(kind, size):
    torch.manual_seed(0)
    cfg = EncoderConfig(kind=kind, in_size=size, channels=(8, 16) if kind == "cnn" else (32,), dim=12)
    enc = build_encoder(cfg)
    assert isinstance(enc, SmallCNN if kind == "cnn" else MLPEncoder) and enc.config == cfg
    x = torch.rand(5, 1, size, size)
    z = enc(x)
    assert z.shape == (5, 12) and torch.isfinite(z).all()
    torch.testing.assert_close(z.norm(dim=1), torch.ones(5))
    z.sum().backward()  # differentiable end to end
    assert all(p.grad is not None for p in enc.parameters())


def test_default_cnn_pools_down_to_one_pixel_on_8x8_and_three_on_28():
    assert build_encoder(EncoderConfig(in_size=8)).head.in_features == 128 * 1 * 1
    assert build_encoder(EncoderConfig(in_size=28)).head.in_features == 128 * 3 * 3
    deep = build_encoder(EncoderConfig(in_size=8, channels=(4, 4, 4, 4, 4)))  # pools stop at 1x1
    assert deep(torch.rand(2, 1, 8, 8)).shape == (2, 32)  # EncoderConfig.dim default


def test_normalize_false_gives_raw_outputs():
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig(kind="mlp", in_size=8, channels=(), dim=4, normalize=False))
    z = enc(torch.rand(3, 1, 8, 8) * 10)
    assert not torch.allclose(z.norm(dim=1), torch.ones(3))


def test_l2_normalize_is_safe_for_zero_rows():
    z = torch.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    out = l2_normalize(z)
    torch.testing.assert_close(out.detach(), torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    out.sum().backward()
    assert torch.isfinite(z.grad).all()


def test_config_round_trip_through_a_json_checkpoint(tmp_path):
    cfg = EncoderConfig(kind="cnn", in_size=8, channels=(4, 8), dim=6)
    torch.manual_seed(1)
    enc = build_encoder(cfg).eval()
    ckpt = {"config": cfg.to_dict(), "state_dict": enc.state_dict()}
    json.dumps(ckpt["config"])  # plain JSON
    torch.save(ckpt, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    cfg2 = EncoderConfig.from_dict(loaded["config"])
    assert cfg2 == cfg and cfg2.channels == (4, 8)
    enc2 = build_encoder(cfg2).eval()
    enc2.load_state_dict(loaded["state_dict"])
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(enc(x), enc2(x))


def test_embed_batches_restores_mode_and_matches_forward():
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig(in_size=8, channels=(4,), dim=5))
    enc.train()
    x = np.random.default_rng(0).random((7, 1, 8, 8), dtype=np.float32)
    z = embed(enc, x, batch_size=3)
    assert enc.training and z.shape == (7, 5) and z.dtype == np.float32
    enc.eval()
    np.testing.assert_allclose(z, enc(torch.from_numpy(x)).detach().numpy(), atol=1e-6)


def test_bad_config_and_wrong_input_size():
    with pytest.raises(ValueError, match="kind"):
        EncoderConfig(kind="vit")
    with pytest.raises(ValueError, match="dim"):
        EncoderConfig(dim=0)
    enc = build_encoder(EncoderConfig(in_size=28, channels=(4,)))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\).*in_size=8"):
        enc(torch.rand(2, 1, 8, 8))
