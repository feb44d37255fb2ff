"""Shared by the metric and CLIP mining flow tests: what a flow run with ``--mining index`` (2 epochs) must show in
MLflow and Prefect."""

from __future__ import annotations

import pytest

from replearn.infra.tracking import client, tracking_uri

#: figures of the mine stage that the train stage logs again at epoch 1 (it read the stage's table)
SAME_AT_EPOCH_1 = ("triplets", "margin_violations", "guard_removed", "mean_d_ap", "mean_d_an", "mean_negative_rank")


def check_mining_report(home, summary: dict):
    """The mine stage's ``mining.*`` figures, its plot, summary and Prefect artifact; the train stage's
    ``train.mining.*`` at epoch 1 equal to the stage's (the table was read, not mined again: no refresh time) and at
    epoch 2 from a refresh. Returns the MLflow run."""
    from prefect.client.orchestration import get_client

    c = client(tracking_uri(home))
    run = c.get_run(summary["mlflow_run_id"])
    stage = {k.removeprefix("mining."): v for k, v in run.data.metrics.items() if k.startswith("mining.")}
    assert {"margin_violations", "order_violations", "guard_removed", "triplets", "seconds"} <= set(stage)
    assert 0 <= stage["margin_violations"] <= 1 and stage["guard_removed"] > 0
    for name in SAME_AT_EPOCH_1:
        history = sorted(c.get_metric_history(run.info.run_id, f"train.mining.{name}"), key=lambda m: m.step)
        assert [m.step for m in history] == [1, 2]
        assert history[0].value == pytest.approx(stage[name], rel=1e-6), name
    assert [m.step for m in c.get_metric_history(run.info.run_id, "train.mining.seconds")] == [2]
    assert {"mining/hardness.png", "mining/summary.md"} <= {a.path for a in c.list_artifacts(run.info.run_id, "mining")}
    with get_client(sync_client=True) as pc:
        assert "mined-negatives" in {art.key for art in pc.read_artifacts()}
    return run
