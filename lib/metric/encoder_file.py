"""The trained encoder's file: its weights with the configs that rebuild it (``torch.save`` of a dict).

Keys: ``encoder`` (the ``state_dict``), ``encoder_config``
(:class:`~replearn.lib.metric.encoders.EncoderConfig` as a dict) and
``train_config`` (:class:`~replearn.lib.metric.config.MetricTrainConfig` as a dict).
Loaded with ``weights_only=True``.

A warm start (``--init-from``) reads a registered encoder file with
:func:`read_encoder_file` and loads its weights into the encoder a run builds,
after :func:`encoder_differences` found nothing that differs.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from replearn.lib.errors import ReplearnInputError
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


def read_encoder_file(path: Path | str) -> tuple[EncoderConfig, dict[str, torch.Tensor]]:
    """(encoder config, ``state_dict``) of the encoder file at ``path`` (tensors on the CPU).

    Raises:
        ReplearnInputError: the file is missing, or is not an encoder file written by :func:`save_encoder`
            (another family's model, or a damaged file).
    """
    path = Path(path)
    if not path.is_file():
        raise ReplearnInputError(f"encoder file {path} not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        return EncoderConfig.from_dict(ck["encoder_config"]), dict(ck["encoder"])
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, ValueError) as e:
        raise ReplearnInputError(
            f"{path} is not a metric-learning encoder file ({type(e).__name__}: {e}): continue from a model "
            "registered by the metric flow (replearn-metric), or train from scratch (leave --init-from out)") from None


def encoder_differences(saved: EncoderConfig, wanted: EncoderConfig) -> dict[str, tuple[Any, Any]]:
    """``{field: (saved value, wanted value)}`` of the :class:`EncoderConfig` fields that differ, in field order
    (empty: the weights of an encoder built from ``saved`` fit one built from ``wanted``, and mean the same)."""
    a, b = saved.to_dict(), wanted.to_dict()
    return {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
