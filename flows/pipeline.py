"""The whole pipeline as one flow: each family's flow runs as a subflow, in order, each with its own MLflow run."""

from __future__ import annotations

from prefect import flow

from replearn.flows.clip import clip_flow
from replearn.flows.metric import metric_flow
from replearn.flows.multisense import multisense_flow
from replearn.flows.params import PipelineParams
from replearn.flows.word2vec import word2vec_flow


@flow(name="pipeline", log_prints=True)
def pipeline_flow(params: PipelineParams = PipelineParams()) -> dict:
    """Word vectors, image metric learning, the CLIP-style model and (when given) multi-sense vectors; returns
    ``{family: {"mlflow_run_id", "model"}}`` for the families run."""
    out: dict[str, dict] = {}
    for family, sub, p in (("word2vec", word2vec_flow, params.word2vec), ("metric", metric_flow, params.metric),
                           ("clip", clip_flow, params.clip), ("multisense", multisense_flow, params.multisense)):
        if p is not None:
            s = sub(p)
            out[family] = {"mlflow_run_id": s["mlflow_run_id"], "model": s["model"]}
    return out
