"""Warm start of the multi-sense flow on a growing corpus folder (issue 17): from scratch on half of the Lee corpus,
then a warm start on the half that landed since, then nothing new and nothing registered; a mismatch is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from replearn.flows.params import MultisenseParams
from replearn.infra.tracking import client, tracking_uri
from replearn.lib.errors import ReplearnInputError
from replearn.lib.multisense.model import MultiSenseVectors
from replearn.lib.text.vocab import read_vocabulary

pytestmark = pytest.mark.slow

SMALL = dict(dim=16, epochs=2, min_count=3, sense_min_count=40, max_senses=3, threads=1)
NAME = "replearn-multisense"
CONTINUE = f"{NAME}@champion"


def _run(home, corpus, **kw):
    from replearn.flows.multisense import multisense_flow

    return multisense_flow(MultisenseParams(corpus=str(corpus), home=str(home), **{**SMALL, **kw}))


def _registered(uri: str, version: str) -> dict[str, str]:
    from replearn.serving.registry import registered_version

    return registered_version(uri, NAME, version=version).artifacts


def test_warm_start_trains_on_new_files_then_registers_nothing(prefect_harness, home, corpus_halves):
    folder, later = corpus_halves
    uri = tracking_uri(home)
    c = client(uri)
    first = _run(home, folder, init_from=CONTINUE)  # nothing registered yet: the schedule's first run is from scratch
    assert first["init_from"] is None and first["new_files"] is None and first["model"]["new_version"]
    assert {"model", "vocabulary", "token_counts", "corpus_files"} <= set(_registered(uri, "1"))
    (folder / "b.txt").write_text(later.read_text())

    warm = _run(home, folder, init_from=CONTINUE)
    assert warm["init_from"] == f"{NAME} v1" and warm["new_files"] == [str(folder / "b.txt")]
    assert warm["model"]["new_version"] and str(warm["model"]["version"]) == "2"
    assert warm["tokens"] < first["tokens"] * 1.5  # it read b.txt only
    v1 = read_vocabulary(first["stage_outputs"]["vocabulary"])
    v2 = read_vocabulary(warm["stage_outputs"]["vocabulary"])
    assert set(v1.words) <= set(v2.words) and len(v2) > len(v1)  # merged counts: the vocabulary grew
    assert all(v2.counts[v2.index[w]] >= v1.counts[v1.index[w]] for w in v1.words[:50])
    m1 = MultiSenseVectors.load(first["stage_outputs"]["model"])
    m2 = MultiSenseVectors.load(warm["stage_outputs"]["model"])
    assert m2.words == v2.words and np.isfinite(m2.vectors).all()
    assert all(m2.n_senses(w) <= m1.n_senses(w) for w in m1.words)  # old words keep their senses (or prune some)
    run = c.get_run(warm["mlflow_run_id"])
    assert run.data.metrics["train.loss"] > 0 and "train.words_per_second" in run.data.metrics
    # the registered model carries what the next warm start needs; its file list holds both files
    artifacts = _registered(uri, "2")
    assert {"model", "vocabulary", "token_counts", "corpus_files"} <= set(artifacts)
    files = json.loads(open(artifacts["corpus_files"]).read())["files"]
    assert sorted(f["path"].rsplit("/", 1)[1] for f in files) == ["a.txt", "b.txt"]

    again = _run(home, folder, init_from=f"{NAME}@2")  # nothing has landed since: nothing is registered
    assert again["new_files"] == [] and again["init_from"] == f"{NAME} v2"
    assert not again["model"]["new_version"] and str(again["model"]["version"]) == "2"
    assert set(again) == {"mlflow_run_id", "mlflow_experiment_id", "tracking_uri", "corpus", "new_files",
                          "init_from", "model"}
    tags = c.get_run(again["mlflow_run_id"]).data.tags
    assert tags["replearn.registry"] == "unchanged" and tags["replearn.model_run_id"] == warm["mlflow_run_id"]
    assert len(c.search_model_versions(f"name = '{NAME}'")) == 2


def test_warm_start_starts_from_the_old_senses_and_refuses_a_mismatch(prefect_harness, home, corpus_halves):
    folder, later = corpus_halves
    first = _run(home, folder)
    (folder / "b.txt").write_text(later.read_text())
    with pytest.raises(ReplearnInputError, match="--dim 16"):
        _run(home, folder, init_from=CONTINUE, dim=8)
    # with a learning rate of almost nothing and no pruning, the warm start's vectors are v1's, moved to new ids
    warm = _run(home, folder, init_from=f"{NAME}@1", warm_alpha=1e-9, min_alpha=1e-9, prune_threshold=0)
    m1 = MultiSenseVectors.load(first["stage_outputs"]["model"])
    m2 = MultiSenseVectors.load(warm["stage_outputs"]["model"])
    for w in m1.words:
        np.testing.assert_allclose(m2.sense_vectors(w), m1.sense_vectors(w), atol=1e-6)
        np.testing.assert_allclose(m2.context[m2.index[w]], m1.context[m1.index[w]], atol=1e-6)
    fresh = [w for w in m2.words if w not in m1]
    assert fresh and all(np.abs(m2.sense_vectors(w)).max() <= (0.5 + m2.config.init_noise) / SMALL["dim"]
                         for w in fresh)
    assert all(np.abs(m2.context[m2.index[w]]).max() < 1e-6 for w in fresh)
