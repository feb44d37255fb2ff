"""The multi-sense flow end to end on the Lee corpus with pseudo-words, a real MLflow store, and the CLI."""

from __future__ import annotations

import json

import pandas as pd
import numpy as np
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
                "pseudoword_mapped_accuracy", "pseudoword_one_to_one", "pseudoword_majority"):
        assert key in m, key
    rows = s["pseudowords"]
    assert len(rows) == 2 and all(r["senses"] >= 1 for r in rows)
    # SemEval-2010 supervised mapping: about 80 % of each pair's held-out occurrences map, the rest are scored
    assert all(r["mapped_on"] >= r["scored_on"] for r in rows)
    assert sum(r["mapped_on"] for r in rows) > 0
    scored = [r for r in rows if r["scored_on"]]  # the Lee corpus is small: a pair may have none to score
    want = np.mean([r["mapped"] for r in scored]) if scored else float("nan")
    assert m["pseudoword_mapped_accuracy"] == pytest.approx(want, abs=1e-4, nan_ok=True)
    run = client(tracking_uri(home)).get_run(s["mlflow_run_id"])
    assert "pseudoword_mapped_accuracy" in run.data.metrics and "train.loss" in run.data.metrics
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


#: Every cached stage of the multi-sense flow (register is no cache: each run registers a version).
CACHED_STAGES = {"tokenize", "vocabulary", "encode-corpus", "pseudo-words", "train-multisense", "evaluate-multisense",
                 "export-multisense", "build-index", "knn-graph", "embedding-map"}


def _task_states(flow_run_id: str) -> dict[str, str]:
    """``{task name: state name}`` of the task runs of one flow run (names without the ``-<n>`` suffix)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as c:
        runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs}


def test_a_second_identical_run_reuses_every_stage(prefect_harness, home, lee_corpus):
    from replearn.flows.multisense import multisense_flow

    params = MultisenseParams(corpus=str(lee_corpus), home=str(home), dim=8, epochs=2, min_count=5,
                              sense_min_count=60, max_senses=2, pseudo_pairs=1, threads=1)
    first, second = multisense_flow(params), multisense_flow(params)
    assert second["embeddings"] == first["embeddings"] and second["index"] == first["index"]
    for key in ("metrics", "pseudowords", "neighbours"):                   # NaN-safe: the cached evaluation
        assert json.dumps(second[key]) == json.dumps(first[key]), key
    assert not list(home.glob(f"stages/*/*/{second['mlflow_run_id']}"))  # no stage wrote anything of its own
    c = client(tracking_uri(home))
    ids = [c.get_run(s["mlflow_run_id"]).data.tags["prefect.flow_run_id"] for s in (first, second)]
    ran, reused = _task_states(ids[0]), _task_states(ids[1])
    assert CACHED_STAGES <= set(ran) and all(ran[t] == "Completed" for t in CACHED_STAGES)
    assert {t: reused[t] for t in CACHED_STAGES} == {t: "Cached" for t in CACHED_STAGES}
    assert "tokenize-partition" in ran and not {"tokenize-partition", "plan-partitions"} & set(reused)
    # nothing changed: no new version; the run says which version (and run) still stands
    assert reused["register-model"] == "Completed" and second["model"]["version"] in (1, "1")
    assert not second["model"]["new_version"] and "nothing changed since version 1" in second["model"]["reason"]
    tags = c.get_run(second["mlflow_run_id"]).data.tags
    assert tags["replearn.registry"] == "unchanged" and tags["replearn.model_run_id"] == first["mlflow_run_id"]
    assert f"runs/{first['mlflow_run_id']}" in tags["mlflow.note.content"]
    assert len(c.search_model_versions(f"name = '{second['model']['name']}'")) == 1


def test_a_corpus_without_benchmark_words_trains_and_reports_nan_similarity(prefect_harness, home, tmp_path):
    """As word2vec: WordSim-353 / SimLex-999 that the vocabulary cannot cover are nan with a warning, not a failure
    after training."""
    from replearn.flows.multisense import multisense_flow

    corpus = tmp_path / "tiny.txt"
    corpus.write_text("the zork sat on the blip and the quux sat on the flim\n" * 300)
    s = multisense_flow(MultisenseParams(corpus=str(corpus), home=str(home), dim=8, epochs=2, min_count=1,
                                         sense_min_count=100, max_senses=2, threads=1))
    m = s["metrics"]
    assert all(np.isnan(m[f"{n}_{k}_spearman"]) for n in ("wordsim353", "simlex999") for k in ("avg", "maxsim"))
    assert str(s["model"]["version"]) == "1"
