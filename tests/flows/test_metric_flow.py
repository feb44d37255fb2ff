"""The metric-learning flow end to end on scikit-learn's 8x8 digits, with a real MLflow store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from replearn.flows.params import MetricParams
from replearn.serving.registry import load_registered
from replearn.lib.store.embeddings_table import read_embeddings
from replearn.infra.tracking import client, tracking_uri

pytestmark = pytest.mark.slow


def test_metric_flow_trains_evaluates_exports_and_answers_searches(prefect_harness, home, tmp_path):
    from replearn.flows.metric import metric_flow

    s = metric_flow(MetricParams(home=str(home), epochs=3, loss="supcon", batch_size=64, dim=16))
    rows = {r["features"]: r for r in s["table"]}
    assert set(rows) == {"encoder", "raw_pixels", "pca_16", "finetuned_classifier"}
    assert all(0 <= rows[f]["map_at_r"] <= 1 for f in ("encoder", "raw_pixels", "pca_16"))
    assert rows["encoder"]["logreg_accuracy"] > 0.5  # frozen features over all 10 classes
    assert 0 <= rows["finetuned_classifier"]["accuracy"] <= 1
    uri = tracking_uri(home)
    metrics = client(uri).get_run(s["mlflow_run_id"]).data.metrics
    for key in ("map_at_r", "encoder.precision_at_1", "raw_pixels.map_at_r", "train.loss", "index.recall_at_10"):
        assert key in metrics, key
    table, meta = read_embeddings(s["embeddings"])
    assert meta.family == "metric" and table.num_rows == 1797 and table.column("label").null_count == 0
    model, _ = load_registered(uri, "replearn-metric")
    by_id = model.predict(pd.DataFrame([{"id": 0, "topn": 5}]))
    assert len(by_id) == 5 and 0 not in set(by_id["id"])
    png = tmp_path / "digit.png"
    from replearn.lib.metric.images import load_digits_8x8

    ds = load_digits_8x8()
    Image.fromarray((ds.images[0, 0] * 255).astype(np.uint8)).resize((40, 40)).save(png)
    by_image = model.predict(pd.DataFrame([{"image": str(png), "topn": 5}]))
    assert len(by_image) == 5
    assert by_image["label"].iloc[0] == by_id["label"].iloc[0] or by_image["similarity"].iloc[0] > 0.5
