"""Metric-learning training configuration, saved inside every checkpoint (as nanoGPT saves its model config).

:class:`MetricTrainConfig` names the loss, the miner, the distance and the
optimiser settings of :func:`replearn.lib.metric.trainer.train_metric`. It is a
frozen dataclass: ``to_dict()`` gives plain JSON, ``from_dict()`` rebuilds it,
and ``training_key()`` is what a checkpoint must match to be resumed.

Losses (classes in :mod:`replearn.lib.metric.losses`):

==================  ===============================================================  =========
``loss``            what it is                                                       labels
==================  ===============================================================  =========
``triplet_hinge``   hinge ``max(0, Dp - Dn + margin)`` summed over the negatives,    yes
                    averaged over (anchor, positive) pairs (variant 1)
``triplet_max``     hinge at the hardest negative of each (anchor, positive)         yes
                    (variant 2)
``triplet_mean``    hinge averaged over the mined triplets (pytorch-metric-learning  yes
                    ``TripletMarginLoss`` with ``MeanReducer``)
``smooth_softplus`` ``tau * softplus((Dp - Dn) / tau)`` summed over negatives        yes
``smooth_softmax``  N-pair / (N+1)-tuplet softmax over {p} and the negatives         yes
``infonce``         NT-Xent on two augmented views (SimCLR); needs ``augment``       no
``supcon``          supervised contrastive L^sup_out (Khosla et al. 2020)            yes
==================  ===============================================================  =========

The five triplet-family losses (``triplet_*``, ``smooth_*``) take their triplets
from ``miner``; ``infonce`` and ``supcon`` use every pair of the batch and accept
only ``miner="all"``.

Index mining (``mining``): ``"batch"`` (default) mines in the batch only, as
above; ``"index"`` trains on triplets mined from a FAISS index over the whole
training set with the current encoder (:mod:`replearn.lib.metric.index_mining`,
ANCE), refreshed every ``mining_refresh`` epochs; ``"both"`` adds the two
losses. Index mining needs a triplet-family loss.

Default distance rule: ``distance=None`` means ``"euclidean"`` for the
triplet-family losses (margins and Euclidean distances on unit vectors as in
FaceNet) and ``"cosine_distance"`` for ``infonce`` / ``supcon`` (the cosine
similarity of SimCLR and SupCon). :attr:`MetricTrainConfig.resolved_distance`
applies the rule; ``None`` stays in the field so that ``dataclasses.replace(cfg,
loss=...)`` picks the new loss's default.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

from replearn.lib.dataclass_config import Config, ConfigError, check_fields, range_checks, setting
from replearn.lib.errors import ReplearnInputError

LossKind = Literal["triplet_hinge", "triplet_max", "triplet_mean", "smooth_softplus", "smooth_softmax",
                   "infonce", "supcon"]
MinerKind = Literal["all", "batch_hard", "semi_hard"]
MiningKind = Literal["batch", "index", "both"]
DistanceKind = Literal["euclidean", "squared_euclidean", "cosine_distance", "inner_product"]
EncoderKind = Literal["cnn", "mlp"]

#: the kinds of :func:`~replearn.lib.metric.distances.pairwise_distance`
DISTANCES: tuple[str, ...] = typing.get_args(DistanceKind)

TRIPLET_LOSSES: tuple[str, ...] = ("triplet_hinge", "triplet_max", "triplet_mean", "smooth_softplus",
                                   "smooth_softmax")
LOSSES: tuple[str, ...] = TRIPLET_LOSSES + ("infonce", "supcon")
MINERS: tuple[str, ...] = ("all", "batch_hard", "semi_hard")
MINING: tuple[str, ...] = typing.get_args(MiningKind)
#: the settings of index mining, which a ``mining="batch"`` run ignores (left out of its checkpoint key)
MINING_SETTINGS: tuple[str, ...] = ("mining_refresh", "mining_k", "mining_negatives")


# The index-mining settings shared by every config that mines from an index (MetricTrainConfig, ClipConfig):
# declared once here (default, help, range); each config has its own ``mining`` field, whose words differ.

def mining_refresh_setting() -> Any:
    """The ``mining_refresh`` field: epochs between refreshes, 1..1000 (default 1)."""
    return setting(1, help="Epochs between refreshes of the index-mined negatives with the current model (mining "
                           "index or both)", ge=1, le=1000)


def mining_k_setting() -> Any:
    """The ``mining_k`` field: nearest neighbours searched per anchor at once, 1..2048 (default 100)."""
    return setting(100, help="Nearest neighbours searched per anchor at once for its negatives (mining index or "
                             "both; anchors with none among them are searched again)", ge=1, le=2048)


def mining_negatives_setting() -> Any:
    """The ``mining_negatives`` field: hardest negatives kept per anchor, 1..100 (default 1)."""
    return setting(1, help="Hardest negatives kept per anchor (mining index or both)", ge=1, le=100)


def without_mining(settings: dict) -> dict:
    """``settings`` without ``mining`` and :data:`MINING_SETTINGS` when its ``mining`` is ``"batch"`` (or absent):
    what a batch run's checkpoint and stage keys hold, those of a run made before index mining existed."""
    if settings.get("mining", "batch") != "batch":
        return settings
    return {k: v for k, v in settings.items() if k not in ("mining", *MINING_SETTINGS)}


@dataclass(frozen=True)
class AugmentConfig(Config):
    """Ranges of the random transforms (defaults suit 28x28 MNIST digits).

    Attributes:
        max_rotation_deg: rotation drawn uniformly from [-r, r] degrees, 0 <= r <= 180 (default 15).
        scale_min, scale_max: isotropic scale drawn uniformly from [scale_min, scale_max],
            0 < scale_min <= scale_max (default 0.9..1.1).
        max_translate_px: shift in x and y drawn independently and uniformly from
            [-t, t] pixels, t >= 0 (default 2, i.e. 7 % of a 28-pixel side; use about 0.5
            for the 8x8 digits, where 2 px is a quarter of the image).
        erase_prob: probability in [0, 1] that an image gets one erased rectangle (set to 0).
        erase_area_min, erase_area_max: the rectangle's area as a fraction of the
            image, 0 < min <= max <= 1 (default 2 %..10 %); aspect ratio in [1/2, 2].
        noise_prob: probability in [0, 1] that an image that was not erased gets noise.
        noise_std: standard deviation of the additive Gaussian noise, >= 0 (default 0.05);
            the result is clamped to [0, 1].
    """

    max_rotation_deg: float = setting(15.0, help="Largest random rotation, degrees", ge=0.0, le=180.0)
    scale_min: float = setting(0.9, help="Smallest random scale (<= scale_max)", gt=0.0)
    scale_max: float = setting(1.1, help="Largest random scale", gt=0.0)
    max_translate_px: float = setting(2.0, help="Largest random shift in x and y, pixels", ge=0.0)
    erase_prob: float = setting(0.5, help="Probability that an image gets one erased rectangle", ge=0.0, le=1.0)
    erase_area_min: float = setting(0.02, help="Smallest erased area, fraction of the image (<= erase_area_max)",
                                    gt=0.0, le=1.0)
    erase_area_max: float = setting(0.10, help="Largest erased area, fraction of the image", gt=0.0, le=1.0)
    noise_prob: float = setting(0.5, help="Probability that an image not erased gets Gaussian noise", ge=0.0,
                                le=1.0)
    noise_std: float = setting(0.05, help="Standard deviation of the additive Gaussian noise", ge=0.0)

    def __post_init__(self) -> None:
        checks = range_checks(self)
        checks["scale_min"] = checks["scale_min"] and checks["scale_max"] and self.scale_min <= self.scale_max
        del checks["scale_max"]  # reported as scale_min, as before
        checks["erase_area_min"] = (checks["erase_area_min"] and checks["erase_area_max"]
                                    and self.erase_area_min <= self.erase_area_max)
        del checks["erase_area_max"]
        check_fields(self, checks)


@dataclass(frozen=True)
class EncoderConfig(Config):
    """Architecture of an image encoder.

    Attributes:
        kind: ``"cnn"`` (:class:`SmallCNN`) or ``"mlp"`` (:class:`MLPEncoder`).
        in_size: side of the square input images in pixels, >= 1 (8 for sklearn digits, 28 for MNIST).
        in_channels: input channels, >= 1 (1 for grayscale).
        channels: for ``cnn`` the output channels of each conv block (one 2x2
            max-pool per block while the feature map is at least 2 pixels wide);
            for ``mlp`` the widths of the hidden layers (may be empty: a linear map).
            Each entry >= 1. Default (32, 64, 128).
        dim: embedding dimension, 1..4096 (default 32, the bench/README.md metric grid's).
        normalize: L2-normalise the output onto the unit sphere (default True).
    """

    kind: EncoderKind = setting("cnn", help="Encoder: a small CNN or an MLP")
    in_size: int = setting(28, help="Side of the square input images, pixels", ge=1)
    in_channels: int = setting(1, help="Input channels (1 = grayscale)", ge=1)
    channels: tuple[int, ...] = setting((32, 64, 128), help="CNN conv block widths, or MLP hidden layer widths")
    dim: int = setting(32, help="Embedding dimension", ge=1, le=4096)
    normalize: bool = setting(True, help="L2-normalise the output onto the unit sphere")

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))  # lists from JSON -> tuple
        checks = range_checks(self)
        checks["channels"] = all(c >= 1 for c in self.channels) and (self.kind == "mlp" or len(self.channels) >= 1)
        check_fields(self, checks)


def default_channels(image_size: int) -> tuple[int, ...]:
    """SmallCNN block widths for images of ``image_size`` pixels: (16, 32) up to 8x8 (two 2x2 pools reach 2x2),
    else (16, 32, 64) (the bench/README.md metric grid's CNN on 28x28 MNIST)."""
    return (16, 32) if image_size <= 8 else (16, 32, 64)


@dataclass(frozen=True)
class MetricTrainConfig(Config):
    """Hyperparameters of one metric-learning run.

    Attributes:
        loss: one of :data:`LOSSES` (table in the module docstring). Default ``"supcon"``.
        miner: ``"all"`` (every valid triplet of the batch), ``"batch_hard"`` (hardest
            positive and negative per anchor, Hermans et al. 2017) or ``"semi_hard"``
            (``Dp < Dn < Dp + margin``, FaceNet); used by the triplet-family losses,
            must be ``"all"`` for ``infonce`` / ``supcon``. Default ``"all"``: on the MNIST
            grid (bench/README.md) it beat batch-hard for 3 of the 5 triplet losses, mean
            MAP@R 0.494 against 0.480; on the 8x8 digits (3 seeds, mean of the 5 losses) they tie
            at the default 10 epochs (0.382 against 0.384) and batch-hard leads at 3 epochs
            (0.393 against 0.355).
        mining: ``"batch"`` (default: triplets from ``miner`` in each batch, as before index mining
            existed), ``"index"`` (each batch's images are anchors of triplets mined from a FAISS index over
            the whole training set, :mod:`replearn.lib.metric.index_mining`; ANCE, Xiong et al. 2021) or
            ``"both"`` (the in-batch loss plus the mined triplets' loss). ``index`` / ``both`` need a loss of
            :data:`TRIPLET_LOSSES`.
        mining_refresh: >= 1 (default 1); the triplets are mined again, with the current encoder, before
            epochs 1, 1 + r, 1 + 2r, ... (ANCE refreshes its index asynchronously every few thousand steps).
        mining_k: >= 1 (default 100): nearest neighbours searched per anchor at once; the false-negative guard
            removes those of the anchor's class, the nearest remaining ones are its negatives. An anchor whose
            ``k`` nearest are all of its class is searched again among the other classes, so ``k`` changes the
            time a refresh takes, not the negatives (:mod:`replearn.lib.metric.index_mining`).
        mining_negatives: >= 1 (default 1): hardest negatives kept per anchor (sentence-transformers'
            ``num_negatives``); each adds an image per anchor to a batch.
        distance: a kind of :func:`~replearn.lib.metric.distances.pairwise_distance`
            or ``None`` for the default rule (module docstring).
        margin: triplet margin m >= 0 (default 0.2, FaceNet's value on unit vectors; also
            the semi-hard window).
        tau: temperature > 0 of ``smooth_*``, ``infonce`` and ``supcon`` (default 0.1, the
            SupCon paper's value; SimCLR uses 0.1-0.5; about 1 suits ``smooth_*`` on
            unnormalised Euclidean embeddings).
        epochs: passes over the data, >= 1 (an epoch is ceil(N / batch) batches).
        batch_size: images per batch, >= 2 (default 128: on the 8x8 digits, 10 epochs, 3 seeds,
            unseen-class MAP@R 0.375 against 0.360 at 256 for supcon, and higher at 128 for every
            triplet loss with ``miner="all"``). Supervised batches are P x K with
            ``K = batch_size // P``, so up to ``P - 1`` fewer images.
        classes_per_batch: P, the classes in each supervised (PK) batch; ``None``
            picks ``min(#classes, max(1, batch_size // 4))`` (about 4 images a class
            for many classes, Hermans et al. use P=18, K=4). Needs ``batch_size // P >= 2``
            so every sampled class can contribute a positive pair.
        lr: Adam learning rate > 0 (default 1e-3).
        weight_decay: Adam (L2) weight decay >= 0 (default 0).
        seed: >= 0; seeds the batch sampler, the augmentations and the probe batch
            (the encoder's initial weights are the caller's: seed torch before building it).
        collapse_threshold: >= 0; training stops with ``TrainingError`` when the mean
            pairwise Euclidean distance of the probe batch's embeddings falls below it
            (default 1e-3; unit vectors of distinct items are about 1.4 apart). 0 disables.
        augment: ``None`` or the fields of :class:`~replearn.lib.metric.augment.AugmentConfig`
            (a dict or an ``AugmentConfig``; stored as ``AugmentConfig``). ``infonce``
            needs it; ``supcon`` then uses two views per image (the SupCon recipe), the
            triplet losses one augmented view.
        device: torch device string ("cpu", "cuda", "cuda:1", "mps"); not part of the
            checkpoint key, so a run may resume on another device.
    """

    loss: LossKind = setting("supcon", help="Loss: triplet_* and smooth_* on mined triplets, supcon on every "
                                                 "pair, infonce self-supervised (two views)")
    miner: MinerKind = setting("all", help="Triplet miner of the triplet and smooth losses (infonce and supcon use "
                                           "every pair)")
    mining: MiningKind = setting("batch", help="Where the triplets come from: batch (the miner, in each batch), index "
                                               "(hard negatives from a FAISS index over the whole training set, "
                                               "refreshed with the current encoder), both (the two losses added); "
                                               "index and both need a triplet or smooth loss")
    mining_refresh: int = mining_refresh_setting()
    mining_k: int = mining_k_setting()
    mining_negatives: int = mining_negatives_setting()
    distance: DistanceKind | None = setting(None, help="Distance of the loss (empty = euclidean for the triplet "
                                                       "losses, cosine_distance for infonce / supcon)")
    margin: float = setting(0.2, help="Triplet margin (also the semi-hard window)", ge=0.0)
    tau: float = setting(0.1, help="Temperature of the smooth, infonce and supcon losses", gt=0.0)
    epochs: int = setting(10, help="Passes over the training images", ge=1, le=1000, in_training_key=False)
    batch_size: int = setting(128, help="Images per batch (P classes x K images)", ge=2)
    classes_per_batch: int | None = setting(None, help="P, the classes in each supervised batch (empty = "
                                                       "min(classes, batch_size // 4))", ge=1)
    lr: float = setting(1e-3, help="Adam learning rate", gt=0.0)
    weight_decay: float = setting(0.0, help="Adam (L2) weight decay", ge=0.0)
    seed: int = setting(0, help="Random seed of the batches and augmentations", ge=0)
    collapse_threshold: float = setting(1e-3, help="Stop when the probe batch's mean pairwise distance falls below "
                                                   "this (0 = off)", ge=0.0)
    augment: AugmentConfig | None = setting(None, help="Random views (AugmentConfig; empty = none)")
    device: str = setting("cpu", help="Torch device (cpu, cuda, cuda:1, mps)", in_training_key=False)

    def __post_init__(self) -> None:
        aug = self.augment
        if isinstance(aug, dict):
            unknown = sorted(set(aug) - {f.name for f in dataclasses.fields(AugmentConfig)})
            if unknown:
                raise ReplearnInputError(f"invalid MetricTrainConfig: unknown augment field(s) {unknown}; "
                                         f"see AugmentConfig for the names")
            try:
                aug = AugmentConfig.from_dict(aug)
            except (TypeError, ValueError) as e:
                err = ReplearnInputError(f"invalid MetricTrainConfig: augment: {e}")
                if isinstance(e, ConfigError):  # which settings failed, for the flow parameters
                    err.config, err.fields = e.config, e.fields
                raise err from None
            object.__setattr__(self, "augment", aug)
        elif aug is not None and not isinstance(aug, AugmentConfig):
            raise ReplearnInputError(f"invalid MetricTrainConfig: augment must be None, a dict or an "
                                     f"AugmentConfig, got {type(aug).__name__}")
        bad = [n for n, ok in range_checks(self).items() if not ok]
        if bad:
            values = ", ".join(f"{n}={getattr(self, n)!r}" for n in bad)
            hint = ""
            if "loss" in bad:
                hint += f" (loss: one of {', '.join(LOSSES)})"
            if "miner" in bad:
                hint += f" (miner: one of {', '.join(MINERS)})"
            if "mining" in bad:
                hint += f" (mining: one of {', '.join(MINING)})"
            if "distance" in bad:
                hint += f" (distance: None or one of {', '.join(DISTANCES)})"
            raise ReplearnInputError(f"invalid MetricTrainConfig: {values}{hint}; see the MetricTrainConfig "
                                     f"docstring for ranges")
        if self.classes_per_batch is not None and self.batch_size // self.classes_per_batch < 2:
            raise ReplearnInputError(
                f"invalid MetricTrainConfig: batch_size={self.batch_size} // classes_per_batch="
                f"{self.classes_per_batch} gives K < 2 images per class, so no batch holds a positive pair; "
                f"raise batch_size to at least {2 * self.classes_per_batch} or lower classes_per_batch")
        if self.loss not in TRIPLET_LOSSES and self.miner != "all":
            raise ReplearnInputError(f"invalid MetricTrainConfig: miner={self.miner!r} with loss={self.loss!r}; "
                                     f"{self.loss} uses every pair of the batch, so set miner='all' (miners "
                                     f"apply to {', '.join(TRIPLET_LOSSES)})")
        if self.mining != "batch" and self.loss not in TRIPLET_LOSSES:
            raise ReplearnInputError(f"mining={self.mining!r} (--mining) needs a triplet loss, and loss is "
                                     f"{self.loss!r} (--loss), which trains on the pairs of each batch and has no "
                                     f"triplets to mine: set loss to one of {', '.join(TRIPLET_LOSSES)} (e.g. "
                                     f"--loss triplet_hinge), or mining='batch'")
        if self.loss == "infonce" and self.augment is None:
            raise ReplearnInputError("invalid MetricTrainConfig: loss='infonce' needs augment (two random views "
                                     "of each image are its positive pair); pass augment={} for the default "
                                     "AugmentConfig, or e.g. {'max_translate_px': 0.5} for 8x8 digits")
        try:
            import torch

            torch.device(self.device)
        except (RuntimeError, TypeError) as e:
            raise ReplearnInputError(f"invalid MetricTrainConfig: device={self.device!r} ({e}); "
                                     f"use e.g. 'cpu' or 'cuda'") from None

    @property
    def supervised(self) -> bool:
        """True when the loss uses labels (every loss but ``infonce``)."""
        return self.loss != "infonce"

    @property
    def resolved_distance(self) -> str:
        """``distance``, or the default for ``loss`` when it is None (module docstring)."""
        if self.distance is not None:
            return self.distance
        return "euclidean" if self.loss in TRIPLET_LOSSES else "cosine_distance"

    def training_key(self) -> dict:
        """The fields that shape the trained weights, used to match a checkpoint for resuming.

        ``device`` is left out (a run may resume elsewhere) and so is ``epochs``
        (the learning rate is constant and each epoch's randomness depends only on
        ``seed`` and the epoch number, so a finished run can be extended); the
        distance appears resolved, so ``None`` and its explicit default match.
        With ``mining="batch"`` the mining fields (``mining`` and :data:`MINING_SETTINGS`,
        which such a run ignores) are left out, so its checkpoints are those of a
        run made before index mining existed.
        """
        return without_mining({**super().training_key(), "distance": self.resolved_distance})
