"""The word2vec flow end to end under a Prefect test harness, with a real MLflow SQLite store."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gensim.models import KeyedVectors as GensimKV

from replearn.flows.params import Word2VecParams
from replearn.serving.registry import load_registered
from replearn.lib.errors import CorpusError, VocabularyError
from replearn.lib.store.embeddings_table import read_vectors
from replearn.infra.tracking import client, tracking_uri

pytestmark = pytest.mark.slow

SMALL = dict(dim=24, epochs=2, min_count=3, threads=1)


def _run(home, corpus, **kw):
    from replearn.flows.word2vec import word2vec_flow

    return word2vec_flow(Word2VecParams(corpus=str(corpus), home=str(home), **{**SMALL, **kw}))


def test_flow_trains_evaluates_exports_indexes_and_registers(prefect_harness, home, lee_corpus):
    s = _run(home, lee_corpus)
    uri = tracking_uri(home)
    run = client(uri).get_run(s["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    for key in ("analogy_total", "wordsim353_spearman", "simlex999_spearman", "index.recall_at_10",
                "tokenize.tokens", "vocabulary.vocab_size", "train.words_per_second"):
        assert key in run.data.metrics, key
    losses = client(uri).get_metric_history(s["mlflow_run_id"], "train.loss")
    assert len(losses) >= 2 and all(0 < m.value < 10 for m in losses)  # per-step means, not a cumulative sum
    artifacts = {a.path for a in client(uri).list_artifacts(s["mlflow_run_id"], "plots")}
    assert "plots/loss.png" in artifacts
    assert s["recall_at_10"] > 0.99 and s["vocab_size"] > 1000
    assert str(s["model"]["version"]) == "1" and s["model"]["champion"]
    # the export is a plain Parquet file with the config in its metadata
    words, ids, vectors, meta = read_vectors(s["embeddings"])
    assert meta.family == "word2vec" and meta.mlflow_run_id == s["mlflow_run_id"] and meta.config["train"]["dim"] == 24
    # the registered champion answers like gensim's most_similar on the same vectors
    model, mv = load_registered(uri, "replearn-word2vec")
    gkv = GensimKV(24)
    gkv.add_vectors(words, vectors)
    for pos, neg in ((["government"], []), (["police", "fire"], ["water"])):
        got = model.predict(pd.DataFrame([{"positive": " ".join(pos), "negative": " ".join(neg), "topn": 8}]))
        want = gkv.most_similar(positive=pos, negative=neg, topn=8)
        assert list(got["word"]) == [w for w, _ in want]
        np.testing.assert_allclose(got["similarity"], [x for _, x in want], atol=1e-5)
    # the kNN graph and the embedding map are outputs of the run; graph distance is served from the registry
    assert "plots/embedding_map.png" in {a.path for a in client(uri).list_artifacts(s["mlflow_run_id"], "plots")}
    assert run.data.metrics["graph.edges"] == 10 * s["vocab_size"]
    from replearn.serving.registry import graph_distance
    from replearn.lib.store.knn_graph import nn_graph_distance, read_knn_graph

    first = gkv.most_similar("government", topn=1)[0][0]        # exact nearest neighbour: one hop away
    assert graph_distance(uri, "replearn-word2vec", "government", first)["distance"] == 1.0
    src, dst, sim, _ = read_knn_graph(s["knn_graph"])
    far = graph_distance(uri, "replearn-word2vec", "government", words[-1])
    assert far["distance"] == nn_graph_distance((src, dst), far["id_a"], far["id_b"])
    with pytest.raises(LookupError, match="neither a key"):
        graph_distance(uri, "replearn-word2vec", "government", "zzzz-not-a-word")


def test_worse_retrain_keeps_the_champion(prefect_harness, home, lee_corpus):
    first = _run(home, lee_corpus, epochs=3)
    worse = _run(home, lee_corpus, epochs=1, dim=4, alpha=0.0005)
    assert first["model"]["champion"]
    assert worse["metrics"]["analogy_score"] <= first["metrics"]["analogy_score"]
    assert not worse["model"]["champion"] and str(worse["model"]["version"]) == "2"
    c = client(tracking_uri(home))
    assert str(c.get_model_version_by_alias("replearn-word2vec", "champion").version) == "1"
    assert c.get_model_version("replearn-word2vec", "2").tags["role"] == "challenger"


def _assert_nothing_left(home):
    stages = home / "stages"
    leftovers = [p for p in stages.rglob("*") if p.name in ("tokens", "vocab.parquet", "vectors.npz") or ".tmp-" in p.name] \
        if stages.exists() else []
    assert leftovers == [] and not (home / "runs").exists()


def test_an_identical_rerun_registers_no_new_version_and_links_the_standing_one(prefect_harness, home, lee_corpus):
    first = _run(home, lee_corpus, epochs=1)
    again = _run(home, lee_corpus, epochs=1)
    assert first["model"]["new_version"] and str(first["model"]["version"]) == "1"
    assert not again["model"]["new_version"] and str(again["model"]["version"]) == "1" and again["model"]["champion"]
    c = client(tracking_uri(home))
    assert [str(mv.version) for mv in c.search_model_versions("name = 'replearn-word2vec'")] == ["1"]
    tags = c.get_run(again["mlflow_run_id"]).data.tags
    assert tags["replearn.registry"] == "unchanged" and tags["replearn.model_version"] == "1"
    assert tags["replearn.model_run_id"] == first["mlflow_run_id"] and first["mlflow_run_id"] in tags["mlflow.note.content"]
    assert c.get_run(first["mlflow_run_id"]).data.tags["replearn.registry"] == "new version"
    other = _run(home, lee_corpus, epochs=1, kernel="pair")  # a changed setting retrains: a new version
    assert other["model"]["new_version"] and str(other["model"]["version"]) == "2"
    assert other["embeddings"] != first["embeddings"]


def test_empty_corpus_fails_clearly_and_leaves_nothing(prefect_harness, home, tmp_path):
    empty = tmp_path / "empty.txt.gz"
    with gzip.open(empty, "wt") as f:
        f.write("\n  \n 123 456 \n")
    with pytest.raises(CorpusError, match="empty.txt.gz"):
        _run(home, empty)
    _assert_nothing_left(home)
    runs = client(tracking_uri(home)).search_runs([client(tracking_uri(home)).get_experiment_by_name("word2vec").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_min_count_pruning_everything_fails_clearly(prefect_harness, home, tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("alpha beta gamma\ndelta alpha\n")
    with pytest.raises(VocabularyError, match="min_count"):
        _run(home, corpus, min_count=50)
    stages = home / "stages"
    # nothing half-written and no vocabulary; the completed tokenization is kept, so a retry with another
    # --min-count does not tokenize again
    assert not [p for p in stages.rglob("*") if ".tmp-" in p.name or p.name in ("vocab.parquet", "vectors.npz")]
    assert [p.name for p in stages.rglob("tokens")] == ["tokens"]


def test_a_one_word_vocabulary_fails_before_training(prefect_harness, home, tmp_path):
    corpus = tmp_path / "one.txt"
    corpus.write_text("the the the the the the the the the the\n")
    with pytest.raises(VocabularyError, match=r"only one word \('the'\) is left .*at least two words"):
        _run(home, corpus, min_count=1)
    assert not list((home / "stages").rglob("vectors.npz")) and not list((home / "stages").rglob("vocab.parquet"))


def test_missing_file_fails_clearly(prefect_harness, home, tmp_path):
    with pytest.raises(CorpusError, match="nope.txt"):
        _run(home, tmp_path / "nope.txt")


def test_parquet_without_text_column_names_the_columns(prefect_harness, home, tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"body": ["some words here"] * 5}), path)
    with pytest.raises(CorpusError, match="body"):
        _run(home, path, text_column="text")
    _assert_nothing_left(home)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_replearn_serve_answers_an_http_request_on_localhost(prefect_harness, home, lee_corpus):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    _run(home, lee_corpus, epochs=1)
    port = _free_port()
    exe = Path(sys.executable).parent / "replearn"
    proc = subprocess.Popen([str(exe), "serve", "--home", str(home), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            raise AssertionError("server did not come up within 120 s")
        body = json.dumps({"dataframe_records": [{"positive": "government", "topn": 3}]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            out = json.loads(r.read())["predictions"]
        assert [row["rank"] for row in out] == [1, 2, 3] and all("word" in row for row in out)
        assert "government" not in {row["word"] for row in out}
        # a bad query: HTTP 400 with replearn's message, no traceback
        bad = json.dumps({"dataframe_records": [{"positive": "zzznotaword"}]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=bad,
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=60)
        assert err.value.code == 400
        reply = json.loads(err.value.read())
        assert "zzznotaword" in reply["message"] and "stack_trace" not in reply
        # a 1 MB invalid JSON body: a 400 of bounded size, not the body echoed back (serving/http_app.py)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=b"{" + b"x" * 1_000_000,
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=60)
        reply = err.value.read()
        assert err.value.code == 400 and len(reply) < 4096 and b"bytes in all]" in reply
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_corpus_without_benchmark_words_trains_and_reports_nan_similarity(prefect_harness, home, tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("the cat sat on the mat and the dog sat on the log\n" * 200)
    s = _run(home, corpus, min_count=1, dim=8, epochs=1)
    assert np.isnan(s["metrics"]["wordsim353_spearman"]) and np.isnan(s["metrics"]["simlex999_spearman"])
    assert s["metrics"]["analogy_score"] == 0.0 and str(s["model"]["version"]) == "1"
