"""The two-tower flow: pairs -> [mine hard-negative captions] -> train -> evaluate (zero-shot, Recall@K) -> export
(both modalities) -> publish."""

from __future__ import annotations

from prefect import flow

from replearn.flows.params import ClipParams
from replearn.flows.publish import Champion, publish, run_summary
from replearn.flows.warm_start import continue_from
from replearn.infra.caching import reuse_or_rerun
from replearn.infra.run_context import family_run
from replearn.tasks.clip import evaluate_clip_task, export_clip_embeddings_task, load_pairs_task, train_clip_task
from replearn.tasks.inputs import data_key_task, image_source_task
from replearn.tasks.mining import mine_caption_negatives_task


@flow(name="clip", log_prints=True)
def clip_flow(params: ClipParams = ClipParams()) -> dict:
    """Train image and text towers into one space with the symmetric contrastive loss (CLIP); evaluate zero-shot
    classification and cross-modal retrieval on held-out pairs; export images and captions to one embeddings table
    and publish it (one FAISS index; champion by zero-shot accuracy, else image->text Recall@1).

    Every stage is cached on its inputs' content and its source (infra/caching.py): the data enters as the hash
    of its files. Checkpoints go to ``<home>/checkpoints/clip/<data+settings key>/``, so a killed run started
    again with the same inputs resumes after its last finished epoch.

    With ``params.init_from`` (a warm start) both towers and the logit scale start from that registered model's
    (the same tower settings needed; caption tokens keep their rows by token), with a fresh optimiser and learning
    rate schedule; the champion gate decides as for any run. When no model of that name is registered yet, the run
    trains from scratch.

    With ``params.mining`` index or both, the ``mine-caption-negatives`` stage runs before training: with the towers
    training starts from, it mines each training image's nearest captions of another class from a FAISS index over
    the captions, writes ``mined.parquet`` and reports them (MLflow ``mining.*``, ``mining/hardness.png``; the
    Prefect artifact ``mined-negatives``), as the metric flow's ``mine-negatives`` does; the train stage takes that
    table as an input, its first epoch's batches hold exactly those hard negatives, and it mines again with the
    current towers every ``mining_refresh`` epochs (``train.mining.*``).
    """
    source_hash = image_source_task(params.data)
    tags = {"data": params.data, "text_tower": params.text_tower, "source_hash": source_hash}
    with family_run("clip", params.home, tags=tags) as run:
        # one caption draw per epoch: enough for the largest default (15 epochs on 8x8 digits)
        data = reuse_or_rerun(load_pairs_task, params.data, run.stage_out(), params.image_column, params.caption_column,
                              params.most_epochs(), params.n_test, params.n_test_templates, params.seed,
                              run.tracking_uri, run.run_id, source_hash=source_hash)
        cfg = params.train_config(data.info["image_size"])
        settings = cfg
        if (init := continue_from(run, params.init_from, ["model"], params.model_name)) is not None:
            settings = {**cfg, "init_from": [init.name, init.version]}  # never resumes a scratch checkpoint
        init_from = init.label if init else None
        mined = None
        if params.mining != "batch":
            mined = reuse_or_rerun(mine_caption_negatives_task, data.path, cfg, run.stage_out("mined.parquet"),
                                   run.tracking_uri, run.run_id, init=init.files["model"] if init else None,
                                   init_from=init_from)
        key = data_key_task(data.path, settings).key
        trained = reuse_or_rerun(train_clip_task, data.path, cfg, run.checkpoint_dir(key), run.stage_out("model.pt"),
                                 run.tracking_uri, run.run_id, init=init.files["model"] if init else None,
                                 init_from=init_from, mined_path=mined.path if mined else None)
        ev = reuse_or_rerun(evaluate_clip_task, data.path, trained.path, run.tracking_uri, run.run_id)
        exported = reuse_or_rerun(export_clip_embeddings_task, data.path, trained.path,
                                  run.stage_out("embeddings", "clip.parquet"), {"train": cfg, "data": params.data},
                                  run.run_id, source_hash)
        metric = "zero_shot_accuracy" if ev.metrics["zero_shot_accuracy"] is not None else "i2t_r1"
        published = publish(run, exported, Champion(
            params.model_name, metric, ev.metrics[metric],
            eval_data=f"{params.data}; held out {params.n_test} of pairs, {params.n_test_templates} templates, "
                      f"seed {params.seed}",
            artifacts={"model": trained.path}))
    return run_summary(run, published, zero_shot_accuracy=ev.metrics["zero_shot_accuracy"],
                       table=ev.tables["retrieval"], train_pairs=data.info["train_pairs"],
                       test_pairs=data.info["test_pairs"], init_from=init_from,
                       mining=mined.stats if mined else None,
                       stage_outputs={"pairs": data.path, "model": trained.path,
                                      **({"mined": mined.path} if mined else {})})
