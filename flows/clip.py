"""The two-tower flow: pairs -> train -> evaluate (zero-shot, Recall@K) -> Parquet (both modalities) -> FAISS -> registry."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from replearn.flows.params import ClipParams
from replearn.tasks.clip import evaluate_clip_task, export_clip_embeddings_task, load_pairs_task, train_clip_task
from replearn.tasks.export import embedding_map_task, index_task, knn_graph_task
from replearn.infra.home import data_home, inside_home
from replearn.tasks.register import register_task
from replearn.tasks.runs import discard_outputs_task, end_run_task, start_run_task
from replearn.infra.tracking import tracking_uri


def _image_size(data_path: str) -> int:
    import numpy as np

    with np.load(data_path) as z:
        return int(z["train_images"].shape[-1])


@flow(name="clip", log_prints=True)
def clip_flow(params: ClipParams = ClipParams()) -> dict:
    """Train image and text towers into one space with the symmetric contrastive loss (CLIP); evaluate zero-shot
    classification and cross-modal retrieval on held-out pairs; export images and captions to one embeddings table
    and one FAISS index; register the model (champion by zero-shot accuracy, else image->text Recall@1)."""
    home = str(data_home(params.home))
    uri = tracking_uri(home)
    run_id = start_run_task(uri, "clip", home, tags={"data": params.data, "text_tower": params.text_tower})
    run_dir = inside_home(home, "runs", "clip", run_id)
    try:
        # one caption draw per epoch: enough for the largest default (15 epochs on 8x8 digits)
        data = load_pairs_task(params.data, str(run_dir), params.image_column, params.caption_column,
                               params.most_epochs(), params.n_test, params.n_test_templates, params.seed, uri, run_id)
        cfg = params.train_config(_image_size(data["path"]))
        trained = train_clip_task(data["path"], cfg, str(Path(home) / "checkpoints" / "clip" / run_id),
                                  str(run_dir / "model.pt"), uri, run_id)
        ev = evaluate_clip_task(data["path"], trained["path"], uri, run_id)
        emb = export_clip_embeddings_task(data["path"], trained["path"], str(run_dir / "embeddings" / "clip.parquet"),
                                          {"train": cfg, "data": params.data}, run_id, None)
        index = index_task(emb, str(run_dir / "index.faiss"), uri, run_id)
        graph = knn_graph_task(emb, index["path"], str(run_dir / "knn_graph.parquet"), uri, run_id)
        embedding_map_task(emb, str(run_dir / "embedding_map.png"), uri, run_id)
        metric = "zero_shot_accuracy" if ev["zero_shot_accuracy"] is not None else "i2t_r1"
        registered = register_task(uri, run_id, params.model_name, "clip",
                                   {"embeddings": emb, "index": index["path"], "index_meta": index["sidecar"], "graph": graph,
                                    "model": trained["path"]}, metric, ev[metric],
                                   eval_data=f"{params.data}; held out {params.n_test} of pairs, {params.n_test_templates} "
                                             f"templates, seed {params.seed}")
    except BaseException:
        end_run_task(uri, run_id, failed=True)
        discard_outputs_task(str(run_dir))
        raise
    end_run_task(uri, run_id)
    return {"mlflow_run_id": run_id, "tracking_uri": uri, "zero_shot_accuracy": ev["zero_shot_accuracy"],
            "table": ev["table"], "embeddings": emb, "index": index["path"], "model": registered,
            "train_pairs": data["train_pairs"], "test_pairs": data["test_pairs"]}
