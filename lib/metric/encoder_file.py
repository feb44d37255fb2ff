"""The trained encoder's file: its weights with the configs that rebuild it (``torch.save`` of a dict).

Keys: ``encoder`` (the ``state_dict``), ``encoder_config``
(:class:`~replearn.lib.metric.encoders.EncoderConfig` as a dict) and
``train_config`` (:class:`~replearn.lib.metric.config.MetricTrainConfig` as a dict).
Loaded with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from replearn.lib.metric.config import MetricTrainConfig
from replearn.lib.metric.encoders import EncoderConfig, build_encoder
from replearn.lib.store.atomic import atomic_path


def save_encoder(path: Path | str, encoder: torch.nn.Module, encoder_config: EncoderConfig,
                 train_config: MetricTrainConfig) -> None:
    """Write the encoder file at ``path`` atomically (a temporary name, then renamed)."""
    with atomic_path(Path(path)) as tmp:
        torch.save({"encoder": encoder.state_dict(), "encoder_config": encoder_config.to_dict(),
                    "train_config": train_config.to_dict()}, tmp)


def untrained_encoder(path: Path | str) -> torch.nn.Module:
    """A freshly initialised encoder of the architecture stored in the file at ``path``."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    return build_encoder(EncoderConfig.from_dict(ck["encoder_config"]))


def load_encoder(path: Path | str) -> torch.nn.Module:
    """Rebuild the trained encoder from the file at ``path`` (in eval mode, on the CPU)."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    encoder = build_encoder(EncoderConfig.from_dict(ck["encoder_config"]))
    encoder.load_state_dict(ck["encoder"])
    return encoder.eval()
