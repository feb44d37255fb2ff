"""The CLIP flow end to end on scikit-learn's 8x8 digits with a real MLflow store, and on a user's CSV of pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from replearn.flows.params import ClipParams
from replearn.serving.registry import load_registered
from replearn.lib.clip.text_tower import CaptionError
from replearn.lib.store.embeddings_table import read_embeddings
from replearn.infra.tracking import client, tracking_uri

pytestmark = pytest.mark.slow


def test_clip_flow_trains_evaluates_exports_and_searches_both_ways(prefect_harness, home, tmp_path):
    from replearn.flows.clip import clip_flow

    s = clip_flow(ClipParams(home=str(home), epochs=6, dim=32))
    assert s["zero_shot_accuracy"] > 0.5                      # chance is 0.1; 15 epochs reach ~0.98
    assert {r["direction"] for r in s["table"]} == {"image -> text", "text -> image"}
    uri = tracking_uri(home)
    run = client(uri).get_run(s["mlflow_run_id"])
    for key in ("zero_shot_accuracy", "eval.i2t_r1", "eval.t2i_r5", "train.loss", "train.logit_scale",
                "train.zero_shot_top1", "index.recall_at_10"):
        assert key in run.data.metrics, key
    history = client(uri).get_metric_history(s["mlflow_run_id"], "train.loss")
    assert len(history) == 6 and history[-1].value < history[0].value

    table, meta = read_embeddings(s["embeddings"])
    assert meta.family == "clip" and meta.normalized
    modality = table.column("modality").to_pylist()
    assert modality.count("image") == 1797 and modality.count("text") > 100
    assert modality == sorted(modality)                       # images first, then captions

    model, _ = load_registered(uri, "replearn-clip")
    by_text = model.predict(pd.DataFrame([{"text": "a photo of the digit seven", "topn": 10}]))
    assert len(by_text) == 10 and set(by_text["modality"]) == {"image"}
    assert (by_text["label"] == "7").mean() >= 0.5
    from replearn.lib.metric.images import load_digits_8x8

    ds = load_digits_8x8()
    png = tmp_path / "three.png"
    i3 = int(np.flatnonzero(ds.labels == 3)[0])
    Image.fromarray((ds.images[i3, 0] * 255).astype(np.uint8)).resize((56, 56)).save(png)
    by_image = model.predict(pd.DataFrame([{"image": str(png), "topn": 5}]))
    assert len(by_image) == 5 and set(by_image["modality"]) == {"text"}
    by_id = model.predict(pd.DataFrame([{"id": i3, "topn": 3}]))
    assert set(by_id["modality"]) == {"text"} and (by_id["id"] >= 1797).all()
    with pytest.raises(ValueError, match="CaptionError: .*tokenise to nothing"):
        model.predict(pd.DataFrame([{"text": "?!", "topn": 3}]))


def _write_pairs(tmp_path, n: int = 60) -> pd.DataFrame:
    from replearn.lib.metric.images import load_digits_8x8

    ds = load_digits_8x8()
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    rows = []
    for i in range(n):
        p = tmp_path / f"img{i}.png"
        Image.fromarray((ds.images[i, 0] * 255).astype(np.uint8)).save(p)
        rows.append({"image": p.name, "caption": f"a handwritten {names[int(ds.labels[i])]}"})
    return pd.DataFrame(rows)


def test_clip_flow_on_a_users_csv_skips_unreadable_images(prefect_harness, home, tmp_path):
    from replearn.flows.clip import clip_flow

    df = _write_pairs(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    df = pd.concat([df, pd.DataFrame([{"image": "empty.png", "caption": "a handwritten five"},
                                      {"image": "missing.png", "caption": "a handwritten six"}])])
    csv = tmp_path / "pairs.csv"
    df.to_csv(csv, index=False)
    import warnings

    with warnings.catch_warnings(record=True) as seen:  # replearn's own warning, expected here
        warnings.simplefilter("always", UserWarning)
        s = clip_flow(ClipParams(data=str(csv), home=str(home), epochs=2, batch_size=16, dim=16))
    assert any("skipped 2 unreadable image" in str(w.message) for w in seen)
    assert s["zero_shot_accuracy"] is None and s["train_pairs"] + s["test_pairs"] == 60
    metrics = client(tracking_uri(home)).get_run(s["mlflow_run_id"]).data.metrics
    assert metrics["data.skipped"] == 2


def test_clip_flow_rejects_empty_captions_and_leaves_nothing(prefect_harness, home, tmp_path):
    from replearn.flows.clip import clip_flow

    df = _write_pairs(tmp_path, 10)
    df.loc[4, "caption"] = "  ...  "
    csv = tmp_path / "pairs.csv"
    df.to_csv(csv, index=False)
    with pytest.raises(CaptionError, match=r"row 4"):
        clip_flow(ClipParams(data=str(csv), home=str(home), epochs=1, batch_size=4))
    stages = home / "stages"
    assert not stages.exists() or not any(stages.rglob("*.npz")) and not (home / "runs").exists()
