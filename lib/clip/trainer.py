"""Training loop of the two-tower model (Radford et al. 2021), single-process or under torch.distributed.

:func:`train_clip` trains a :class:`~replearn.lib.clip.model.TwoTower` on
(image, caption) pairs with :class:`~replearn.lib.clip.loss.ClipLoss`:

* **Optimiser.** AdamW (Loshchilov & Hutter 2019), decoupled weight decay on
  matrices and conv kernels only (not on biases, norms, embeddings or
  ``logit_scale``, as in CLIP/open_clip). Learning rate constant, or cosine
  (SGDR without restarts, Loshchilov & Hutter 2017) after one warm-up epoch
  of linear increase, updated every step.
* **Batches.** Each epoch shuffles the pairs with a generator seeded by
  ``(seed, epoch)`` and cuts the order into ``ceil(N / batch_size)`` nearly
  equal batches (sizes differ by at most one, never a batch of one pair).
  Captions may change every epoch: pass a function ``epoch -> captions``
  (:meth:`~replearn.lib.clip.data.DigitPairs.train_captions` draws a new
  template per image and epoch).
* **Hard-negative batches.** With ``mining="index"`` / ``"both"`` each batch's
  pairs are anchors, and the batch also holds, once each, the pairs of their
  mined hard-negative captions (:mod:`replearn.lib.clip.mining`: the nearest
  captions of another class in a FAISS index over the training captions), so up
  to ``(1 + mining_negatives) x batch_size`` pairs go through the towers
  together. ``"index"``: the symmetric loss over the whole batch (each image
  against every caption in it, its hard negatives among them, and each caption
  against every image); ``"both"``: that plus the loss of the anchors alone (the
  ``"batch"`` loss). Before epochs 1, ``1 + mining_refresh``, ... the pairs are
  embedded with the current towers and mined again (``on_refresh`` sees each
  refresh); triplets passed as ``mined`` (the CLIP flow's mine stage's table)
  replace the refresh before epoch 1. The triplets in use are saved with each
  checkpoint, so a resumed run trains on what the uninterrupted run trained on.
* **Distributed.** When ``torch.distributed`` is initialised, every rank runs
  the same batch order (same seed); each global batch is cut into
  ``world_size`` equal contiguous shards (up to ``world_size - 1`` pairs of the
  batch are dropped so the shards are equal), each rank encodes its shard, the
  loss gathers the features (:func:`~replearn.lib.clip.loss.gather_features`)
  and the gradients are reduced by hand: summed for the tower weights and
  averaged for ``logit_scale`` (see :mod:`replearn.lib.clip.loss` for why), so a
  step equals the single-process step on the global batch, except for batch
  norm statistics, which stay per rank. Only rank 0 writes checkpoints. With
  index mining rank 0 mines (its batch-norm statistics) and sends the triplets
  to every rank; each global hard-negative batch is sharded like a plain one.
* **Logs.** Every ``step_every`` steps (and at each epoch's end) the mean loss of
  those steps (:class:`~replearn.lib.step_loss.StepLoss`, ``on_step``).
  After every epoch a :class:`ClipEpochLog`: mean loss, logit scale
  s, learning rate, and, with ``eval_pairs``, zero-shot top-1 and Recall@1/5/10
  both ways on the held-out pairs (:func:`~replearn.lib.clip.evaluate.evaluate_clip`).
* **Checkpoints and resuming.** ``<checkpoint_dir>/epoch-0003.pt`` holds the
  config, the vocabulary, the weights, the optimiser, the epoch and the history,
  written atomically (:mod:`replearn.lib.checkpoint`). A new call resumes from
  the newest checkpoint whose ``training_key()`` matches and whose epoch is
  <= ``config.epochs``; loaded with ``torch.load(weights_only=True)``.
* **Guards.** A non-finite loss raises :class:`~replearn.lib.errors.TrainingError`
  naming the epoch, batch and learning rate, with the history so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm.auto import tqdm

from replearn.lib.checkpoint import TORCH, Checkpoint, latest_checkpoint, save_checkpoint
from replearn.lib.clip.captions import all_captions
from replearn.lib.clip.data import ClipPairs, DigitPairs
from replearn.lib.clip.evaluate import evaluate_clip
from replearn.lib.clip.loss import ClipLoss, gather_features
from replearn.lib.clip.mining import CAPTION_DISTANCE, caption_classes, refresh_caption_mining
from replearn.lib.clip.model import ClipConfig, TwoTower, build_model, model_from_state, model_state
from replearn.lib.errors import ReplearnInputError, TrainingError
from replearn.lib.metric.index_mining import MinedTriplets, batch_triplets
from replearn.lib.metric.mining_refresh import MiningRefresh, check_given, mined_from_record, mined_record, refresh_due
from replearn.lib.step_loss import LossWindow, StepLoss, report_every

Captions = Sequence[str] | Callable[[int], Sequence[str]]


@dataclass(frozen=True)
class ClipEpochLog:
    """One finished epoch.

    Attributes:
        epoch: 1-based epoch number.
        loss: mean training loss over the epoch's batches (>= 0).
        logit_scale: s = min(exp(logit_scale), 100) after the epoch.
        lr: learning rate of the epoch's last step.
        seconds: wall-clock time of the epoch, evaluation included.
        metrics: held-out evaluation (``ClipEvaluation.to_dict()``: ``zero_shot_top1``,
            ``i2t_r1`` ... ``t2i_r10``), empty without ``eval_pairs``.
    """

    epoch: int
    loss: float
    logit_scale: float
    lr: float
    seconds: float
    metrics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def flat(self) -> dict[str, float]:
        """Flat ``{name: value}`` for MLflow (metrics inlined)."""
        d = {k: float(v) for k, v in asdict(self).items() if k != "metrics"}
        d.update({k: float(v) for k, v in self.metrics.items()})
        return d


@dataclass
class ClipTrainResult:
    """What :func:`train_clip` returns: the trained model (eval mode), its history and where it was saved;
    ``steps`` the mean loss every ``step_every`` optimiser steps of this call (resumed epochs excluded); ``mined``
    with index mining the triplets the last epoch trained on (None with ``mining="batch"``)."""

    model: TwoTower
    history: list[ClipEpochLog]
    config: ClipConfig
    resumed_from_epoch: int = 0
    seconds: float = 0.0
    checkpoint: Path | None = None
    steps: list[StepLoss] = field(default_factory=list)
    mined: MinedTriplets | None = None


# --------------------------------------------------------------------------- pieces


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled index batches of one epoch: ``ceil(n / batch_size)`` parts of nearly equal size, each >= 2.

    Depends only on ``(n, batch_size, seed, epoch)``, so every rank computes the same order.
    """
    order = np.random.default_rng(np.random.SeedSequence([seed, 1, epoch])).permutation(n)
    nb = max(1, math.ceil(n / batch_size))
    nb = min(nb, max(1, n // 2))                                                 # smallest part floor(n / nb) >= 2
    return [b.astype(np.int64) for b in np.array_split(order, nb)]


def learning_rate(config: ClipConfig, step: int, steps_per_epoch: int) -> float:
    """lr at optimiser step ``step`` (0-based): constant, or one warm-up epoch then cosine to 0."""
    if config.schedule == "constant":
        return config.lr
    total = config.epochs * steps_per_epoch
    warm = steps_per_epoch if config.epochs > 1 else 0
    if step < warm:
        return config.lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim >= 2 and "embed" not in name and name != "logit_scale":
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _checkpoint_key(config: ClipConfig) -> dict:
    """What a checkpoint must match to be resumed: the config's ``training_key()``."""
    return {"training_key": config.training_key()}


def find_checkpoint(checkpoint_dir: Path | str, config: ClipConfig) -> Checkpoint | None:
    """The checkpoint a run of ``config`` resumes from, or None (:func:`~replearn.lib.checkpoint.latest_checkpoint`).

    The newest readable ``<checkpoint_dir>/epoch-NNNN.pt`` with the same ``training_key()`` and
    epoch <= ``config.epochs``, tensors on the CPU; damaged or foreign files are skipped.
    ``.payload`` rebuilds the model (:func:`~replearn.lib.clip.model.model_from_state`).
    """
    return latest_checkpoint(checkpoint_dir, key=_checkpoint_key(config), fmt=TORCH, max_epoch=config.epochs,
                             fields=("config", "state_dict", "optimizer", "history"))


def _save_checkpoint(checkpoint_dir: Path | str, epoch: int, model: TwoTower, optimizer: torch.optim.Optimizer,
                     history: list[ClipEpochLog], mined: MinedTriplets | None = None) -> Path:
    """Write the state after ``epoch`` epochs atomically (model, optimiser, history, and with index mining the
    triplets in use as ``"mined"``); return its path."""
    payload = {**model_state(model), "optimizer": optimizer.state_dict(), "history": [h.to_dict() for h in history]}
    if mined is not None:
        payload["mined"] = mined_record(mined)
    return save_checkpoint(checkpoint_dir, epoch, payload, key=_checkpoint_key(model.config), fmt=TORCH)


def _check_images(images) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != 4 or x.dtype.kind != "f":
        raise ReplearnInputError(f"images must be a float array (N, C, H, W), got dtype {x.dtype} shape {x.shape}; "
                                 f"use ClipPairs.images (float32 in [0, 1])")
    if len(x) < 2:
        raise ReplearnInputError(f"train_clip needs at least 2 (image, caption) pairs, got {len(x)}: a batch of "
                                 f"one pair has no negative")
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if len(bad):
        raise ReplearnInputError(f"images hold NaN/Inf in {len(bad)} image(s), first rows {bad[:5].tolist()}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _sync_gradients(model: TwoTower, world_size: int) -> None:
    """Sum tower gradients over ranks, average the ``logit_scale`` gradient (module docstring)."""
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        if name == "logit_scale":
            p.grad.div_(world_size)


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class _ClipRun:
    """What stays fixed over one :func:`train_clip` call (its inputs and objects, prepared)."""

    config: ClipConfig
    model: TwoTower
    optimizer: torch.optim.Optimizer
    loss_fn: ClipLoss
    x_all: torch.Tensor                                                          # (N, C, H, W) float32, CPU
    classes: np.ndarray | None                                                   # (N,) caption classes (mining)
    caption_fn: Callable[[int], Sequence[str]]
    first: list[str]                                                             # the captions of epoch 0
    steps_per_epoch: int
    world: int
    rank: int
    device: torch.device
    bar: tqdm
    window: LossWindow                                                           # per-step loss reports


def _setup_model(config: ClipConfig, model: TwoTower | None, vocab_captions: Sequence[str] | None, first: list[str],
                 checkpoint_dir: Path | str | None) -> tuple[TwoTower, torch.optim.Optimizer, list[ClipEpochLog], int,
                                                              Path | None, MinedTriplets | None]:
    """(model on its device, optimiser, history, epochs done, checkpoint, triplets in use): fresh, or from a matching
    checkpoint."""
    found = find_checkpoint(checkpoint_dir, config) if checkpoint_dir is not None else None
    state = found.payload if found is not None else None
    if model is None:
        if state is not None:
            model = model_from_state(state, device=config.device)
        else:
            model = build_model(config, vocab_captions if vocab_captions is not None else first)
    elif state is not None:
        model.load_state_dict(state["state_dict"])
    model.to(torch.device(config.device))
    if config.text.kind == "lit" and vocab_captions is not None:
        model.text.precompute(list(vocab_captions), where="the vocabulary captions")
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)
    if state is None:
        return model, optimizer, [], 0, None, None
    optimizer.load_state_dict(state["optimizer"])
    mined = mined_from_record(state["mined"]) if "mined" in state else None
    return (model, optimizer, [ClipEpochLog(**h) for h in state["history"]][:found.epoch], found.epoch, found.path,
            mined)


def _refresh(run: _ClipRun, epoch: int) -> MiningRefresh:
    """Mine the hard-negative captions of epoch ``epoch`` (0-based) with the towers as they are
    (:func:`~replearn.lib.clip.mining.refresh_caption_mining`); under torch.distributed rank 0 mines and every
    rank gets its triplets (module docstring)."""
    refresh = None
    if run.rank == 0:
        refresh = refresh_caption_mining(run.model, run.x_all, list(run.caption_fn(epoch)), run.classes,
                                         k=run.config.mining_k, negatives=run.config.mining_negatives,
                                         epoch=epoch + 1)
    if run.world > 1:
        box = [refresh]
        dist.broadcast_object_list(box, src=0)
        refresh = box[0]
    return refresh


def _train_epoch(run: _ClipRun, epoch: int, history: list[ClipEpochLog],
                 mined: MinedTriplets | None = None) -> tuple[list[float], float]:
    """One pass over the shuffled pairs (epoch 0-based), each batch with its hard-negative pairs when ``mined`` is
    given (module docstring); returns (per-batch losses, last learning rate)."""
    config, model, N = run.config, run.model, len(run.x_all)
    texts = run.first if epoch == 0 else list(run.caption_fn(epoch))
    if len(texts) != N:
        raise ReplearnInputError(f"train_clip: epoch {epoch} gave {len(texts)} captions for {N} images")
    prepared = model.prepare_text(texts, where=f"the training captions (epoch {epoch})")
    model.train()
    losses: list[float] = []
    lr = config.lr
    for b, idx in enumerate(epoch_batches(N, config.batch_size, config.seed, epoch)):
        anchors = len(idx)
        if mined is not None:
            idx = batch_triplets(mined, idx)[0]                                  # anchors, then their negatives' pairs
        if run.world > 1:
            n_local = len(idx) // run.world
            anchors = min(anchors, n_local * run.world)
            idx = idx[run.rank * n_local:(run.rank + 1) * n_local]               # this rank's shard
        lr = learning_rate(config, epoch * run.steps_per_epoch + b, run.steps_per_epoch)
        for g in run.optimizer.param_groups:
            g["lr"] = lr
        it = torch.from_numpy(idx)
        zi = model.encode_image(run.x_all[it].to(run.device))                    # (n, D)
        zt = model.encode_text(**{k: v[it].to(run.device) for k, v in prepared.items()})   # (n, D)
        if mined is None:
            loss = run.loss_fn(zi, zt, model.logit_scale)
        else:
            loss = _hard_negative_loss(run, zi, zt, anchors)
        if not bool(torch.isfinite(loss)):
            raise TrainingError(f"CLIP loss is {loss.item()} at epoch {epoch + 1}, batch {b + 1}/"
                                f"{run.steps_per_epoch} (lr={lr:.3g}, logit scale={model.scale:.3g}); lower "
                                f"lr or check the images for extreme values", history=history)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if run.world > 1:
            _sync_gradients(model, run.world)
        run.optimizer.step()
        losses.append(loss.item())
        run.window.add(losses[-1], epoch * run.steps_per_epoch + b + 1, epoch + 1)
        run.bar.update(1)
        run.bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}", s=f"{model.scale:.1f}")
    run.window.flush()
    return losses, lr


_ONE_PROCESS_LOSS = ClipLoss()


def _hard_negative_loss(run: _ClipRun, zi: torch.Tensor, zt: torch.Tensor, anchors: int) -> torch.Tensor:
    """The loss of a hard-negative batch (module docstring): this rank's (n, D) image and text features, the whole
    batch's gathered under torch.distributed (gradient to the local rows); the first ``anchors`` rows are the
    anchors, the rest their negatives' pairs. ``index``: the symmetric loss over all rows; ``both``: plus that of
    the anchors alone."""
    if run.world > 1:
        zi, zt = gather_features(zi, zt)                                         # (M, D) each, the global batch
    loss = _ONE_PROCESS_LOSS(zi, zt, run.model.logit_scale)
    if run.config.mining == "both":
        loss = loss + _ONE_PROCESS_LOSS(zi[:anchors], zt[:anchors], run.model.logit_scale)
    return loss


def train_clip(config: ClipConfig, images: np.ndarray, captions: Captions, *, model: TwoTower | None = None,
               vocab_captions: Sequence[str] | None = None, eval_pairs: ClipPairs | None = None,
               prompts: Sequence[Sequence[str]] | None = None, checkpoint_dir: Path | str | None = None,
               on_epoch: Callable[[ClipEpochLog], None] | None = None,
               on_step: Callable[[StepLoss], None] | None = None, step_every: int | None = None,
               labels: np.ndarray | None = None, on_refresh: Callable[[MiningRefresh], None] | None = None,
               mined: MinedTriplets | None = None, progress: bool = False) -> ClipTrainResult:
    """Train a two-tower model on (image, caption) pairs (module docstring).

    Args:
        config: :class:`ClipConfig`.
        images: float32 (N, C, H, W) in [0, 1], any size (resized by the image tower).
        captions: N captions, or a function ``epoch (0-based) -> N captions``.
        model: a model to train in place; default ``build_model(config, vocab_captions)``.
        vocab_captions: captions the scratch vocabulary is built from (default the
            captions of epoch 0); ignored for ``text.kind == "lit"`` except that their
            sentence embeddings are precomputed.
        eval_pairs: held-out pairs evaluated after every epoch (zero-shot needs labels).
        prompts: zero-shot prompts per class (default the digit prompts).
        checkpoint_dir: per-epoch checkpoints (``epoch-NNNN.pt``, :mod:`replearn.lib.checkpoint`); a
            matching one there is resumed from (:func:`find_checkpoint`).
        on_epoch: called with each :class:`ClipEpochLog` (on every rank).
        on_step: called with the mean loss of every ``step_every`` optimiser steps and of the rest at each
            epoch's end (:class:`~replearn.lib.step_loss.StepLoss`, on every rank); only reports, training is
            the same with or without it.
        step_every: optimiser steps per report, >= 1; default
            :func:`~replearn.lib.step_loss.report_every` of ``epochs * steps per epoch`` (about 100 points).
        labels: int (N,) class ids of the pairs where known (digits): with index mining no caption of an image's
            class is its negative; None: pairs whose captions read the same are one class
            (:func:`~replearn.lib.clip.mining.caption_classes`).
        on_refresh: with index mining, called with each
            :class:`~replearn.lib.metric.mining_refresh.MiningRefresh` before the epoch that trains on it.
        mined: with index mining, the triplets epoch 1 trains on (pair rows; the mine stage's table) in place of
            the refresh before it; a run resumed from a checkpoint trains on the checkpoint's. None: mined too.
        progress: tqdm bar over batches.

    Returns:
        :class:`ClipTrainResult` with the model in eval mode.

    Raises:
        ReplearnInputError: bad images, a caption count different from the image count, ``step_every < 1``;
            ``mined`` given with ``mining="batch"`` or not mined over these pairs with these settings.
        CaptionError: a caption with no token (naming the row).
        TrainingError: a non-finite loss (``err.history`` holds the epochs logged so far).
    """
    x_np = _check_images(images)
    N = len(x_np)
    caption_fn = captions if callable(captions) else (lambda _epoch, c=list(captions): c)
    first = list(caption_fn(0))
    if len(first) != N:
        raise ReplearnInputError(f"train_clip: {N} images but {len(first)} captions; give one caption per image")

    classes = caption_classes(first, labels) if config.mining != "batch" else None
    if mined is not None:
        check_given(mined, config.mining, classes, negatives=config.mining_negatives, distance=CAPTION_DISTANCE,
                    where="train_clip")
    distributed = dist.is_available() and dist.is_initialized()
    world, rank = (dist.get_world_size(), dist.get_rank()) if distributed else (1, 0)
    model, optimizer, history, start_epoch, last_ckpt, resumed = _setup_model(config, model, vocab_captions, first,
                                                                              checkpoint_dir)
    mined = resumed if start_epoch > 0 else mined                               # epoch 1's, when given
    steps_per_epoch = len(epoch_batches(N, config.batch_size, config.seed, 0))
    window = LossWindow(report_every(config.epochs * steps_per_epoch) if step_every is None else step_every, on_step)
    t_start = time.perf_counter()
    bar = tqdm(total=(config.epochs - start_epoch) * steps_per_epoch, disable=not progress or rank != 0,
               desc="clip", unit="batch")
    run = _ClipRun(config, model, optimizer, ClipLoss(world, rank), torch.from_numpy(x_np), classes, caption_fn,
                   first, steps_per_epoch, world, rank, torch.device(config.device), bar, window)
    mining = config.mining != "batch"
    try:
        for epoch in range(start_epoch, config.epochs):
            given = epoch == 0 and mined is not None                             # the mine stage's triplets
            if refresh_due(config.mining, config.mining_refresh, epoch, mined, given):
                refresh = _refresh(run, epoch)
                mined = refresh.triplets
                if on_refresh is not None:
                    on_refresh(refresh)
            t0 = time.perf_counter()
            losses, lr = _train_epoch(run, epoch, history, mined if mining else None)
            metrics = evaluate_clip(model, eval_pairs, prompts).to_dict() if eval_pairs is not None else {}
            log = ClipEpochLog(epoch + 1, float(np.mean(losses)), model.scale, lr, time.perf_counter() - t0, metrics)
            history.append(log)
            if on_epoch is not None:
                on_epoch(log)
            if checkpoint_dir is not None and rank == 0:
                last_ckpt = _save_checkpoint(checkpoint_dir, epoch + 1, model, optimizer, history,
                                             mined if mining else None)
    finally:
        bar.close()
    model.eval()
    return ClipTrainResult(model, history, config, start_epoch, time.perf_counter() - t_start, last_ckpt,
                           window.reports, mined if mining else None)


def train_digits(config: ClipConfig, pairs: DigitPairs, **kwargs) -> ClipTrainResult:
    """:func:`train_clip` on :func:`~replearn.lib.clip.data.digit_pairs` output.

    Captions are redrawn from the train templates every epoch, the vocabulary
    covers every caption the train templates can make, and ``pairs.test`` is
    evaluated after each epoch. ``kwargs`` go to :func:`train_clip`.
    """
    kwargs.setdefault("eval_pairs", pairs.test)
    kwargs.setdefault("vocab_captions", all_captions(pairs.train_templates))
    kwargs.setdefault("labels", pairs.train_labels)
    return train_clip(config, pairs.train_images, pairs.train_captions, **kwargs)
