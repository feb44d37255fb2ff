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


@pytest.mark.slow
def test_vocabulary_merges_the_counts_of_the_model_it_continues(prefect_harness, home, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    uri = tracking_uri(home)
    run_id = client(uri).create_run(experiment_id(uri, "t", home)).info.run_id
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    pq.write_table(pa.table({"tokens": [["cat", "dog", "dog", "emu", "emu", "emu"]]}), tokens / "part-00000.parquet")
    base = tmp_path / "base_counts.parquet"  # what the continued model saw: 'dog' once, under min_count then
    pq.write_table(pa.table({"token": ["the", "cat", "dog"], "count": [9, 4, 1]}), base)

    @flow
    def stages():
        return vocabulary_task(str(tokens), str(tmp_path / "v.parquet"), 3, None, uri, run_id, base_counts=str(base))

    v = stages()
    merged = read_vocabulary(tmp_path / "v.parquet")
    # merged counts: the 9, cat 4 + 1, dog 1 + 2 (reaches min_count over both runs), emu 3 (new)
    assert merged.words == ("the", "cat", "dog", "emu") and list(merged.counts) == [9, 5, 3, 3]
    assert v.distinct_tokens == 3 and v.counts == str(tmp_path / "token_counts.parquet")
    import polars as pl

    every = dict(pl.read_parquet(v.counts).iter_rows())  # the counts a later warm start merges in turn
    assert every == {"the": 9, "cat": 5, "dog": 3, "emu": 3}
