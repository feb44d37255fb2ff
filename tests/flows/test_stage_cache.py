"""Re-running a flow with the same inputs reuses its completed stages (Prefect cache on content + task source)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from replearn.flows.params import Word2VecParams
from replearn.infra.tracking import client, tracking_uri

pytestmark = pytest.mark.slow


def test_second_run_reuses_stages_and_a_deleted_output_is_recomputed(prefect_harness, home, lee_corpus, tmp_path):
    from replearn.flows.word2vec import word2vec_flow

    corpus = tmp_path / "lee.txt"
    shutil.copy(lee_corpus, corpus)
    params = Word2VecParams(corpus=str(corpus), home=str(home), dim=16, epochs=1, min_count=3, threads=1)
    first = word2vec_flow(params)
    second = word2vec_flow(params)
    assert second["embeddings"] == first["embeddings"]           # reused, not rewritten
    assert second["index"] == first["index"]
    run2 = home / "runs" / "word2vec" / second["mlflow_run_id"]
    assert not (run2 / "tokens").exists() and not (run2 / "vectors.npz").exists()
    c = client(tracking_uri(home))
    assert c.get_run(second["mlflow_run_id"]).data.metrics["analogy_score"] == pytest.approx(
        c.get_run(first["mlflow_run_id"]).data.metrics["analogy_score"])

    # the corpus changes (same path): every stage runs again
    corpus.write_text(corpus.read_text() + "\nthe government said the police and the fire service were ready\n")
    third = word2vec_flow(params)
    assert third["embeddings"] != first["embeddings"] and Path(third["embeddings"]).exists()

    # the outputs a cached result names are gone: the stages run again instead of returning dead paths
    shutil.rmtree(home / "runs" / "word2vec" / third["mlflow_run_id"])
    fourth = word2vec_flow(params)
    assert Path(fourth["embeddings"]).exists() and Path(fourth["index"]).exists()
    assert fourth["embeddings"] != third["embeddings"]
