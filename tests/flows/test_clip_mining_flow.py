"""The CLIP flow with hard-negative captions mined from an index (issue 19, ``--mining index``) end to end on its tiny
default data (scikit-learn's 8x8 digits): the mine-caption-negatives stage writes the table and reports it (MLflow
metrics, the hardness plot, the Prefect artifact), no negative caption is of its image's class, the train stage trains
its first epoch on that table and logs each later refresh, and the mining mode is recorded with the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _mining_report import check_mining_report

from replearn.flows.params import ClipParams
from replearn.lib.metric.index_mining import COLUMNS, read_mined
from replearn.lib.store.atomic import read_npz

pytestmark = pytest.mark.slow

SMALL = dict(epochs=2, dim=16, mining="index", mining_k=20, mining_negatives=2)


def test_the_flow_mines_reports_and_trains_on_hard_negative_captions(prefect_harness, home, one_thread):
    from replearn.flows.clip import clip_flow

    s = clip_flow(ClipParams(home=str(home), **SMALL))
    table, meta = read_mined(s["stage_outputs"]["mined"])
    assert table.column_names == list(COLUMNS) and s["mining"]["triplets"] == table.num_rows
    d = read_npz(s["stage_outputs"]["pairs"])
    y, captions = d["train_labels"], d["train_captions"][0]
    a, p, n = (table.column(c).to_numpy() for c in ("anchor_id", "positive_id", "negative_id"))
    # ids are rows of the training pairs: every image is an anchor with two negatives, its own caption the positive
    assert np.bincount(a).tolist() == [2] * len(y) and (p == a).all() and meta["ids"].startswith("rows of the training")
    assert (y[n] != y[a]).all()                                                 # no caption of the image's class
    assert (captions[n[::2]] != captions[n[1::2]]).all()                        # two distinct captions per image
    assert meta["model"] == "fresh towers (seed 0)" and meta["distance"] == "cosine_distance"

    run = check_mining_report(home, s)
    # the mining mode is recorded with the model (its saved config) and as the run's parameters
    saved = torch.load(s["stage_outputs"]["model"], map_location="cpu", weights_only=True)["config"]
    assert (saved["mining"], saved["mining_k"], saved["mining_negatives"]) == ("index", 20, 2)
    assert run.data.params["train.mining"] == "index" and s["zero_shot_accuracy"] is not None
    # a second identical run reuses the stage (and the others)
    again = clip_flow(ClipParams(home=str(home), **SMALL))
    assert again["stage_outputs"] == s["stage_outputs"] and again["mining"] == s["mining"]


def test_a_batch_run_passes_no_mining_setting_on():
    """Its train stage's cache key and checkpoint folder stay those of a run made before index mining existed."""
    cfg = ClipParams(mining_k=7).train_config(8)
    assert not {"mining", "mining_refresh", "mining_k", "mining_negatives"} & set(cfg)
    assert ClipParams(mining="both").train_config(8)["mining"] == "both"
