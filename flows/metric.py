"""The metric-learning flow: images -> train (mined pairs/triplets) -> evaluate -> export -> publish."""

from __future__ import annotations

from prefect import flow

from replearn.flows.params import MetricParams
from replearn.flows.publish import Champion, publish, run_summary
from replearn.infra.run_context import family_run
from replearn.tasks.metric import evaluate_metric_task, export_image_embeddings_task, load_images_task, train_metric_task


def _image_size(data_path: str) -> int:
    import numpy as np

    with np.load(data_path) as z:
        return int(z["images"].shape[-1])


@flow(name="metric", log_prints=True)
def metric_flow(params: MetricParams = MetricParams()) -> dict:
    """Learn a similarity on images: classes ``0..train_classes-1`` train the encoder, the others are evaluated
    (MAP@R, P@1, R-Precision against raw pixels and PCA), plus classifiers on frozen features; the embeddings
    are exported and published (champion by MAP@R on unseen classes)."""
    with family_run("metric", params.home, tags={"data": params.data}) as run:
        data = load_images_task(params.data, run.run_dir, params.image_column, params.label_column,
                                params.train_classes, run.tracking_uri, run.run_id)
        encoder_cfg = {"kind": params.encoder, "in_size": _image_size(data.path), "dim": params.dim,
                       "channels": [16, 32] if _image_size(data.path) <= 8 else [16, 32, 64], "normalize": True}
        train_cfg = params.train_config()
        if train_cfg["augment"] is not None:  # shifts in proportion to the image: 2 px on MNIST's 28, 0.5 px on 8x8
            train_cfg["augment"] = {"max_translate_px": round(2.0 * encoder_cfg["in_size"] / 28, 2)}
        trained = train_metric_task(data.path, train_cfg, encoder_cfg, run.checkpoint_dir(run.run_id),
                                    run.path("encoder.pt"), run.tracking_uri, run.run_id)
        ev = evaluate_metric_task(data.path, trained.path, run.tracking_uri, run.run_id, seed=params.seed)
        exported = export_image_embeddings_task(data.path, trained.path, run.path("embeddings", "images.parquet"),
                                                {"train": train_cfg, "encoder": encoder_cfg, "data": params.data},
                                                run.run_id, None)
        published = publish(run, exported, Champion(
            params.model_name, "map_at_r", ev.metrics["map_at_r"],
            eval_data=f"{params.data}; classes from #{params.train_classes} unseen",
            artifacts={"encoder": trained.path}))
    return run_summary(run, published, table=ev.tables["evaluation"], map_at_r=ev.metrics["map_at_r"],
                       images=data.info["images"])
