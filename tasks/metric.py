"""Prefect tasks for metric learning: load images, train an encoder, evaluate, embed for export."""

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
from replearn.lib.errors import ReplearnInputError
from replearn.lib.eval.probe import pca_baseline, probe_accuracies
from replearn.lib.eval.retrieval import retrieval_metrics
from replearn.lib.metric.config import MetricTrainConfig
from replearn.lib.metric.datasets import dataset_arrays, load_dataset, probe_split
from replearn.lib.metric.encoder_file import (encoder_differences, load_encoder, read_encoder_file, save_encoder,
                                              untrained_encoder)
from replearn.lib.metric.encoders import EncoderConfig, build_encoder, embed
from replearn.lib.metric.mining_refresh import MiningRefresh
from replearn.lib.metric.sizing import encoder_settings, sized_train_config
from replearn.lib.metric.trainer import classifier_accuracy, train_classifier, train_metric
from replearn.lib.step_loss import StepLoss
from replearn.lib.store.atomic import atomic_write_npz, read_npz
from replearn.infra.mining_report import log_refresh, stage_triplets

DATA_FILE = "images.npz"


@task(name="load-images", cache_policy=STAGE_CACHE, persist_result=True)
def load_images_task(source: str, out_dir: str, image_column: str, label_column: str, train_classes: int,
                     tracking_uri: str, run_id: str, source_hash: str | None = None) -> Dataset:
    """Load and cache the images (``images.npz``); split classes into seen (train) and unseen (evaluation).

    ``source_hash`` (the content of the source's files) is there for the stage cache: the same path with other
    content loads again. ``info`` counts images, classes, skipped files and gives the image side (pixels).
    """
    ds = load_dataset(source, image_column, label_column)
    arrays = dataset_arrays(ds, train_classes)
    path = Path(out_dir) / DATA_FILE
    atomic_write_npz(path, **arrays)
    info = {"images": len(ds), "classes": len(ds.classes), "skipped": ds.n_skipped,
            "train_images": len(arrays["train_idx"]), "unseen_images": len(arrays["test_idx"])}
    log_metrics(tracking_uri, run_id, {f"data.{k}": v for k, v in info.items()})
    log_params(tracking_uri, run_id, {"source": source, "train_classes": train_classes,
                                      "image_shape": str(ds.images.shape[1:])}, prefix="data.")
    if ds.n_skipped:
        get_run_logger().warning("skipped %d unreadable images, e.g. %s", ds.n_skipped,
                                 "; ".join(f"{s.source}: {s.reason}" for s in ds.skipped[:3]))
    return Dataset(path=str(path), info={**info, "image_size": int(ds.images.shape[-1])})


@task(name="train-metric", cache_policy=STAGE_CACHE, persist_result=True)
def train_metric_task(data_path: str, train_config: dict, encoder: dict, checkpoint_dir: str, out_path: str,
                      tracking_uri: str, run_id: str, init: str | None = None, init_from: str | None = None,
                      mined_path: str | None = None) -> Trained:
    """Train the encoder on the seen classes; log loss, collapse diagnostic and empty batches per epoch, the mean
    loss every N optimiser steps (``train.step_loss``, about 100 points a run) and its chart (``plots/loss.png``).

    ``encoder`` names the encoder (``kind``, ``dim``); its layers and the augmentation's shifts follow the image
    size (lib/metric/sizing.py). ``figures["config"]`` holds the configs used (``train``, ``encoder``). A run
    killed mid-training resumes from the last epoch checkpoint in ``checkpoint_dir``, which the task holds
    locked while it trains (lib/store/folder_lock.py; an identical run started meanwhile uses
    ``<checkpoint_dir>.1``) and removes once the encoder is saved.

    ``init``: a warm start from the encoder file of a registered model (tasks/init_model.py: its ``encoder``
    artifact), named ``init_from`` (``replearn-metric v1``; the flow logs it as the MLflow parameter
    ``init_from``): its weights (batch-norm statistics included) replace the fresh encoder's; the optimiser (a new Adam) and the
    batches start afresh. The checkpoint folder must be one for this start (flows/metric.py keys it on the version).

    ``mined_path``: with ``mining`` index or both, the mine-negatives stage's ``mined.parquet`` (tasks/mining.py):
    the first epoch trains on exactly its triplets (ids: rows of ``images.npz``), the later refreshes mine with the
    encoder being trained. None (``mining`` batch, or a caller without the stage): the trainer mines epoch 1's too.

    Raises:
        ReplearnInputError: ``init`` is not a metric encoder file, or its encoder differs from the one this run
            builds (kind, dimension, or the image size and channels the data gives); the message names the option.
            The mined table was mined over other images or with other settings (lib/metric/trainer.py).
    """
    with training_checkpoints(checkpoint_dir) as folder:
        return _train(data_path, train_config, encoder, folder, out_path, tracking_uri, run_id, init, init_from,
                      mined_path)


#: EncoderConfig field -> the option that sets it (the others follow the data: lib/metric/sizing.py).
_ENCODER_OPTIONS = {"kind": "--encoder", "dim": "--dim"}


def _warm_start(model: torch.nn.Module, init: str, enc_cfg: EncoderConfig, init_from: str | None) -> None:
    """Load the weights of the encoder file ``init`` (the model ``init_from``) into ``model`` (built from
    ``enc_cfg``).

    Raises:
        ReplearnInputError: not an encoder file; an encoder setting differs: the options that set them, with the
            values that fit, or else the first setting the data decides.
    """
    model_name = f" ({init_from})" if init_from else ""
    saved, state = read_encoder_file(init)
    diff = encoder_differences(saved, enc_cfg)
    if not diff:
        model.load_state_dict(state)
        return
    if options := {_ENCODER_OPTIONS[k]: v for k, v in diff.items() if k in _ENCODER_OPTIONS}:
        differ = ", ".join(f"{o} {now}" for o, (_, now) in options.items())
        fix = " ".join(f"{o} {was}" for o, (was, _) in options.items())
        raise ReplearnInputError(
            f"the model to continue from{model_name} has a {saved.kind} encoder of dimension {saved.dim}; {differ} "
            f"differ{'s' if len(options) == 1 else ''}: pass {fix}, or leave --init-from out to train from scratch")
    field, (was, now) = next(iter(diff.items()))
    what = {"in_size": f"takes {was}x{was} images, this data's are {now}x{now}",
            "in_channels": f"takes {was}-channel images, this data's have {now}",
            "channels": f"has blocks of {was} channels, images of this data's size get {now}",
            }.get(field, f"has {field}={was}, this run {now}")
    raise ReplearnInputError(f"the model to continue from{model_name} {what}: continue it on data of its image size "
                             "and channels, or leave --init-from out to train from scratch")


def initial_encoder(image_size: int, train_config: dict, encoder: dict, init: str | None = None,
                    init_from: str | None = None) -> tuple[torch.nn.Module, MetricTrainConfig, EncoderConfig, dict]:
    """The encoder training starts from, for images of ``image_size`` pixels: built from ``encoder`` (sized by
    lib/metric/sizing.py) under ``torch.manual_seed(seed)``, so the same ``--seed`` gives the same weights, then
    the warm start's weights when ``init`` names an encoder file. The mine-negatives stage (tasks/mining.py) mines
    with this same encoder.

    Returns:
        ``(encoder, train config, encoder config, {"train": ..., "encoder": ...})`` (the last as plain dicts).

    Raises:
        ReplearnInputError: ``init`` does not fit (:func:`_warm_start`), or the settings are invalid.
    """
    config = {"train": sized_train_config(train_config, image_size),
              "encoder": encoder_settings(encoder, image_size)}
    cfg = MetricTrainConfig.from_dict(config["train"])
    enc_cfg = EncoderConfig.from_dict(config["encoder"])
    torch.manual_seed(cfg.seed)  # the encoder's initial weights: the same --seed gives the same run
    model = build_encoder(enc_cfg)
    if init:
        _warm_start(model, init, enc_cfg, init_from)
    return model, cfg, enc_cfg, config


def _train(data_path: str, train_config: dict, encoder: dict, checkpoint_dir: Path, out_path: str,
           tracking_uri: str, run_id: str, init: str | None = None, init_from: str | None = None,
           mined_path: str | None = None) -> Trained:
    """The body of :func:`train_metric_task`, with the checkpoint folder locked. With index mining the statistics
    of the triplets each epoch starts on are logged as ``train.mining.*`` at that epoch: the stage's table at epoch 1
    (when given), then each refresh (``train.mining.seconds``: the refresh's time, beside the epoch's
    ``train.epoch_seconds``)."""
    d = read_npz(data_path)
    model, cfg, enc_cfg, config = initial_encoder(int(d["images"].shape[-1]), train_config, encoder, init,
                                                  init_from)
    log_params(tracking_uri, run_id, cfg.to_dict(), prefix="train.")
    log_params(tracking_uri, run_id, enc_cfg.to_dict(), prefix="encoder.")

    def on_epoch(e) -> None:
        log_metrics(tracking_uri, run_id, {"train.loss": e.loss, "train.mean_pairwise_distance": e.mean_pairwise_distance,
                                           "train.empty_batches": e.empty_batches, "train.epoch_seconds": e.seconds},
                    step=e.epoch)

    def on_step(s: StepLoss) -> None:
        log_metrics(tracking_uri, run_id, {"train.step_loss": s.loss}, step=s.step)

    def on_refresh(r: MiningRefresh) -> None:
        log_refresh(tracking_uri, run_id, r)

    tr = d["train_idx"]
    mined = None
    if mined_path is not None and cfg.mining != "batch":                      # ids: rows of images.npz
        mined = stage_triplets(mined_path, tr, cfg.margin, tracking_uri, run_id)
    result = train_metric(model, d["images"][tr], d["labels"][tr], cfg, checkpoint_dir=checkpoint_dir,
                          on_epoch=on_epoch, on_step=on_step, on_refresh=on_refresh, mined=mined, progress=True)
    save_encoder(out_path, model, enc_cfg, cfg)
    log_metrics(tracking_uri, run_id, {"train.resumed_from_epoch": result.resumed_from_epoch})
    history = result.history
    if result.steps:
        log_step_loss(tracking_uri, run_id, result.steps, f"{cfg.loss} loss", f"metric learning: {cfg.loss} loss",
                      x="step")
    return Trained(path=out_path, figures={"final_loss": history[-1].loss if history else None,
                                           "empty_batches": int(sum(h.empty_batches for h in history)),
                                           "resumed_from_epoch": result.resumed_from_epoch, "config": config})


@task(name="evaluate-metric", cache_policy=STAGE_CACHE, persist_result=True)
def evaluate_metric_task(data_path: str, encoder_path: str, tracking_uri: str, run_id: str, seed: int = 0,
                         finetune_epochs: int = 5) -> Evaluation:
    """Retrieval on unseen classes (P@1, R-Precision, MAP@R) against raw pixels and PCA of the same dimension,
    and classifiers on frozen features over all classes (logistic regression, linear SVM, kNN) beside
    fine-tuning the whole encoder with a classification head. Logged to MLflow and as a Prefect table."""
    d = read_npz(data_path)
    encoder = load_encoder(encoder_path)
    z = embed(encoder, d["images"])
    raw = d["images"].reshape(len(d["images"]), -1)
    te, tr = d["test_idx"], d["train_idx"]
    dim = z.shape[1]
    pca_tr, pca_te = pca_baseline(raw[tr], raw[te], dim, seed=seed)
    rows = []
    for name, feats in (("encoder", z[te]), ("raw_pixels", raw[te]), (f"pca_{dim}", pca_te)):
        r = retrieval_metrics(feats, d["labels"][te], "l2")
        rows.append({"features": name, "map_at_r": r.map_at_r, "precision_at_1": r.precision_at_1,
                     "r_precision": r.r_precision})
    # classifiers on frozen features, all classes: a seeded 70/30 split
    ptr, pte = probe_split(len(z), seed)
    y = d["labels"]
    probes = {"encoder": probe_accuracies(z[ptr], y[ptr], z[pte], y[pte]),
              "raw_pixels": probe_accuracies(raw[ptr], y[ptr], raw[pte], y[pte])}
    for row in rows:
        row.update(probes.get(row["features"], {}))
    clf = train_classifier(untrained_encoder(encoder_path), d["images"][ptr], y[ptr], n_classes=int(y.max()) + 1, epochs=finetune_epochs,
                           seed=seed)
    rows.append({"features": "finetuned_classifier", "accuracy": classifier_accuracy(clf, d["images"][pte], y[pte])})
    metrics = {f"{row['features']}.{k}": float(v) for row in rows for k, v in row.items() if k != "features"}
    metrics["map_at_r"] = rows[0]["map_at_r"]
    log_metrics(tracking_uri, run_id, metrics)
    table = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in rows]
    client(tracking_uri).log_text(run_id, json.dumps(table, indent=2), "eval/table.json")
    create_table_artifact(key="metric-evaluation", table=table,
                          description="Retrieval on unseen classes (MAP@R, P@1, R-Precision) and classifiers on "
                                      "frozen features over all classes")
    get_run_logger().info("unseen-class MAP@R: encoder %.3f, raw pixels %.3f, PCA-%d %.3f", rows[0]["map_at_r"],
                          rows[1]["map_at_r"], dim, rows[2]["map_at_r"])
    return Evaluation(metrics=metrics, tables={"evaluation": table})


@task(name="export-image-embeddings", cache_policy=STAGE_CACHE, persist_result=True)
def export_image_embeddings_task(data_path: str, encoder_path: str, out_path: str, config: dict, run_id: str,
                                 source_hash: str | None) -> Embeddings:
    """Embed every image and write the embeddings table (unit vectors, key = image source, label = class name)."""
    from replearn.lib.store.embeddings_table import EmbeddingsMetadata, write_embeddings

    d = read_npz(data_path)
    z = embed(load_encoder(encoder_path), d["images"])
    names = [str(n) for n in d["names"]]
    meta = EmbeddingsMetadata(family="metric", dim=int(z.shape[1]), normalized=bool(config["encoder"]["normalize"]),
                              similarity="cos", mlflow_run_id=run_id, source_hash=source_hash, config=config)
    write_embeddings(Path(out_path), [str(k) for k in d["keys"]], z, meta, ids=np.arange(len(z), dtype=np.int64),
                     label=[names[int(y)] for y in d["labels"]])
    return Embeddings(tables={"images": out_path}, main="images")
