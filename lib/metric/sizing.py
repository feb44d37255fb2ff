"""Settings that follow the image size: the encoder's layers and the augmentation's shifts.

The metric flow's parameters name an encoder kind and an embedding dimension;
the input side comes from the data. Small images (8x8 digits) get two
convolution blocks, larger ones (28x28 MNIST) three, and the random shifts of
the augmentation scale with the image: 2 px on MNIST's 28, 0.57 px on 8x8.
"""

from __future__ import annotations

from typing import Any

SMALL_IMAGE = 8
"""Images of at most this many pixels a side count as small (two convolution blocks)."""

SHIFT_PX_AT_28 = 2.0
"""Largest augmentation shift, in pixels, on a 28-pixel image; proportional on other sizes."""


def encoder_settings(kind: str, dim: int, image_size: int) -> dict[str, Any]:
    """Fields of :class:`~replearn.lib.metric.encoders.EncoderConfig` for ``image_size`` x ``image_size`` inputs:
    ``kind`` (cnn / mlp), ``in_size``, ``dim``, ``channels`` ([16, 32] for small images, else [16, 32, 64]) and
    ``normalize`` (unit-length embeddings, always)."""
    channels = [16, 32] if image_size <= SMALL_IMAGE else [16, 32, 64]
    return {"kind": kind, "in_size": image_size, "dim": dim, "channels": channels, "normalize": True}


def sized_train_config(train_config: dict[str, Any], image_size: int) -> dict[str, Any]:
    """``train_config`` (fields of :class:`~replearn.lib.metric.config.MetricTrainConfig`) with the augmentation,
    when on (not ``None``), set to shifts of at most ``2 * image_size / 28`` pixels (rounded to 0.01); a new dict."""
    cfg = dict(train_config)
    if cfg.get("augment") is not None:
        cfg["augment"] = {"max_translate_px": round(SHIFT_PX_AT_28 * image_size / 28, 2)}
    return cfg
