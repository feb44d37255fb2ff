"""The multi-sense flow end to end on the Lee corpus with pseudo-words, a real MLflow store, and the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from replearn.flows.params import MultisenseParams
from replearn.serving.registry import load_registered
from replearn.lib.store.embeddings_table import read_embeddings
from replearn.infra.tracking import client, tracking_uri

pytestmark = pytest.mark.slow


def test_multisense_flow_exports_one_row_per_sense_and_disambiguates(prefect_harness, home, lee_corpus):
    from replearn.flows.multisense import multisense_flow

    s = multisense_flow(MultisenseParams(corpus=str(lee_corpus), home=str(home), dim=16, epochs=2, min_count=3,
                                         sense_min_count=40, max_senses=3, pseudo_pairs=2, threads=1))
    m = s["metrics"]
    for key in ("wordsim353_avg_spearman", "wordsim353_maxsim_spearman", "simlex999_avg_spearman",
                "pseudoword_accuracy"):
        assert key in m, key
    assert len(s["pseudowords"]) == 2 and all(r["senses"] >= 1 for r in s["pseudowords"])
    run = client(tracking_uri(home)).get_run(s["mlflow_run_id"])
    assert "pseudoword_accuracy" in run.data.metrics and "train.loss" in run.data.metrics
    # the pairs are unrelated in a reference skip-gram on the unmerged corpus (the bench's rule)
    cosines = json.loads(run.data.params["pseudowords.reference_cosines"])
    assert len(cosines) == 2 and all(c < 0.2 for c in cosines.values())

    table, meta = read_embeddings(s["embeddings"])
    keys, senses = table.column("key").to_pylist(), table.column("sense").to_pylist()
    assert meta.family == "multisense" and all(z is not None for z in senses)
    multi = {k for k, z in zip(keys, senses) if z and z > 0}
    assert multi, "frequent words must get several senses"
    word = sorted(multi)[0]
    assert f"{word}#0" in meta.config["priors_of_multi_sense_words"]

    model, _ = load_registered(tracking_uri(home), "replearn-multisense")
    out = model.predict(pd.DataFrame([{"word": word, "context": "the government said on monday", "topn": 5}]))
    assert len(out) == keys.count(word) and abs(out["posterior"].sum() - 1) < 1e-6 and (out["note"] == "").all()
    fallback = model.predict(pd.DataFrame([{"word": word, "context": "zzqx qqzx"}]))
    assert (fallback["posterior"] - fallback["prior"]).abs().max() < 1e-9 and "prior" in fallback["note"].iloc[0]
    with pytest.raises(ValueError, match="Error: .*not in the multi-sense vocabulary"):
        model.predict(pd.DataFrame([{"word": "zzqx"}]))


def test_max_senses_below_one_is_rejected():
    with pytest.raises(ValueError, match="max_senses"):
        MultisenseParams(max_senses=0)
