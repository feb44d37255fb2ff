"""The whole-pipeline flow runs each family as a subflow, each tracked in its own MLflow run."""

from __future__ import annotations

import pytest

from replearn.flows.params import MetricParams, PipelineParams, Word2VecParams
from replearn.infra.tracking import client, tracking_uri

pytestmark = pytest.mark.slow


def test_pipeline_runs_the_chosen_families(prefect_harness, home, lee_corpus):
    from replearn.flows.pipeline import pipeline_flow

    p = PipelineParams(word2vec=Word2VecParams(corpus=str(lee_corpus), home=str(home), epochs=1, dim=16, threads=1),
                       metric=MetricParams(home=str(home), epochs=1, dim=8, batch_size=64), clip=None)
    out = pipeline_flow(p)
    assert set(out) == {"word2vec", "metric"}
    c = client(tracking_uri(home))
    for family, r in out.items():
        assert c.get_run(r["mlflow_run_id"]).info.status == "FINISHED"
        assert str(c.get_model_version_by_alias(f"replearn-{family}", "champion").version) == str(r["model"]["version"])
        assert _parent_flow(c.get_run(r["mlflow_run_id"]).data.tags["prefect.flow_run_id"]) == "pipeline"


def _parent_flow(flow_run_id: str) -> str:
    """The name of the flow that ran the flow run ``flow_run_id`` as a subflow (each family runs once, directly
    under the pipeline: no flow starts itself again)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as pc:
        parent = pc.read_task_run(pc.read_flow_run(flow_run_id).parent_task_run_id)
        return pc.read_flow(pc.read_flow_run(parent.flow_run_id).flow_id).name
