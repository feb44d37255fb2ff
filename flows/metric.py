"""The metric-learning flow: images -> [mine negatives] -> train (mined pairs/triplets) -> evaluate -> export ->
publish."""

from __future__ import annotations

from prefect import flow

from replearn.flows.params import MetricParams
from replearn.flows.publish import Champion, publish, run_summary
from replearn.flows.warm_start import continue_from
from replearn.infra.caching import reuse_or_rerun
from replearn.infra.run_context import family_run
from replearn.tasks.inputs import data_key_task, image_source_task
from replearn.tasks.metric import evaluate_metric_task, export_image_embeddings_task, load_images_task, train_metric_task
from replearn.tasks.mining import mine_negatives_task


@flow(name="metric", log_prints=True)
def metric_flow(params: MetricParams = MetricParams()) -> dict:
    """Learn a similarity on images: classes ``0..train_classes-1`` train the encoder, the others are evaluated
    (MAP@R, P@1, R-Precision against raw pixels and PCA), plus classifiers on frozen features; the embeddings
    are exported and published (champion by MAP@R on unseen classes).

    Every stage is cached on its inputs' content and its source (infra/caching.py): the data enters as the hash
    of its files. Checkpoints go to ``<home>/checkpoints/metric/<data+settings key>/``, so a killed run started
    again with the same inputs resumes after its last finished epoch.

    With ``params.init_from`` (a warm start) the encoder starts from the weights of that registered model's
    encoder (the same encoder settings needed), with a fresh optimiser; the champion gate decides as for any run.
    When no model of that name is registered yet, the run trains from scratch.

    With ``params.mining`` index or both, the ``mine-negatives`` stage runs before training: it mines hard negatives
    for every training image from a FAISS index, with the encoder training starts from, writes ``mined.parquet``
    and reports them (MLflow ``mining.*``, ``mining/hardness.png``; the Prefect artifact ``mined-negatives``); the
    train stage takes that table as an input, its first epoch trains on exactly those triplets, and it mines again
    with the current encoder every ``mining_refresh`` epochs (``train.mining.*``).
    """
    source_hash = image_source_task(params.data)
    train_cfg = params.train_config()
    encoder = params.encoder_config()
    with family_run("metric", params.home, tags={"data": params.data, "source_hash": source_hash}) as run:
        data = reuse_or_rerun(load_images_task, params.data, run.stage_out(), params.image_column, params.label_column,
                              params.train_classes, run.tracking_uri, run.run_id, source_hash=source_hash)
        settings = {"train": train_cfg, "encoder": encoder}
        if (init := continue_from(run, params.init_from, ["encoder"], params.model_name)) is not None:
            settings["init_from"] = [init.name, init.version]  # a warm start never resumes a scratch checkpoint
        init_from = init.label if init else None
        mined = None
        if params.mining != "batch":
            mined = reuse_or_rerun(mine_negatives_task, data.path, train_cfg, encoder, run.stage_out("mined.parquet"),
                                   run.tracking_uri, run.run_id, init=init.files["encoder"] if init else None,
                                   init_from=init_from)
        key = data_key_task(data.path, settings).key
        trained = reuse_or_rerun(train_metric_task, data.path, train_cfg, encoder, run.checkpoint_dir(key),
                                 run.stage_out("encoder.pt"), run.tracking_uri, run.run_id,
                                 init=init.files["encoder"] if init else None, init_from=init_from,
                                 mined_path=mined.path if mined else None)
        ev = reuse_or_rerun(evaluate_metric_task, data.path, trained.path, run.tracking_uri, run.run_id,
                            seed=params.seed)
        exported = reuse_or_rerun(export_image_embeddings_task, data.path, trained.path,
                                  run.stage_out("embeddings", "images.parquet"),
                                  {**trained.figures["config"], "data": params.data}, run.run_id, source_hash)
        published = publish(run, exported, Champion(
            params.model_name, "map_at_r", ev.metrics["map_at_r"],
            eval_data=f"{params.data}; classes from #{params.train_classes} unseen",
            artifacts={"encoder": trained.path}))
    return run_summary(run, published, table=ev.tables["evaluation"], map_at_r=ev.metrics["map_at_r"],
                       images=data.info["images"], init_from=init_from, mining=mined.stats if mined else None,
                       stage_outputs={"images": data.path, "encoder": trained.path,
                                      **({"mined": mined.path} if mined else {})})
