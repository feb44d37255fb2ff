"""The metric flow with index-mined negatives (issue 19, ``--mining index``) end to end on the 8x8 digits: the
mine-negatives stage writes the table and reports it (MLflow metrics, the hardness plot, a Prefect artifact), the
train stage trains its first epoch on that table and logs every later refresh, and the mining mode is recorded with the
model; the parameters refuse index mining for the losses that use every pair, and a batch run's settings are
unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _mining_report import check_mining_report

from replearn.flows.params import MetricParams
from replearn.lib.metric.index_mining import COLUMNS, read_mined
from replearn.lib.store.atomic import read_npz

SMALL = dict(epochs=2, loss="triplet_max", batch_size=64, dim=8, mining="index", mining_k=20)


@pytest.mark.slow
def test_the_flow_mines_reports_and_trains_on_index_mined_triplets(prefect_harness, home, one_thread):
    from replearn.flows.metric import metric_flow

    s = metric_flow(MetricParams(home=str(home), **SMALL))
    table, meta = read_mined(s["stage_outputs"]["mined"])
    assert table.column_names == list(COLUMNS) and s["mining"]["triplets"] == table.num_rows
    d = read_npz(s["stage_outputs"]["images"])
    y = d["labels"]
    a, p, n = (table.column(c).to_numpy() for c in ("anchor_id", "positive_id", "negative_id"))
    # ids are rows of images.npz: every training image is an anchor once (one negative each), none other is
    assert sorted(a.tolist()) == sorted(d["train_idx"].tolist()) and meta["ids"].startswith("rows of images.npz")
    assert (y[n] != y[a]).all() and (y[p] == y[a]).all() and (p != a).all()
    assert meta["encoder"] == "a fresh encoder (seed 0)" and meta["k"] == 20

    run = check_mining_report(home, s)
    # the mining mode is recorded with the model: the encoder file's train config, the run's parameters
    saved = torch.load(s["stage_outputs"]["encoder"], map_location="cpu", weights_only=True)["train_config"]
    assert (saved["mining"], saved["mining_k"], saved["mining_refresh"]) == ("index", 20, 1)
    assert run.data.params["train.mining"] == "index" and np.isfinite(s["map_at_r"])
    # a second identical run reuses the stage (and the others), as every stage is cached
    again = metric_flow(MetricParams(home=str(home), **SMALL))
    assert again["stage_outputs"] == s["stage_outputs"] and again["mining"] == s["mining"]


def test_the_parameters_refuse_index_mining_where_every_pair_is_used():
    with pytest.raises(ValueError, match=r"mining='index' \(--mining\) needs a triplet loss.*'supcon'.*set loss to one of triplet_hinge"):
        MetricParams(mining="index")                                            # supcon is the default loss
    assert MetricParams(mining="both", loss="smooth_softmax").train_config()["mining"] == "both"


def test_a_batch_run_passes_no_mining_setting_on():
    """Its train stage's cache key and checkpoint folder stay those of a run made before index mining existed."""
    cfg = MetricParams(loss="triplet_max", mining_k=7).train_config()
    assert not {"mining", "mining_refresh", "mining_k", "mining_negatives"} & set(cfg)
