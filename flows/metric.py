"""The metric-learning flow: images -> train (mined pairs/triplets) -> evaluate -> Parquet -> FAISS -> registry."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from replearn.flows.params import MetricParams
from replearn.tasks.export import embedding_map_task, index_task, knn_graph_task
from replearn.infra.home import data_home, inside_home
from replearn.tasks.metric import evaluate_metric_task, export_image_embeddings_task, load_images_task, train_metric_task
from replearn.tasks.register import register_task
from replearn.tasks.runs import discard_outputs_task, end_run_task, start_run_task
from replearn.infra.tracking import tracking_uri


def _image_size(data_path: str) -> int:
    import numpy as np

    with np.load(data_path) as z:
        return int(z["images"].shape[-1])


@flow(name="metric", log_prints=True)
def metric_flow(params: MetricParams = MetricParams()) -> dict:
    """Learn a similarity on images: classes ``0..train_classes-1`` train the encoder, the others are evaluated
    (MAP@R, P@1, R-Precision against raw pixels and PCA), plus classifiers on frozen features; the embeddings
    are exported, indexed and the model registered (champion by MAP@R on unseen classes)."""
    home = str(data_home(params.home))
    uri = tracking_uri(home)
    run_id = start_run_task(uri, "metric", home, tags={"data": params.data})
    run_dir = inside_home(home, "runs", "metric", run_id)
    try:
        data = load_images_task(params.data, str(run_dir), params.image_column, params.label_column,
                                params.train_classes, uri, run_id)
        encoder_cfg = {"kind": params.encoder, "in_size": _image_size(data["path"]), "dim": params.dim,
                       "channels": [16, 32] if _image_size(data["path"]) <= 8 else [16, 32, 64], "normalize": True}
        train_cfg = params.train_config()
        if train_cfg["augment"] is not None:  # shifts in proportion to the image: 2 px on MNIST's 28, 0.5 px on 8x8
            train_cfg["augment"] = {"max_translate_px": round(2.0 * encoder_cfg["in_size"] / 28, 2)}
        trained = train_metric_task(data["path"], train_cfg, encoder_cfg,
                                    str(Path(home) / "checkpoints" / "metric" / run_id), str(run_dir / "encoder.pt"),
                                    uri, run_id)
        ev = evaluate_metric_task(data["path"], trained["path"], uri, run_id, seed=params.seed)
        emb = export_image_embeddings_task(data["path"], trained["path"], str(run_dir / "embeddings" / "images.parquet"),
                                           {"train": train_cfg, "encoder": encoder_cfg, "data": params.data},
                                           run_id, None)
        index = index_task(emb, str(run_dir / "index.faiss"), uri, run_id)
        graph = knn_graph_task(emb, index["path"], str(run_dir / "knn_graph.parquet"), uri, run_id)
        embedding_map_task(emb, str(run_dir / "embedding_map.png"), uri, run_id)
        registered = register_task(uri, run_id, params.model_name, "metric",
                                   {"embeddings": emb, "index": index["path"], "index_meta": index["sidecar"], "graph": graph,
                                    "encoder": trained["path"]}, "map_at_r", ev["map_at_r"],
                                   eval_data=f"{params.data}; classes from #{params.train_classes} unseen")
    except BaseException:
        end_run_task(uri, run_id, failed=True)
        discard_outputs_task(str(run_dir))
        raise
    end_run_task(uri, run_id)
    return {"mlflow_run_id": run_id, "tracking_uri": uri, "table": ev["table"], "map_at_r": ev["map_at_r"],
            "embeddings": emb, "index": index["path"], "model": registered, "images": data["images"]}
