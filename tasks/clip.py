"""Prefect tasks for the CLIP-style two-tower model: pairs -> train -> evaluate -> embeddings table (both modalities)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from prefect import task  # noqa: E402
from prefect.artifacts import create_table_artifact  # noqa: E402
from prefect.logging import get_run_logger  # noqa: E402

from replearn.lib.checkpoint import remove_checkpoints  # noqa: E402
from replearn.lib.clip.captions import all_captions  # noqa: E402
from replearn.lib.clip.data import ClipPairs, digit_pairs, load_pairs  # noqa: E402
from replearn.lib.clip.evaluate import evaluate_clip  # noqa: E402
from replearn.lib.clip.model import ClipConfig, load_model, model_state  # noqa: E402
from replearn.lib.clip.trainer import ClipEpochLog, train_clip  # noqa: E402
from replearn.lib.metric.images import load_digits_8x8, load_mnist_test  # noqa: E402
from replearn.lib.store.atomic import atomic_path  # noqa: E402
from replearn.lib.store.embeddings_table import EmbeddingsMetadata, write_embeddings  # noqa: E402
from replearn.infra.stage_outputs import Dataset, Embeddings, Evaluation, Trained  # noqa: E402
from replearn.infra.tracking import client, log_metrics, log_params  # noqa: E402

DATA_FILE = "pairs.npz"


def _save_npz(path: Path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _strings(xs) -> np.ndarray:
    return np.array([str(x) for x in xs], dtype=np.str_)


@task(name="load-pairs")
def load_pairs_task(source: str, out_dir: str, image_column: str, caption_column: str, epochs: int,
                    n_test: float, n_test_templates: int, seed: int, tracking_uri: str, run_id: str) -> Dataset:
    """Image-caption pairs, split into training and held-out pairs, cached as ``pairs.npz``.

    ``digits`` / ``mnist:<folder>``: captions generated from the label and
    attributes measured on each image; training captions are drawn afresh for
    each epoch from the training templates, held-out pairs use held-out
    templates. A Parquet / CSV file of (image, caption): a seeded ``n_test``
    fraction of the rows is held out; unreadable images are skipped and counted.
    The text gallery exported for image -> caption search is every caption the
    training templates can make (digits) or the file's distinct captions.
    """
    log = get_run_logger()
    if source == "digits" or source.startswith("mnist:"):
        ds = load_digits_8x8() if source == "digits" else load_mnist_test(source.split(":", 1)[1])
        dp = digit_pairs(ds, n_test=n_test, seed=seed, n_test_templates=n_test_templates)
        train_captions = np.stack([_strings(dp.train_captions(e)) for e in range(epochs)])   # (E, N_train)
        test = dp.test
        gallery = sorted(set(all_captions(dp.train_templates)) | set(test.captions))
        vocab_captions = all_captions(dp.train_templates)
        train_images, train_keys, train_labels = dp.train_images, dp.train_keys, dp.train_labels
        skipped = 0
    else:
        pairs = load_pairs(Path(source), image_column, caption_column)
        skipped = pairs.n_skipped
        if skipped:
            log.warning("skipped %d unreadable images, e.g. %s", skipped,
                        "; ".join(f"{s.source}: {s.reason}" for s in pairs.skipped[:3]))
        n = len(pairs)
        k = max(1, int(round(n_test * n)))
        if n - k < 2:
            raise ValueError(f"{source}: {n} readable pairs leave fewer than 2 for training after holding out {k}; "
                             f"bring more pairs")
        order = np.random.default_rng(seed).permutation(n)
        te, tr = np.sort(order[:k]), np.sort(order[k:])
        train_images, train_keys, train_labels = pairs.images[tr], [pairs.keys[i] for i in tr], None
        train_captions = np.stack([_strings([pairs.captions[i] for i in tr])] * epochs)
        test = ClipPairs(pairs.images[te], [pairs.captions[i] for i in te], [pairs.keys[i] for i in te])
        gallery = sorted(set(pairs.captions))
        vocab_captions = [pairs.captions[i] for i in tr]
    path = Path(out_dir) / DATA_FILE
    arrays = dict(train_images=train_images, train_captions=train_captions, train_keys=_strings(train_keys),
                  test_images=test.images, test_captions=_strings(test.captions), test_keys=_strings(test.keys),
                  gallery=_strings(gallery), vocab_captions=_strings(vocab_captions))
    if train_labels is not None:
        arrays.update(train_labels=train_labels, test_labels=test.labels)
    _save_npz(path, **arrays)
    info = {"train_pairs": len(train_images), "test_pairs": len(test.images), "gallery_captions": len(gallery),
            "skipped": skipped}
    log_metrics(tracking_uri, run_id, {f"data.{k}": v for k, v in info.items()})
    log_params(tracking_uri, run_id, {"source": source, "n_test": n_test, "n_test_templates": n_test_templates,
                                      "image_shape": str(train_images.shape[1:])}, prefix="data.")
    return Dataset(path=str(path), info=info)


def _data(path: str) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _test_pairs(d: dict) -> ClipPairs:
    return ClipPairs(d["test_images"], [str(c) for c in d["test_captions"]], [str(k) for k in d["test_keys"]],
                     d.get("test_labels"))


@task(name="train-clip")
def train_clip_task(data_path: str, config: dict, checkpoint_dir: str, out_path: str, tracking_uri: str,
                    run_id: str) -> Trained:
    """Train the two towers; per epoch log loss, logit scale, zero-shot accuracy and recalls; save the model."""
    d = _data(data_path)
    cfg = ClipConfig.from_dict(config)
    log_params(tracking_uri, run_id, {k: (json.dumps(v) if isinstance(v, dict) else v)
                                      for k, v in cfg.to_dict().items()}, prefix="train.")
    captions = d["train_captions"]

    def on_epoch(e: ClipEpochLog) -> None:
        log_metrics(tracking_uri, run_id, {f"train.{k}": v for k, v in e.flat().items() if k != "epoch"},
                    step=e.epoch)

    result = train_clip(cfg, d["train_images"], lambda epoch: [str(c) for c in captions[min(epoch, len(captions) - 1)]],
                        vocab_captions=[str(c) for c in d["vocab_captions"]], eval_pairs=_test_pairs(d),
                        checkpoint_dir=Path(checkpoint_dir), on_epoch=on_epoch, progress=True)
    with atomic_path(Path(out_path)) as tmp:
        torch.save(model_state(result.model), tmp)
    remove_checkpoints(checkpoint_dir)  # finished: the epoch checkpoints are no longer needed
    h = result.history
    if h:
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
        ax[0].plot([e.epoch for e in h], [e.loss for e in h], marker="o")
        ax[0].set_xlabel("epoch")
        ax[0].set_ylabel("symmetric cross-entropy")
        ax[1].plot([e.epoch for e in h], [e.logit_scale for e in h], marker="o", color="tab:orange")
        ax[1].set_xlabel("epoch")
        ax[1].set_ylabel("logit scale s")
        fig.tight_layout()
        client(tracking_uri).log_figure(run_id, fig, "plots/loss.png")
        plt.close(fig)
    log_metrics(tracking_uri, run_id, {"train.seconds": result.seconds,
                                       "train.resumed_from_epoch": result.resumed_from_epoch})
    return Trained(path=out_path, figures={"final_loss": h[-1].loss if h else None, "logit_scale": result.model.scale,
                                           "resumed_from_epoch": result.resumed_from_epoch})


@task(name="evaluate-clip")
def evaluate_clip_task(data_path: str, model_path: str, tracking_uri: str, run_id: str) -> Evaluation:
    """Zero-shot top-1 (prompt ensembles) and image<->text Recall@1/5/10 on the held-out pairs."""
    d = _data(data_path)
    ev = evaluate_clip(load_model(model_path), _test_pairs(d))
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


@task(name="export-clip-embeddings")
def export_clip_embeddings_task(data_path: str, model_path: str, out_path: str, config: dict, run_id: str,
                                source_hash: str | None) -> Embeddings:
    """One embeddings table: every image (``modality = image``, label where known) then every gallery caption
    (``modality = text``); unit vectors in the shared space, cosine similarity."""
    d = _data(data_path)
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
