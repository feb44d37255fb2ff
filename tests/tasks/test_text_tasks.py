"""Text-stage tasks log their statistics to MLflow and return small handles."""

from __future__ import annotations

import pytest

from prefect import flow

from replearn.flows.text_stages import tokenize_stage
from replearn.infra.tracking import client, experiment_id, tracking_uri
from replearn.lib.text.vocab import read_vocabulary
from replearn.tasks.text import vocabulary_task


@pytest.mark.slow
def test_tokenize_and_vocabulary_tasks_log_to_mlflow(prefect_harness, home, lee_corpus):
    uri = tracking_uri(home)
    run_id = client(uri).create_run(experiment_id(uri, "t", home)).info.run_id

    @flow
    def stages():
        stats = tokenize_stage(str(lee_corpus), str(home / "tokens"), {"min_len": 2}, uri, run_id)
        return stats, vocabulary_task(stats.path, str(home / "vocab.parquet"), 3, 500, uri, run_id)

    stats, v = stages()
    assert stats.path == str(home / "tokens") and stats.tokens > 50_000 and stats.documents > 100
    assert v.vocab_size == 500 == len(read_vocabulary(home / "vocab.parquet"))
    metrics = client(uri).get_run(run_id).data.metrics
    assert metrics["tokenize.tokens"] == stats.tokens and metrics["vocabulary.vocab_size"] == 500
    assert client(uri).get_run(run_id).data.params["vocabulary.min_count"] == "3"
