"""Scheduled retraining on a growing corpus folder (issue 17): only new files are tokenized, a warm start continues
from the registered model on the files it has not seen, nothing new registers nothing, and every retrain reports
what changed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from replearn.flows.params import Word2VecParams
from replearn.infra.tracking import client, tracking_uri
from replearn.lib.errors import ReplearnInputError
from replearn.lib.store.atomic import read_npz
from replearn.lib.text.vocab import read_vocabulary

pytestmark = pytest.mark.slow

SMALL = dict(dim=16, epochs=1, min_count=3, threads=1)
CONTINUE = "replearn-word2vec@champion"


def _run(home, corpus, **kw):
    from replearn.flows.word2vec import word2vec_flow

    return word2vec_flow(Word2VecParams(corpus=str(corpus), home=str(home), **{**SMALL, **kw}))


def _task_states(uri: str, summary: dict) -> dict[str, list[str]]:
    """``{task name: [state names]}`` of the flow run behind a summary's MLflow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run = client(uri).get_run(summary["mlflow_run_id"]).data.tags["prefect.flow_run_id"]
    with get_client(sync_client=True) as c:
        runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run])))
    out: dict[str, list[str]] = {}
    for r in runs:
        out.setdefault(r.name.rsplit("-", 1)[0], []).append(r.state.name)
    return out


def test_a_grown_folder_tokenizes_only_its_new_file(prefect_harness, home, corpus_halves):
    folder, later = corpus_halves
    uri = tracking_uri(home)
    first = _run(home, folder)
    (folder / "b.txt").write_text(later.read_text())
    grown = _run(home, folder)
    states = _task_states(uri, grown)
    assert sorted(states["tokenize-partition"]) == ["Cached", "Completed"]  # a.txt from the cache, b.txt read
    assert states["tokenize"] == ["Completed"] and grown["tokens"] > first["tokens"]
    assert grown["model"]["new_version"]


def test_warm_start_continues_on_new_files_then_registers_nothing(prefect_harness, home, corpus_halves):
    folder, later = corpus_halves
    uri = tracking_uri(home)
    c = client(uri)
    first = _run(home, folder, init_from=CONTINUE)  # nothing registered yet: the schedule's first run is from scratch
    assert first["init_from"] is None and first["new_files"] is None and first["what_changed"] is None
    v1 = read_vocabulary(first["stage_outputs"]["vocabulary"])
    (folder / "b.txt").write_text(later.read_text())

    warm = _run(home, folder, init_from=CONTINUE)
    assert warm["init_from"] == "replearn-word2vec v1" and warm["new_files"] == [str(folder / "b.txt")]
    assert warm["model"]["new_version"] and str(warm["model"]["version"]) == "2"
    # it trained on b.txt only, over a vocabulary grown from v1's with merged counts
    assert warm["tokens"] < first["tokens"] * 1.5
    v2 = read_vocabulary(warm["stage_outputs"]["vocabulary"])
    assert set(v1.words) <= set(v2.words) and len(v2) > len(v1)
    assert all(v2.counts[v2.index[w]] >= v1.counts[v1.index[w]] for w in v1.words[:50])
    # the report: MLflow artifacts and figures, and a Prefect artifact
    run = c.get_run(warm["mlflow_run_id"])
    assert float(run.data.params["train.alpha"]) == Word2VecParams().warm_alpha  # the learning rate restarted low
    assert {"report/what_changed.md", "report/what_changed.png"} <= {
        a.path for a in c.list_artifacts(run.info.run_id, "report")}
    assert 0 < run.data.metrics["changed.oov_token_rate"] < 1 and run.data.metrics["changed.new_words"] > 0
    text = open(warm["what_changed"]).read()
    assert "replearn-word2vec v1" in text and "New words" in text
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as pc:
        keys = {a.key for a in pc.read_artifacts()}
    assert "what-changed" in keys
    # the registered model carries what the next warm start needs, and the list now holds both files
    files = json.loads(open(_registered_file(uri, "2", "corpus_files")).read())["files"]
    assert sorted(f["path"].rsplit("/", 1)[1] for f in files) == ["a.txt", "b.txt"]

    # the third scheduled run: nothing has landed since, so nothing is registered
    again = _run(home, folder, init_from="replearn-word2vec@2")
    assert again["new_files"] == [] and not again["model"]["new_version"] and str(again["model"]["version"]) == "2"
    tags = c.get_run(again["mlflow_run_id"]).data.tags
    assert tags["replearn.registry"] == "unchanged" and tags["replearn.model_run_id"] == warm["mlflow_run_id"]
    assert tags["mlflow.note.content"].startswith("No new files")
    assert len(c.search_model_versions("name = 'replearn-word2vec'")) == 2


def test_warm_start_keeps_old_rows_as_its_start_and_refuses_what_does_not_fit(prefect_harness, home, corpus_halves):
    """With a learning rate of almost nothing, the warm start's vectors are v1's rows, moved to the new ids. Another
    dimension, a missing alias and a misspelt name are refused; an empty new file is no new data."""
    folder, later = corpus_halves
    with pytest.raises(ReplearnInputError, match="no model 'replearn-wordtovec' is registered"):
        _run(home, folder, init_from="replearn-wordtovec@champion")  # not this run's name: never from scratch
    first = _run(home, folder)
    (folder / "b.txt").write_text(later.read_text())
    with pytest.raises(ReplearnInputError, match="--dim 16"):
        _run(home, folder, init_from=CONTINUE, dim=8)
    with pytest.raises(ReplearnInputError, match="has no alias 'nosuch'; its versions are 1, its aliases champion"):
        _run(home, folder, init_from="replearn-word2vec@nosuch")
    warm = _run(home, folder, init_from="replearn-word2vec@1", warm_alpha=1e-9, min_alpha=1e-9)
    old, new = read_npz(first["stage_outputs"]["vectors"]), read_npz(warm["stage_outputs"]["vectors"])
    v1 = read_vocabulary(first["stage_outputs"]["vocabulary"])
    v2 = read_vocabulary(warm["stage_outputs"]["vocabulary"])
    rows = [(v1.index[w], v2.index[w]) for w in v1.words]
    np.testing.assert_allclose(new["input"][[j for _, j in rows]], old["input"][[i for i, _ in rows]], atol=1e-6)
    fresh = [v2.index[w] for w in v2.words if w not in v1.index]
    assert fresh and np.abs(new["input"][fresh]).max() <= 0.5 / SMALL["dim"]
    assert np.abs(new["context"][fresh]).max() < 1e-6
    (folder / "c.txt").write_text("")  # a file still being written
    again = _run(home, folder, init_from="replearn-word2vec@2")
    assert again["new_files"] == [] and not again["model"]["new_version"]


def _registered_file(uri: str, version: str, artifact: str) -> str:
    from replearn.serving.registry import registered_version

    return registered_version(uri, "replearn-word2vec", version=version).artifacts[artifact]

