"""The two-tower flow: pairs -> train -> evaluate (zero-shot, Recall@K) -> export (both modalities) -> publish."""

from __future__ import annotations

from prefect import flow

from replearn.flows.params import ClipParams
from replearn.flows.publish import Champion, publish, run_summary
from replearn.infra.run_context import family_run
from replearn.tasks.clip import evaluate_clip_task, export_clip_embeddings_task, load_pairs_task, train_clip_task


def _image_size(data_path: str) -> int:
    import numpy as np

    with np.load(data_path) as z:
        return int(z["train_images"].shape[-1])


@flow(name="clip", log_prints=True)
def clip_flow(params: ClipParams = ClipParams()) -> dict:
    """Train image and text towers into one space with the symmetric contrastive loss (CLIP); evaluate zero-shot
    classification and cross-modal retrieval on held-out pairs; export images and captions to one embeddings table
    and publish it (one FAISS index; champion by zero-shot accuracy, else image->text Recall@1)."""
    with family_run("clip", params.home, tags={"data": params.data, "text_tower": params.text_tower}) as run:
        # one caption draw per epoch: enough for the largest default (15 epochs on 8x8 digits)
        data = load_pairs_task(params.data, run.run_dir, params.image_column, params.caption_column,
                               params.most_epochs(), params.n_test, params.n_test_templates, params.seed,
                               run.tracking_uri, run.run_id)
        cfg = params.train_config(_image_size(data.path))
        trained = train_clip_task(data.path, cfg, run.checkpoint_dir(run.run_id), run.path("model.pt"),
                                  run.tracking_uri, run.run_id)
        ev = evaluate_clip_task(data.path, trained.path, run.tracking_uri, run.run_id)
        exported = export_clip_embeddings_task(data.path, trained.path, run.path("embeddings", "clip.parquet"),
                                               {"train": cfg, "data": params.data}, run.run_id, None)
        metric = "zero_shot_accuracy" if ev.metrics["zero_shot_accuracy"] is not None else "i2t_r1"
        published = publish(run, exported, Champion(
            params.model_name, metric, ev.metrics[metric],
            eval_data=f"{params.data}; held out {params.n_test} of pairs, {params.n_test_templates} templates, "
                      f"seed {params.seed}",
            artifacts={"model": trained.path}))
    return run_summary(run, published, zero_shot_accuracy=ev.metrics["zero_shot_accuracy"],
                       table=ev.tables["retrieval"], train_pairs=data.info["train_pairs"],
                       test_pairs=data.info["test_pairs"])
