"""Training loops for image encoders: metric learning (triplet / contrastive losses) and a classifier baseline.

:func:`train_metric` trains an encoder (``images (B, C, H, W) -> (B, dim)``) with
one of the losses of :class:`~replearn.lib.metric.config.MetricTrainConfig`:

* **Batches.** Supervised losses draw PK batches (Hermans et al. 2017, sec. 4):
  P classes, K = ``batch_size // P`` images of each, so every batch holds
  positive pairs. Each class's images are visited in a fresh random order,
  cycling when a class is used up, so all images are seen about equally often.
  A class with fewer than K images contributes all of them. ``infonce`` ignores
  labels and draws plain shuffled batches. An epoch is ``ceil(N / (P*K))``
  batches (``ceil(N / batch_size)`` for ``infonce``).
* **Views.** ``infonce`` makes two augmented views per image (SimCLR);
  ``supcon`` with ``augment`` also uses two views (labels repeated, Khosla et al.
  2020); the triplet losses use one augmented view when ``augment`` is set.
* **Mining.** For the triplet-family losses, ``miner="batch_hard"`` /
  ``"semi_hard"`` pass the mined ``(a, p, n)`` indices to the loss;
  ``miner="all"`` passes the labels, which scores every triplet of the batch
  without listing them (same value as ``all_triplets`` indices, O(B^2) memory).
* **Index mining.** With ``mining="index"`` / ``"both"`` the triplets come
  from a FAISS index over the whole training set (:mod:`replearn.lib.metric.index_mining`;
  ANCE, Xiong et al. 2021). Before epochs 1, ``1 + mining_refresh``, ... the
  whole training set is embedded with the current encoder (eval mode, no
  gradient) and mined again (:func:`~replearn.lib.metric.mining_refresh.refresh_mining`;
  ``on_refresh`` sees each refresh); triplets passed as ``mined`` (the metric
  flow's mine stage's table) replace the refresh before epoch 1. The batches stay the PK batches above: each
  batch's images are anchors, and the batch also holds their mined positives and
  negatives (so up to ``(2 + mining_negatives) x batch_size`` images go through
  the encoder together, batch norm included). ``"index"`` trains the configured
  triplet loss on those triplets only (``miner`` unused); ``"both"`` adds it to the
  in-batch loss of the PK images (mined by ``miner`` as usual). The triplets in
  use are saved with each checkpoint, so a resumed run trains on what the
  uninterrupted run trained on (a checkpoint without them is mined again).
* **Empty batches.** A batch whose loss had ``n_valid == 0`` (no positive pair,
  e.g. every label distinct) is counted in ``EpochLog.empty_batches`` and takes
  no optimiser step (a zero gradient would still move Adam's momentum).
* **Reproducibility.** Every random draw comes from ``numpy`` / ``torch``
  generators seeded by ``(config.seed, epoch)``, so with one thread
  (``torch.set_num_threads(1)``) and the same initial weights two runs give
  identical weights, and a run resumed from epoch e's checkpoint continues
  exactly as the uninterrupted run did.
* **Checkpoints.** After every epoch ``<checkpoint_dir>/epoch-0003.pt`` holds the
  encoder's ``state_dict``, the optimiser state, the config, the encoder config
  (``encoder.config.to_dict()`` when the encoder has one, so
  ``build_encoder(EncoderConfig.from_dict(ckpt["encoder_config"]))`` rebuilds it),
  the epoch, the history and, with index mining, the triplets in use (``"mined"``:
  their arrays as tensors and their metadata); it is written to a temporary name and renamed
  (:mod:`replearn.lib.checkpoint`). A
  new call resumes from the newest checkpoint whose config (``training_key()``)
  and encoder config match and whose epoch is <= ``config.epochs``.
* **Distributed (DDP).** When ``torch.distributed`` is initialised (e.g. under
  ``torchrun``, see :mod:`replearn.lib.ddp_train`; helpers in
  :mod:`replearn.lib.metric.ddp`), every rank draws the same batches (same seed)
  and the same augmentations (each rank augments the whole global batch with the
  shared generator), encodes only its shard of each view (``np.array_split`` of
  the batch: contiguous, sizes differ by at most one, no image dropped), and the
  embeddings are all-gathered back into the global batch in single-process
  order, the rank's own rows keeping their autograd history. Every rank then
  computes the loss, the mining and the empty-batch / NaN checks on the whole
  global batch (the same value on every rank); the parameter gradients are
  summed over ranks, which gives the single-process gradient of the global
  batch; batch norm in training mode uses the statistics of the whole global
  batch (all-reduced, differentiably; works with gloo on CPU). So a step equals
  the single-process step on the same global batch up to floating-point
  summation order (about 1e-7 relative in float32, which Adam amplifies a little
  over the steps): the per-epoch mean losses of 2 gloo ranks match one process
  within 1e-6 relative for the first epoch and 1e-4 over three
  (``tests/lib/test_metric_ddp.py``).
  The initial weights (or the checkpoint rank 0 resumes from) are broadcast from
  rank 0 and every rank must pass the same images, labels and config (checked).
  A batch with fewer images than ranks is skipped (counted empty). Only rank 0
  writes checkpoints and shows progress; ``on_epoch`` is called on every rank
  with the same log. On GPU give each rank its device (``config.device=
  "cuda:<local rank>"``) and use the NCCL backend.
* **Guards.** A non-finite loss or embedding raises
  :class:`~replearn.lib.errors.TrainingError` naming the epoch, batch and
  learning rate. After each epoch the mean pairwise Euclidean distance of a
  fixed probe batch (up to 512 training images, embedded in eval mode) is
  logged; below ``collapse_threshold`` the epoch is logged, ``on_epoch`` is
  called and ``TrainingError("embeddings collapsed: ...")`` is raised with the
  history attached as ``err.history``.

:func:`train_classifier` / :func:`classifier_accuracy` are the supervised
baseline: the whole encoder fine-tuned with a linear head and cross-entropy.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from replearn.lib.checkpoint import TORCH, Checkpoint, latest_checkpoint, save_checkpoint, torch_format
from replearn.lib.errors import ReplearnInputError, TrainingError
from replearn.lib.metric.augment import augment as augment_view
from replearn.lib.metric.config import MetricTrainConfig
from replearn.lib.metric.ddp import (average_buffers, broadcast_state, gather_views, shard_sizes, sum_gradients,
                                     sync_batchnorm, world)
from replearn.lib.metric.distances import mean_pairwise_distance
from replearn.lib.metric.encoders import embed
from replearn.lib.metric.index_mining import MinedTriplets, batch_triplets
from replearn.lib.metric.losses import InfoNCELoss, MetricLoss, SmoothTripletLoss, SupConLoss, TripletHingeLoss
from replearn.lib.metric.miners import batch_hard, semi_hard
from replearn.lib.metric.mining_refresh import (MiningRefresh, check_given, mined_from_record, mined_record, refresh_due,
                                              refresh_mining)
from replearn.lib.step_loss import LossWindow, StepLoss, report_every

PROBE_SIZE = 512  # images in the fixed collapse-diagnostic batch


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class EpochLog:
    """One finished epoch.

    Attributes:
        epoch: 1-based number of the epoch (1 after the first pass).
        loss: mean loss over the epoch's non-empty batches (0.0 if every batch was empty).
        mean_pairwise_distance: mean Euclidean distance between the embeddings of the
            fixed probe batch after the epoch (eval mode): the collapse diagnostic.
        empty_batches: batches whose loss had ``n_valid == 0`` (no step taken).
        batches: batches in the epoch.
        seconds: wall-clock time of the epoch, probe included (an index-mining refresh before it is not:
            :attr:`MiningRefresh.seconds <replearn.lib.metric.mining_refresh.MiningRefresh.seconds>`).
    """

    epoch: int
    loss: float
    mean_pairwise_distance: float
    empty_batches: int
    batches: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MetricTrainResult:
    """What :func:`train_metric` returns.

    Attributes:
        encoder: the trained encoder (the object passed in, trained in place).
        history: one :class:`EpochLog` per epoch, resumed epochs included (from the checkpoint).
        config: the config used.
        resumed_from_epoch: epochs loaded from a checkpoint (0 for a fresh run).
        seconds: wall-clock time of this call.
        checkpoint: the last checkpoint written or loaded (None without ``checkpoint_dir``, and on
            ranks other than 0 under torch.distributed, which write none).
        steps: the mean loss every ``step_every`` optimiser steps of this call
            (:class:`~replearn.lib.step_loss.StepLoss`; resumed epochs excluded).
        mined: with index mining, the triplets the last epoch trained on (None with ``mining="batch"``).
    """

    encoder: nn.Module
    history: list[EpochLog]
    config: MetricTrainConfig
    resumed_from_epoch: int = 0
    seconds: float = 0.0
    checkpoint: Path | None = None
    steps: list[StepLoss] = field(default_factory=list)
    mined: MinedTriplets | None = None

    @property
    def final_loss(self) -> float:
        return self.history[-1].loss if self.history else float("nan")


# --------------------------------------------------------------------------- randomness and batches


def _epoch_rngs(seed: int, epoch: int) -> tuple[np.random.Generator, torch.Generator]:
    """numpy and torch generators for epoch ``epoch`` (0-based), depending only on (seed, epoch)."""
    ss = np.random.SeedSequence([seed, 1, epoch])
    rng = np.random.default_rng(ss)
    g = torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1)))
    return rng, g


def pk_batches(labels: np.ndarray, P: int, K: int, n_batches: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n_batches`` PK batches of indices into ``labels``: P distinct classes, up to K images each.

    Classes are drawn uniformly without replacement per batch (all classes when
    there are at most P). Each class's images are taken in a random order,
    reshuffled when used up, so within an epoch an image repeats only after all
    of its class was seen; a class with fewer than K images gives all of them
    (no duplicates in a batch).

    Args:
        labels: (N,) class ids (any integers).
        P: classes per batch, >= 1. K: images per class, >= 1.
        n_batches: batches to draw, >= 0.
        rng: numpy generator.

    Returns:
        list of int64 index arrays, each of length <= P*K, grouped by class.
    """
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    by_class = np.argsort(codes.reshape(-1), kind="stable")                    # indices grouped by class
    members = np.split(by_class, np.cumsum(np.bincount(codes.reshape(-1), minlength=len(classes)))[:-1])
    order = [rng.permutation(m) for m in members]
    pos = [0] * len(members)
    P = min(P, len(members))
    out = []
    for _ in range(n_batches):
        chosen = np.sort(rng.choice(len(members), size=P, replace=False))
        parts = []
        for c in chosen:
            take = min(K, len(members[c]))
            if pos[c] + take > len(order[c]):  # used up: the unseen rest, then a fresh order
                rest = order[c][pos[c]:]
                fresh = rng.permutation(members[c])
                in_rest = np.isin(fresh, rest)  # moved to the end, so this batch holds no image twice
                order[c] = np.concatenate([rest, fresh[~in_rest], fresh[in_rest]])
                pos[c] = 0
            parts.append(order[c][pos[c]:pos[c] + take])
            pos[c] += take
        out.append(np.concatenate(parts).astype(np.int64))
    return out


def _resolve_pk(config: MetricTrainConfig, n_classes: int) -> tuple[int, int]:
    """(P, K) for this run: P = classes_per_batch (or the default rule) capped at n_classes; K = batch // P."""
    P = config.classes_per_batch if config.classes_per_batch is not None else max(1, config.batch_size // 4)
    P = max(1, min(P, n_classes))
    return P, config.batch_size // P


# --------------------------------------------------------------------------- losses


def build_loss(config: MetricTrainConfig) -> MetricLoss:
    """The loss module named by ``config.loss`` with its margin / temperature and resolved distance."""
    d = config.resolved_distance
    if config.loss == "triplet_hinge":
        return TripletHingeLoss(config.margin, d, reduction="sum_negatives")
    if config.loss == "triplet_max":
        return TripletHingeLoss(config.margin, d, reduction="max_negative")
    if config.loss == "triplet_mean":
        return TripletHingeLoss(config.margin, d, reduction="mean")
    if config.loss == "smooth_softplus":
        return SmoothTripletLoss(config.tau, d, form="softplus")
    if config.loss == "smooth_softmax":
        return SmoothTripletLoss(config.tau, d, form="softmax")
    if config.loss == "infonce":
        return InfoNCELoss(config.tau, d)
    if config.loss == "supcon":
        return SupConLoss(config.tau, d)
    raise ReplearnInputError(f"unknown loss {config.loss!r}")


def _views(config: MetricTrainConfig, x: torch.Tensor, y: torch.Tensor | None,
           g: torch.Generator) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """The views of batch ``x`` (B, C, H, W) the encoder sees, each (B, C, H, W), and the labels of their concatenation.

    ``infonce``: two augmented views; ``supcon`` with ``augment``: two views, labels
    repeated; otherwise one view (augmented when ``augment`` is set).
    """
    aug = config.augment
    if config.loss == "infonce":
        return [augment_view(x, g, aug), augment_view(x, g, aug)], None
    if config.loss == "supcon" and aug is not None:
        return [augment_view(x, g, aug), augment_view(x, g, aug)], torch.cat([y, y])   # views of one image: positives
    return [augment_view(x, g, aug) if aug is not None else x], y


def _loss_of(loss_fn: MetricLoss, config: MetricTrainConfig, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """The loss of embeddings ``z`` (V*B, D) (the views concatenated) with labels ``y`` (V*B,) (None for infonce)."""
    if config.loss == "infonce":
        B = z.size(0) // 2
        return loss_fn(z[:B], z[B:])
    if config.loss == "supcon":
        return loss_fn(z, y)
    if config.miner == "batch_hard":
        return loss_fn(z, indices=batch_hard(z, y, distance=config.resolved_distance))
    if config.miner == "semi_hard":
        return loss_fn(z, indices=semi_hard(z, y, distance=config.resolved_distance, margin=config.margin))
    return loss_fn(z, y)                                                         # every triplet of the batch


def _embed_batch(encoder: nn.Module, config: MetricTrainConfig, x: torch.Tensor, y: torch.Tensor | None,
                 g: torch.Generator, world_size: int, rank: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(embeddings (V*B, D), their labels (V*B,) or None) of the views of batch ``x`` (B, C, H, W), as one batch-norm
    batch. Under torch.distributed every rank makes the same global views, encodes only its shard and the global
    batch is gathered back in single-process order (module docstring)."""
    views, y_all = _views(config, x, y, g)                                       # every rank: the same global views
    if world_size == 1:
        return encoder(torch.cat(views) if len(views) > 1 else views[0]), y_all
    sizes = shard_sizes(x.size(0), world_size)
    lo = sum(sizes[:rank])
    z_local = encoder(torch.cat([v[lo:lo + sizes[rank]] for v in views]))     # (V*n, D)
    return gather_views(z_local, sizes, rank, len(views)), y_all                # (V*B, D)


def _mined_batch_loss(run: _MetricRun, mined: MinedTriplets, idx: np.ndarray,
                      g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(loss, embeddings, empty) of the PK batch ``idx`` (B,) with index mining (module docstring): its images
    and their triplets' positives and negatives embedded together; the configured loss on the mined triplets,
    plus (``mining="both"``) the in-batch loss of the B images. ``empty``: no term in either loss."""
    config = run.config
    ids, (a, p, n) = batch_triplets(mined, idx)                                 # ids: idx first, then the others
    xb = run.x_all[ids].to(run.device)
    yb = torch.from_numpy(run.y_np[ids]).to(run.device)
    z, _ = _embed_batch(run.encoder, config, xb, yb, g, run.world_size, run.rank)   # (M, D), one view
    tri = tuple(torch.from_numpy(t).to(run.device) for t in (a, p, n))
    loss = run.loss_fn(z, indices=tri)
    terms = run.loss_fn.n_valid
    if config.mining == "both":
        B = len(idx)
        loss = loss + _loss_of(run.loss_fn, config, z[:B], yb[:B])
        terms += run.loss_fn.n_valid
    return loss, z, terms == 0


# --------------------------------------------------------------------------- distributed


def _check_same_inputs(x: np.ndarray, y: np.ndarray | None, config: MetricTrainConfig) -> None:
    """Raise on every rank unless all ranks got the same images, labels and training config."""
    mine = (x.shape, float(x.sum(dtype=np.float64)), None if y is None else int(y.sum()), config.training_key())
    every: list = [None] * dist.get_world_size()
    dist.all_gather_object(every, mine)
    if any(e != every[0] for e in every):
        raise ReplearnInputError(f"train_metric under torch.distributed: the ranks were given different images, "
                                 f"labels or configs ((shape, image sum, label sum, config) per rank: {every}); "
                                 f"give every rank the same data and MetricTrainConfig")


# --------------------------------------------------------------------------- checkpoints


def _encoder_config(encoder: nn.Module) -> dict | None:
    cfg = getattr(encoder, "config", None)
    return cfg.to_dict() if hasattr(cfg, "to_dict") else None


def _checkpoint_key(config: MetricTrainConfig, encoder: nn.Module) -> dict:
    """What a checkpoint must match to be resumed: the config's ``training_key()`` and the encoder config."""
    return {"training_key": config.training_key(), "encoder_config": _encoder_config(encoder)}


def _save_checkpoint(checkpoint_dir: Path | str, epoch: int, encoder: nn.Module, optimizer: torch.optim.Optimizer,
                     config: MetricTrainConfig, history: list[EpochLog], mined: MinedTriplets | None = None) -> Path:
    """Write the state after ``epoch`` epochs atomically (module docstring: what it holds); return its path."""
    payload = {"config": config.to_dict(), "state_dict": encoder.state_dict(), "optimizer": optimizer.state_dict(),
               "history": [h.to_dict() for h in history]}
    if mined is not None:
        payload["mined"] = mined_record(mined)
    return save_checkpoint(checkpoint_dir, epoch, payload, key=_checkpoint_key(config, encoder), fmt=TORCH)


def _find_checkpoint(checkpoint_dir: Path | str, config: MetricTrainConfig, encoder: nn.Module,
                     map_location: str | torch.device) -> Checkpoint | None:
    """The newest readable checkpoint with the same ``training_key()`` and encoder config, epoch <= config.epochs.

    Damaged or foreign files are skipped (the previous checkpoint is used); tensors go to ``map_location``.
    """
    return latest_checkpoint(checkpoint_dir, key=_checkpoint_key(config, encoder), fmt=torch_format(map_location),
                             max_epoch=config.epochs, fields=("state_dict", "optimizer", "history"))


def _resume(checkpoint_dir: Path | str | None, config: MetricTrainConfig, encoder: nn.Module,
            optimizer: torch.optim.Optimizer, device: torch.device, world_size: int,
            rank: int) -> tuple[int, list[EpochLog], Path | None, MinedTriplets | None]:
    """(epochs done, history, checkpoint, mined triplets in use or None) after loading rank 0's matching checkpoint
    into encoder and optimizer.

    Under torch.distributed rank 0 chooses for every rank (the folder may be on rank 0's machine only);
    the checkpoint path is returned on rank 0 only. ``(0, [], None, None)`` for a fresh run.
    """
    if checkpoint_dir is None:
        return 0, [], None, None
    found = _find_checkpoint(checkpoint_dir, config, encoder, device if world_size == 1 else "cpu") \
        if rank == 0 else None
    if world_size > 1:
        box = [found]
        dist.broadcast_object_list(box, src=0)
        found = box[0]
    if found is None:
        return 0, [], None, None
    encoder.load_state_dict(found.payload["state_dict"])
    optimizer.load_state_dict(found.payload["optimizer"])
    history = [EpochLog(**h) for h in found.payload["history"]][:found.epoch]
    mined = mined_from_record(found.payload["mined"]) if "mined" in found.payload else None
    return found.epoch, history, found.path if rank == 0 else None, mined


# --------------------------------------------------------------------------- input checks


def _check_inputs(images, labels, config: MetricTrainConfig) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(images)
    if x.ndim != 4 or x.dtype.kind != "f":
        raise ReplearnInputError(f"images must be a float array (N, C, H, W), got dtype {x.dtype} shape {x.shape}; "
                                 f"use ImageDataset.images (float32 in [0, 1])")
    if len(x) < 2:
        raise ReplearnInputError(f"train_metric needs at least 2 images, got {len(x)}")
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        raise ReplearnInputError(f"images hold NaN/Inf in {len(bad)} image(s), first rows {bad[:5].tolist()}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if labels is None:
        if config.supervised:
            raise ReplearnInputError(f"loss={config.loss!r} needs labels; pass one class id per image "
                                     f"(or use loss='infonce' for unlabelled images)")
        return x, None
    y = np.asarray(labels)
    if y.shape != (len(x),):
        raise ReplearnInputError(f"labels must be (N,) with one per image: {len(x)} images, labels shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise ReplearnInputError(f"labels must be integer class ids, got dtype {y.dtype}; "
                                 f"encode names with LabelEncoder.fit(names).encode(names)")
    return x, y.astype(np.int64)


def _fail(msg: str, history: list[EpochLog]) -> TrainingError:
    return TrainingError(msg, history=history)


# --------------------------------------------------------------------------- metric training


@dataclass(frozen=True)
class _MetricRun:
    """What stays fixed over one :func:`train_metric` call (its inputs and objects, prepared)."""

    config: MetricTrainConfig
    encoder: nn.Module
    loss_fn: MetricLoss
    optimizer: torch.optim.Optimizer
    x_all: torch.Tensor                                                          # (N, C, H, W) float32, CPU
    y_np: np.ndarray | None                                                      # (N,) int64 class ids
    probe: torch.Tensor                                                          # (M, C, H, W), M <= PROBE_SIZE
    P: int                                                                       # classes per PK batch (0: infonce)
    K: int                                                                       # images per class (0: infonce)
    n_batches: int
    device: torch.device
    world_size: int
    rank: int
    bar: tqdm
    window: LossWindow                                                           # per-step loss reports


def _batch_plan(config: MetricTrainConfig, y_np: np.ndarray | None, N: int) -> tuple[int, int, int]:
    """(P, K, batches per epoch); P = K = 0 for ``infonce``. Warns when no batch can hold a positive pair."""
    if not config.supervised:
        return 0, 0, math.ceil(N / config.batch_size)
    n_classes = len(np.unique(y_np))
    P, K = _resolve_pk(config, n_classes)
    if np.bincount(np.unique(y_np, return_inverse=True)[1]).max() < 2:
        warnings.warn(f"train_metric: every label is distinct ({N} images, {n_classes} classes), so no batch "
                      f"holds a positive pair: every batch will be empty and the encoder will not change",
                      UserWarning, stacklevel=3)
    return P, K, math.ceil(N / (P * K))


def _train_epoch(run: _MetricRun, epoch: int, history: list[EpochLog],
                 mined: MinedTriplets | None = None) -> tuple[list[float], int, int]:
    """One pass (epoch 0-based) of optimiser steps, on the in-batch triplets or (``mined`` given) the index-mined
    ones of each batch's images; returns (losses of non-empty batches, empty batches, batches)."""
    config, encoder, N = run.config, run.encoder, len(run.x_all)
    rng, g = _epoch_rngs(config.seed, epoch)
    if config.supervised:
        batches = pk_batches(run.y_np, run.P, run.K, run.n_batches, rng)
    else:
        perm = rng.permutation(N)
        batches = [perm[s:s + config.batch_size] for s in range(0, N, config.batch_size)]
    encoder.train()
    losses, empty = [], 0
    for b, idx in enumerate(batches):
        if len(idx) < max(2, run.world_size):  # nothing to compare (and batch norm cannot train on one image)
            empty += 1
            run.bar.update(1)
            continue
        if mined is not None:
            loss, z, is_empty = _mined_batch_loss(run, mined, idx, g)
        else:
            xb = run.x_all[idx].to(run.device)
            yb = torch.from_numpy(run.y_np[idx]).to(run.device) if config.supervised else None
            z, y_all = _embed_batch(encoder, config, xb, yb, g, run.world_size, run.rank)
            loss = _loss_of(run.loss_fn, config, z, y_all)
            is_empty = run.loss_fn.empty
        # the embeddings are checked too: some distances map NaN rows to a finite value
        if not bool(torch.isfinite(loss)) or not bool(torch.isfinite(z.detach()).all()):
            what = f"loss is {loss.item()}" if not torch.isfinite(loss) else "encoder output has NaN/Inf"
            raise _fail(f"{what} at epoch {epoch + 1}, batch {b + 1}/{len(batches)} (loss={config.loss}, "
                        f"lr={config.lr}); lower lr, check the images for extreme values, or raise tau", history)
        if is_empty:
            empty += 1
        else:
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if run.world_size > 1:
                sum_gradients(encoder)
            run.optimizer.step()
            losses.append(loss.item())
            run.window.add(losses[-1], epoch * run.n_batches + b + 1, epoch + 1)
        run.bar.update(1)
        if losses:
            run.bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}")
    run.window.flush()
    return losses, empty, len(batches)


def _log_epoch(run: _MetricRun, epoch: int, losses: list[float], empty: int, batches: int, t0: float,
               history: list[EpochLog], on_epoch: Callable[[EpochLog], None] | None) -> None:
    """After epoch ``epoch`` (0-based): probe the embeddings, append and report the :class:`EpochLog`, guard.

    Raises:
        TrainingError: probe embeddings NaN/Inf, or collapsed (mean pairwise distance below
            ``collapse_threshold``; raised after the log was appended and reported).
    """
    config = run.config
    if run.world_size > 1:
        average_buffers(run.encoder)
    z = torch.from_numpy(embed(run.encoder, run.probe, device=run.device)).double()  # (M, D) eval mode, float64
    if not torch.isfinite(z).all():
        raise _fail(f"embeddings became NaN/Inf after epoch {epoch + 1} (loss={config.loss}, "
                    f"lr={config.lr}); lower lr", history)
    mpd = float(mean_pairwise_distance(z, kind="euclidean"))
    log = EpochLog(epoch + 1, float(np.mean(losses)) if losses else 0.0, mpd, empty, batches,
                   time.perf_counter() - t0)
    history.append(log)
    if on_epoch is not None:
        on_epoch(log)
    if mpd < config.collapse_threshold:
        raise _fail(f"embeddings collapsed: mean pairwise distance {mpd:.3g} < collapse_threshold "
                    f"{config.collapse_threshold} after epoch {epoch + 1} (loss={config.loss}, "
                    f"lr={config.lr}); lower lr / change loss (e.g. supcon, or a triplet loss with a "
                    f"margin and miner='semi_hard')", history)


def train_metric(encoder: nn.Module, images: np.ndarray, labels: np.ndarray | None, config: MetricTrainConfig, *,
                 checkpoint_dir: Path | str | None = None, on_epoch: Callable[[EpochLog], None] | None = None,
                 on_step: Callable[[StepLoss], None] | None = None, step_every: int | None = None,
                 on_refresh: Callable[[MiningRefresh], None] | None = None,
                 mined: MinedTriplets | None = None, progress: bool = False) -> MetricTrainResult:
    """Train ``encoder`` in place with the loss, miner and optimiser of ``config`` (module docstring).

    Args:
        encoder: ``nn.Module`` mapping (B, C, H, W) float images to (B, D) embeddings
            (e.g. ``build_encoder(EncoderConfig(...))``); moved to ``config.device``.
        images: float32 (N, C, H, W), values in [0, 1] as the loaders give them.
        labels: int (N,) class ids; may be None for ``infonce`` (ignored there anyway).
        config: :class:`MetricTrainConfig`.
        checkpoint_dir: folder for per-epoch checkpoints (``epoch-NNNN.pt``, :mod:`replearn.lib.checkpoint`);
            a matching one there is resumed from.
        on_epoch: called with each new :class:`EpochLog` (also the one that reports a collapse).
        on_step: called with the mean loss of every ``step_every`` optimiser steps and of the rest at each
            epoch's end (:class:`~replearn.lib.step_loss.StepLoss`; ``step`` counts batches, empty ones included);
            only reports, training is the same with or without it.
        step_every: optimiser steps per report, >= 1; default
            :func:`~replearn.lib.step_loss.report_every` of ``epochs * batches per epoch`` (about 100 points).
        on_refresh: with index mining, called with each :class:`~replearn.lib.metric.mining_refresh.MiningRefresh`
            (the triplets mined with the encoder of that moment, their statistics, the time taken), before the
            epoch that trains on them; on every rank under torch.distributed.
        mined: with index mining, the triplets epoch 1 trains on (positions in ``images``; e.g. the mine stage's
            table, :meth:`MinedTriplets.from_arrow <replearn.lib.metric.index_mining.MinedTriplets.from_arrow>`),
            in place of the refresh before it (``on_refresh`` is not called for them); the refreshes before epochs
            ``1 + mining_refresh``, ... mine with the encoder of that moment. A run resumed from a checkpoint
            trains on the checkpoint's triplets instead. None: epoch 1's are mined too.
        progress: show a tqdm bar over batches.

    Returns:
        :class:`MetricTrainResult`; the encoder keeps the train/eval mode it came with.

    Raises:
        ReplearnInputError: images not (N, C, H, W) float or with NaN/Inf, fewer than 2
            images, labels missing or not one integer per image, ``step_every < 1``; ``mined`` given with
            ``mining="batch"``, or not mined over these images with these settings
            (:func:`~replearn.lib.metric.mining_refresh.check_given`).
        TrainingError: non-finite loss or embeddings, or collapsed embeddings
            (``err.history`` holds the epochs logged so far).
    """
    x_np, y_np = _check_inputs(images, labels, config)
    if mined is not None:
        check_given(mined, config.mining, y_np, negatives=config.mining_negatives, distance=config.resolved_distance,
                    where="train_metric")
    device = torch.device(config.device)
    encoder.to(device)
    was_training = encoder.training
    loss_fn = build_loss(config).to(device)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    N = len(x_np)
    x_all = torch.from_numpy(x_np)                                              # CPU; batches moved to device
    P, K, n_batches = _batch_plan(config, y_np, N)
    window = LossWindow(report_every(config.epochs * n_batches) if step_every is None else step_every, on_step)
    probe_idx = np.sort(np.random.default_rng(np.random.SeedSequence([config.seed, 2]))
                        .choice(N, size=min(N, PROBE_SIZE), replace=False))

    world_size, rank = world()
    if world_size > 1:
        _check_same_inputs(x_np, y_np, config)
    start_epoch, history, last_ckpt, resumed = _resume(checkpoint_dir, config, encoder, optimizer, device,
                                                       world_size, rank)
    mined = resumed if start_epoch > 0 else mined                               # epoch 1's, when given
    if world_size > 1:
        broadcast_state(encoder)  # the same initial weights on every rank, as DDP does

    t_start = time.perf_counter()
    bar = tqdm(total=(config.epochs - start_epoch) * n_batches, disable=not progress or rank != 0,
               desc=f"metric:{config.loss}", unit="batch")
    run = _MetricRun(config, encoder, loss_fn, optimizer, x_all, y_np, x_all[probe_idx], P, K, n_batches, device,
                     world_size, rank, bar, window)
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(sync_batchnorm(encoder))  # global-batch statistics under DDP; a no-op otherwise
        for epoch in range(start_epoch, config.epochs):
            given = epoch == 0 and mined is not None                             # the mine stage's triplets
            if refresh_due(config.mining, config.mining_refresh, epoch, mined, given):
                refresh = refresh_mining(encoder, x_all, y_np, config, epoch + 1, device=device)
                mined = refresh.triplets
                if on_refresh is not None:
                    on_refresh(refresh)
            t0 = time.perf_counter()
            losses, empty, batches = _train_epoch(run, epoch, history, mined if config.mining != "batch" else None)
            _log_epoch(run, epoch, losses, empty, batches, t0, history, on_epoch)
            if checkpoint_dir is not None and rank == 0:
                last_ckpt = _save_checkpoint(checkpoint_dir, epoch + 1, encoder, optimizer, config, history,
                                             mined if config.mining != "batch" else None)
    finally:
        stack.close()
        bar.close()
        encoder.train(was_training)
    return MetricTrainResult(encoder, history, config, start_epoch, time.perf_counter() - t_start, last_ckpt,
                             window.reports, mined if config.mining != "batch" else None)


# --------------------------------------------------------------------------- classifier baseline


class EncoderClassifier(nn.Module):
    """An encoder followed by a linear head: ``logits = head(encoder(x))``, (B, n_classes)."""

    def __init__(self, encoder: nn.Module, dim: int, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))                                        # (B, D) -> (B, n_classes)


def _embed_dim(encoder: nn.Module, sample: torch.Tensor) -> int:
    cfg = getattr(encoder, "config", None)
    if cfg is not None and hasattr(cfg, "dim"):
        return int(cfg.dim)
    was = encoder.training
    encoder.eval()
    with torch.no_grad():
        d = encoder(sample[:2]).shape[1]
    encoder.train(was)
    return int(d)


def train_classifier(encoder: nn.Module, images: np.ndarray, labels: np.ndarray, n_classes: int, epochs: int = 5,
                     lr: float = 1e-3, seed: int = 0, *, batch_size: int = 128, device: str = "cpu",
                     progress: bool = False) -> EncoderClassifier:
    """Fine-tune the whole encoder with a linear head and cross-entropy (the supervised baseline).

    Adam, shuffled mini-batches drawn from a generator seeded by ``seed``; the
    head is initialised under ``seed`` too (the encoder's weights are the
    caller's). ``model.encoder`` is the fine-tuned encoder (trained in place).

    Args:
        encoder: (B, C, H, W) -> (B, D) module.
        images: float (N, C, H, W). labels: int (N,) in 0..n_classes-1.
        n_classes: >= 2. epochs: >= 1. lr: > 0. seed: >= 0.
        batch_size: >= 2. device: torch device string.

    Returns:
        :class:`EncoderClassifier` in eval mode.

    Raises:
        ReplearnInputError: bad shapes or labels out of range.
        TrainingError: non-finite loss.
    """
    x_np = np.asarray(images)
    y_np = np.asarray(labels)
    if x_np.ndim != 4 or x_np.dtype.kind != "f" or y_np.shape != (len(x_np),) or len(x_np) < 2:
        raise ReplearnInputError(f"train_classifier needs float images (N, C, H, W) with N >= 2 and (N,) labels; "
                                 f"got {x_np.shape} {x_np.dtype} and {y_np.shape}")
    if n_classes < 2 or y_np.dtype.kind not in "iu" or y_np.min() < 0 or y_np.max() >= n_classes:
        raise ReplearnInputError(f"labels must be integers in 0..n_classes-1 with n_classes >= 2; got n_classes="
                                 f"{n_classes}, labels {y_np.dtype} in [{y_np.min()}, {y_np.max()}]")
    if epochs < 1 or not lr > 0 or batch_size < 2 or seed < 0:
        raise ReplearnInputError(f"need epochs >= 1, lr > 0, batch_size >= 2, seed >= 0; got epochs={epochs}, "
                                 f"lr={lr}, batch_size={batch_size}, seed={seed}")
    dev = torch.device(device)
    x_all = torch.from_numpy(np.ascontiguousarray(x_np, dtype=np.float32))
    y_all = torch.from_numpy(y_np.astype(np.int64))
    encoder.to(dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EncoderClassifier(encoder, _embed_dim(encoder, x_all.to(dev)), n_classes).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    N = len(x_all)
    bar = tqdm(total=epochs * math.ceil(N / batch_size), disable=not progress, desc="classifier", unit="batch")
    model.train()
    try:
        for epoch in range(epochs):
            perm = torch.randperm(N, generator=g)
            for s in range(0, N, batch_size):
                idx = perm[s:s + batch_size]
                if len(idx) < 2:  # batch norm cannot train on one image
                    continue
                loss = F.cross_entropy(model(x_all[idx].to(dev)), y_all[idx].to(dev))
                if not torch.isfinite(loss):
                    raise TrainingError(f"classifier loss is {loss.item()} at epoch {epoch + 1}; lower lr (now {lr})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
    finally:
        bar.close()
    return model.eval()


@torch.no_grad()
def classifier_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> float:
    """Fraction in [0, 1] of ``images`` whose arg-max logit equals ``labels`` (eval mode, mode restored)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    y = np.asarray(labels)
    if len(x) != len(y) or len(x) == 0:
        raise ReplearnInputError(f"classifier_accuracy needs N >= 1 images and N labels; got {len(x)} and {len(y)}")
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    try:
        pred = torch.cat([model(x[s:s + batch_size].to(device)).argmax(dim=1).cpu()
                          for s in range(0, len(x), batch_size)]).numpy()
    finally:
        model.train(was)
    return float(np.mean(pred == y))
