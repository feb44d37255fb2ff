"""The metric-learning flow's warm start (issue 17, ``--init-from NAME@ALIAS``): the encoder starts from a registered
model's weights, a schedule's first run trains from scratch, a differing encoder is refused, and the champion gate
decides as for any run."""

from __future__ import annotations

import pytest
import torch

from replearn.flows.params import MetricParams
from replearn.infra.run_context import RunContext
from replearn.infra.tracking import client, tracking_uri
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.encoder_file import read_encoder_file
from replearn.lib.metric.encoders import build_encoder

pytestmark = pytest.mark.slow

SMALL = dict(epochs=1, loss="supcon", batch_size=64, dim=8)
NAME = "replearn-metric"


def _run(home, **kw):
    from replearn.flows.metric import metric_flow

    return metric_flow(MetricParams(home=str(home), **{**SMALL, **kw}))


def _first_epoch_loss(uri: str, summary: dict) -> float:
    history = client(uri).get_metric_history(summary["mlflow_run_id"], "train.loss")
    return min(history, key=lambda m: m.step).value


def test_a_schedule_starts_from_scratch_then_continues_from_its_champion_and_the_gate_decides(
        prefect_harness, home, one_thread, monkeypatch):
    keys: list[str] = []  # the checkpoint folders the runs train in
    checkpoint_dir = RunContext.checkpoint_dir
    monkeypatch.setattr(RunContext, "checkpoint_dir", lambda self, key: keys.append(key) or checkpoint_dir(self, key))
    uri = tracking_uri(home)
    c = client(uri)

    first = _run(home, init_from=f"{NAME}@champion")  # nothing registered yet: from scratch, version 1
    assert first["init_from"] is None and "init_from" not in c.get_run(first["mlflow_run_id"]).data.params
    assert str(first["model"]["version"]) == "1" and first["model"]["champion"]

    warm = _run(home, init_from=f"{NAME}@champion")  # the same settings, from version 1
    assert warm["init_from"] == f"{NAME} v1"
    assert c.get_run(warm["mlflow_run_id"]).data.params["init_from"] == f"{NAME} v1"
    assert keys[0] != keys[1]  # never resumes a scratch run's checkpoint
    # it starts where version 1 ended: its one epoch's mean loss is below the scratch epoch's (same seed, batches)
    assert _first_epoch_loss(uri, warm) < _first_epoch_loss(uri, first)
    # registered, and the gate decided against the champion as for any run
    assert str(warm["model"]["version"]) == "2" and warm["model"]["new_version"]
    assert str(warm["model"]["previous_champion"]) == "1"
    assert warm["model"]["champion"] == (warm["map_at_r"] > first["map_at_r"])
    tags = c.get_model_version(NAME, "2").tags
    assert tags["role"] == ("champion" if warm["model"]["champion"] else "challenger")
    assert "champion v1" in tags["comparison"]


def test_a_warm_start_begins_at_the_registered_weights_and_refuses_another_encoder(prefect_harness, home,
                                                                                   one_thread):
    first = _run(home)
    warm = _run(home, init_from=f"{NAME}@1", lr=1e-12)  # a learning rate of almost nothing: the start stays
    cfg, v1 = read_encoder_file(first["stage_outputs"]["encoder"])
    _, after = read_encoder_file(warm["stage_outputs"]["encoder"])
    torch.manual_seed(0)
    scratch = build_encoder(cfg).state_dict()  # where a run from scratch with this seed starts
    params = [k for k, v in v1.items() if v.is_floating_point() and "running" not in k]  # not batch-norm statistics
    assert params
    for k in params:
        torch.testing.assert_close(after[k], v1[k], rtol=0, atol=1e-7)
    # version 1 trained away from that start, so the check above cannot pass by starting from scratch
    assert max(float((v1[k] - scratch[k]).abs().max()) for k in params) > 1e-2

    with pytest.raises(ReplearnInputError, match=r"\(replearn-metric v1\) has a cnn encoder of dimension 8; --dim 16 "
                                                 r"differs: pass --dim 8, or leave --init-from out"):
        _run(home, init_from=f"{NAME}@1", dim=16)
    with pytest.raises(ReplearnInputError, match=r"--encoder mlp differs: pass --encoder cnn"):
        _run(home, init_from=f"{NAME}@1", encoder="mlp")
