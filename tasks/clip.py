"""Prefect tasks for the CLIP-style two-tower model: pairs -> train -> evaluate -> embeddings table (both modalities)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.logging import get_run_logger

from replearn.infra.checkpoints import training_checkpoints
from replearn.infra.caching import STAGE_CACHE
from replearn.infra.plots import log_step_loss
from replearn.infra.stage_outputs import Dataset, Embeddings, Evaluation, Trained
from replearn.infra.tracking import client, log_metrics, log_params
from replearn.lib.clip.evaluate import evaluate_clip
from replearn.lib.clip.mining import caption_margin
from replearn.lib.clip.model import (ClipConfig, TwoTower, architecture_differences, build_model, load_model,
                                     model_state, read_model_state, warm_start)
from replearn.lib.clip.pairs import epoch_captions, held_out_pairs, load_pair_split
from replearn.lib.clip.trainer import ClipEpochLog, train_clip
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.mining_refresh import MiningRefresh
from replearn.lib.step_loss import StepLoss
from replearn.lib.store.atomic import atomic_path, atomic_write_npz, read_npz
from replearn.lib.store.embeddings_table import EmbeddingsMetadata, write_embeddings
from replearn.infra.mining_report import log_refresh, stage_triplets

DATA_FILE = "pairs.npz"


@task(name="load-pairs", cache_policy=STAGE_CACHE, persist_result=True)
def load_pairs_task(source: str, out_dir: str, image_column: str, caption_column: str, epochs: int,
                    n_test: float, n_test_templates: int, seed: int, tracking_uri: str, run_id: str,
                    source_hash: str | None = None) -> Dataset:
    """Image-caption pairs, split into training and held-out pairs, cached as ``pairs.npz``
    (lib/clip/pairs.py: generated captions for digits, one draw per epoch; a seeded held-out fraction of a
    user's Parquet / CSV, unreadable images skipped and counted).

    ``source_hash`` (the content of the source's files) is there for the stage cache: the same path with other
    content loads again. ``info`` counts the pairs and gives the image side (pixels).
    """
    split = load_pair_split(source, image_column, caption_column, epochs, n_test, n_test_templates, seed)
    if split.skipped:
        get_run_logger().warning("skipped %d unreadable images, e.g. %s", len(split.skipped),
                                 "; ".join(f"{s.source}: {s.reason}" for s in split.skipped[:3]))
    path = Path(out_dir) / DATA_FILE
    atomic_write_npz(path, **split.arrays())
    info = split.info()
    log_metrics(tracking_uri, run_id, {f"data.{k}": v for k, v in info.items()})
    log_params(tracking_uri, run_id, {"source": source, "n_test": n_test, "n_test_templates": n_test_templates,
                                      "image_shape": str(split.train_images.shape[1:])}, prefix="data.")
    return Dataset(path=str(path), info={**info, "image_size": int(split.train_images.shape[-1])})


@task(name="train-clip", cache_policy=STAGE_CACHE, persist_result=True)
def train_clip_task(data_path: str, config: dict, checkpoint_dir: str, out_path: str, tracking_uri: str,
                    run_id: str, init: str | None = None, init_from: str | None = None,
                    mined_path: str | None = None) -> Trained:
    """Train the two towers; per epoch log loss, logit scale, zero-shot accuracy and recalls, the mean loss every N
    optimiser steps (``train.step_loss``, about 100 points a run) and its chart (``plots/loss.png``); save the model.

    A run killed mid-training resumes from the last epoch checkpoint in ``checkpoint_dir``, which the task holds
    locked while it trains (lib/store/folder_lock.py; an identical run started meanwhile uses
    ``<checkpoint_dir>.1``) and removes once the model is saved.

    ``init``: a warm start from the model file of a registered model (tasks/init_model.py: its ``model``
    artifact), named ``init_from`` (``replearn-clip v1``; the flow logs it as the MLflow parameter ``init_from``):
    its two towers and logit scale replace the fresh model's, the caption tokens both vocabularies hold keep their rows
    (lib/clip/model.py :func:`~replearn.lib.clip.model.warm_start`); the optimiser (a new AdamW) and the learning
    rate schedule start afresh. The checkpoint folder must be one for this start (flows/clip.py keys it on the
    version).

    With ``mining`` index or both (``config``) each batch also holds its images' hard-negative captions' pairs
    (lib/clip/trainer.py, lib/clip/mining.py): ``mined_path`` is the mine-caption-negatives stage's
    ``mined.parquet`` (tasks/mining.py), which the first epoch trains on exactly; the later refreshes mine with the
    towers being trained, each logged as ``train.mining.*`` at the epoch that trains on it. None (``mining``
    batch, or a caller without the stage): the trainer mines epoch 1's too.

    Raises:
        ReplearnInputError: ``init`` is not a CLIP model file, or its towers differ from those this run builds
            (dimension, tower settings, or the image size the data gives); the message names the options.
            The mined table was mined over other pairs or with other settings.
    """
    with training_checkpoints(checkpoint_dir) as folder:
        return _train(data_path, config, folder, out_path, tracking_uri, run_id, init, init_from, mined_path)


#: ClipConfig setting (lib/clip/model.py :func:`architecture_differences`) -> the option that sets it; the image
#: side and channels follow the data.
_TOWER_OPTIONS = {"dim": "--dim", "image.channels": "--image-channels", "image.width": "--image-width",
                  "text.kind": "--text-tower", "text.width": "--text-width", "text.layers": "--text-layers",
                  "text.heads": "--text-heads", "text.max_len": "--text-max-len"}


def _option(option: str, value) -> str:
    return f"{option} {' '.join(map(str, value)) if isinstance(value, (list, tuple)) else value}"


def _warm_start(cfg: ClipConfig, vocab_captions: list[str], init: str, init_from: str | None) -> TwoTower:
    """A fresh model of ``cfg`` (vocabulary from ``vocab_captions``) holding the weights of the model file ``init``
    (the model ``init_from``).

    Raises:
        ReplearnInputError: not a CLIP model file; a tower setting differs: the options that set them, with the
            values that fit, or else the first setting the data decides.
    """
    state = read_model_state(init)
    name = f" ({init_from})" if init_from else ""
    if diff := architecture_differences(ClipConfig.from_dict(state["config"]), cfg):
        if options := {_TOWER_OPTIONS[k]: v for k, v in diff.items() if k in _TOWER_OPTIONS}:
            differ = ", ".join(_option(o, now) for o, (_, now) in options.items())
            fit = " ".join(_option(o, was) for o, (was, _) in options.items())
            raise ReplearnInputError(
                f"the model to continue from{name} was built with {fit}; {differ} "
                f"differ{'s' if len(options) == 1 else ''}: pass {fit}, or leave --init-from out to train from "
                "scratch")
        setting, (was, now) = next(iter(diff.items()))
        what = {"image.in_size": f"takes {was}x{was} images, this data's are {now}x{now}",
                "image.in_channels": f"takes {was}-channel images, this data's have {now}",
                }.get(setting, f"has {setting}={was}, this run {now}")
        raise ReplearnInputError(f"the model to continue from{name} {what}: continue it on data of its image size, "
                                 "or leave --init-from out to train from scratch")
    model = build_model(cfg, vocab_captions)
    kept, tokens = warm_start(model, state)
    if tokens:
        get_run_logger().info("warm start from %s: %d of %d caption tokens keep their embeddings, %d are new",
                              init_from or init, kept, tokens, tokens - kept)
    return model


def initial_model(cfg: ClipConfig, vocab_captions: list[str], init: str | None = None,
                  init_from: str | None = None) -> TwoTower:
    """The towers training starts from: fresh under ``cfg.seed`` (:func:`~replearn.lib.clip.model.build_model`,
    vocabulary from ``vocab_captions``), or the warm start's weights when ``init`` names a model file. The
    mine-caption-negatives stage (tasks/mining.py) mines with these same towers.

    Raises:
        ReplearnInputError: ``init`` does not fit (:func:`_warm_start`).
    """
    return _warm_start(cfg, vocab_captions, init, init_from) if init else build_model(cfg, vocab_captions)


def _train(data_path: str, config: dict, checkpoint_dir: Path, out_path: str, tracking_uri: str,
           run_id: str, init: str | None = None, init_from: str | None = None,
           mined_path: str | None = None) -> Trained:
    """The body of :func:`train_clip_task`, with the checkpoint folder locked."""
    d = read_npz(data_path)
    cfg = ClipConfig.from_dict(config)
    vocab_captions = [str(c) for c in d["vocab_captions"]]
    model = initial_model(cfg, vocab_captions, init, init_from)
    log_params(tracking_uri, run_id, {k: (json.dumps(v) if isinstance(v, dict) else v)
                                      for k, v in cfg.to_dict().items()}, prefix="train.")
    captions = d["train_captions"]

    def on_epoch(e: ClipEpochLog) -> None:
        log_metrics(tracking_uri, run_id, {f"train.{k}": v for k, v in e.flat().items() if k != "epoch"},
                    step=e.epoch)

    def on_step(s: StepLoss) -> None:
        log_metrics(tracking_uri, run_id, {"train.step_loss": s.loss}, step=s.step)

    def on_refresh(r: MiningRefresh) -> None:
        log_refresh(tracking_uri, run_id, r)

    mined = None
    if mined_path is not None and cfg.mining != "batch":                      # ids: rows of the training pairs
        mined = stage_triplets(mined_path, None, caption_margin(model), tracking_uri, run_id)
    result = train_clip(cfg, d["train_images"], lambda epoch: epoch_captions(captions, epoch), model=model,
                        vocab_captions=vocab_captions, eval_pairs=held_out_pairs(d),
                        checkpoint_dir=checkpoint_dir, on_epoch=on_epoch, on_step=on_step,
                        labels=d["train_labels"] if "train_labels" in d else None, on_refresh=on_refresh,
                        mined=mined, progress=True)
    with atomic_path(Path(out_path)) as tmp:
        torch.save(model_state(result.model), tmp)
    h = result.history
    if result.steps:
        log_step_loss(tracking_uri, run_id, result.steps, "symmetric cross-entropy (nats)",
                      "CLIP contrastive loss", x="step")
    log_metrics(tracking_uri, run_id, {"train.seconds": result.seconds,
                                       "train.resumed_from_epoch": result.resumed_from_epoch})
    return Trained(path=out_path, figures={"final_loss": h[-1].loss if h else None, "logit_scale": result.model.scale,
                                           "resumed_from_epoch": result.resumed_from_epoch})


@task(name="evaluate-clip", cache_policy=STAGE_CACHE, persist_result=True)
def evaluate_clip_task(data_path: str, model_path: str, tracking_uri: str, run_id: str) -> Evaluation:
    """Zero-shot top-1 (prompt ensembles) and image<->text Recall@1/5/10 on the held-out pairs."""
    d = read_npz(data_path)
    ev = evaluate_clip(load_model(model_path), held_out_pairs(d))
    metrics = ev.to_dict()
    log_metrics(tracking_uri, run_id, {f"eval.{k}": v for k, v in metrics.items()})
    if ev.zero_shot_top1 is not None:
        log_metrics(tracking_uri, run_id, {"zero_shot_accuracy": ev.zero_shot_top1})
    table = [{"direction": "image -> text", "R@1": ev.i2t_r1, "R@5": ev.i2t_r5, "R@10": ev.i2t_r10},
             {"direction": "text -> image", "R@1": ev.t2i_r1, "R@5": ev.t2i_r5, "R@10": ev.t2i_r10}]
    table = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in table]
    client(tracking_uri).log_text(run_id, json.dumps({"zero_shot_top1": ev.zero_shot_top1, "retrieval": table},
                                                     indent=2), "eval/table.json")
    create_table_artifact(key="clip-evaluation", table=table,
                          description=f"Held-out pairs ({ev.n_images} images, {ev.n_texts} distinct captions); "
                                      f"zero-shot top-1 {ev.zero_shot_top1}")
    get_run_logger().info("zero-shot top-1 %s; image->text R@1 %.3f, text->image R@1 %.3f", ev.zero_shot_top1,
                          ev.i2t_r1, ev.t2i_r1)
    return Evaluation(metrics={"zero_shot_accuracy": ev.zero_shot_top1, **metrics}, tables={"retrieval": table})


@task(name="export-clip-embeddings", cache_policy=STAGE_CACHE, persist_result=True)
def export_clip_embeddings_task(data_path: str, model_path: str, out_path: str, config: dict, run_id: str,
                                source_hash: str | None) -> Embeddings:
    """One embeddings table: every image (``modality = image``, label where known) then every gallery caption
    (``modality = text``); unit vectors in the shared space, cosine similarity."""
    d = read_npz(data_path)
    model = load_model(model_path)
    images = np.concatenate([d["train_images"], d["test_images"]])
    keys = [str(k) for k in np.concatenate([d["train_keys"], d["test_keys"]])]
    labels: list[str | None] = [None] * len(images)
    if "train_labels" in d:
        labels = [str(int(y)) for y in np.concatenate([d["train_labels"], d["test_labels"]])]
    gallery = [str(c) for c in d["gallery"]]
    zi = model.embed_images(images)                                                   # (N_img, D)
    zt = model.embed_texts(gallery, where="the caption gallery")                      # (N_txt, D)
    meta = EmbeddingsMetadata(family="clip", dim=int(zi.shape[1]), normalized=True, similarity="cos",
                              mlflow_run_id=run_id, source_hash=source_hash, config=config)
    write_embeddings(Path(out_path), keys + gallery, np.concatenate([zi, zt]), meta,
                     ids=np.arange(len(images) + len(gallery), dtype=np.int64),
                     modality=["image"] * len(images) + ["text"] * len(gallery),
                     label=labels + [None] * len(gallery))
    return Embeddings(tables={"clip": out_path}, main="clip")
