"""Text-stage tasks log their statistics to MLflow and return small handles."""

from __future__ import annotations

import pytest

from replearn.lib.text.vocab import read_vocabulary
from replearn.tasks.text import tokenize_task, vocabulary_task
from replearn.infra.tracking import client, experiment_id, tracking_uri


@pytest.mark.slow
def test_tokenize_and_vocabulary_tasks_log_to_mlflow(prefect_harness, home, lee_corpus):
    uri = tracking_uri(home)
    run_id = client(uri).create_run(experiment_id(uri, "t", home)).info.run_id
    stats = tokenize_task(str(lee_corpus), str(home / "tokens"), {"min_len": 2}, uri, run_id)
    assert stats["tokens"] > 50_000 and stats["documents"] > 100
    v = vocabulary_task(str(home / "tokens"), str(home / "vocab.parquet"), 3, 500, uri, run_id)
    assert v["vocab_size"] == 500 == len(read_vocabulary(home / "vocab.parquet"))
    metrics = client(uri).get_run(run_id).data.metrics
    assert metrics["tokenize.tokens"] == stats["tokens"] and metrics["vocabulary.vocab_size"] == 500
    assert client(uri).get_run(run_id).data.params["vocabulary.min_count"] == "3"
