"""Settings that follow the image size: the encoder's layers and the augmentation's shifts.

The metric flow's parameters name an encoder kind and an embedding dimension;
the input side comes from the data. Small images (8x8 digits) get two
convolution blocks, larger ones (28x28 MNIST) three, and the random shifts of
the augmentation scale with the image: 2 px on MNIST's 28, 0.57 px on 8x8.
"""

from __future__ import annotations

from typing import Any

from replearn.lib.metric.config import default_channels

SHIFT_PX_AT_28 = 2.0
"""Largest augmentation shift, in pixels, on a 28-pixel image; proportional on other sizes."""


def encoder_settings(encoder: dict[str, Any], image_size: int) -> dict[str, Any]:
    """Fields of :class:`~replearn.lib.metric.config.EncoderConfig` for ``image_size`` x ``image_size`` inputs:
    the user's ``encoder`` fields (``kind``, ``dim``, ...) plus ``in_size``, ``channels``
    (:func:`~replearn.lib.metric.config.default_channels`) and ``normalize`` (unit-length embeddings, always)."""
    return {**encoder, "in_size": image_size, "channels": list(default_channels(image_size)), "normalize": True}


def sized_train_config(train_config: dict[str, Any], image_size: int) -> dict[str, Any]:
    """``train_config`` (fields of :class:`~replearn.lib.metric.config.MetricTrainConfig`) with the augmentation's
    largest shift, when augmentation is on (not ``None``), read as pixels on a 28-pixel side and scaled to
    ``image_size`` (rounded to 0.01): the default 2 px stays 2 px on MNIST and becomes 0.57 px on 8x8 digits. The
    other augmentation settings are kept; a new dict."""
    cfg = dict(train_config)
    if cfg.get("augment") is not None:
        shift = cfg["augment"].get("max_translate_px", SHIFT_PX_AT_28)
        cfg["augment"] = {**cfg["augment"], "max_translate_px": round(shift * image_size / 28, 2)}
    return cfg
