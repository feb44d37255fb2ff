"""bench/bare_word2vec.py (the word2vec flow's stages as plain lib calls) and bench/orchestration.py's verdicts."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"replearn_bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_are_the_flows():
    from replearn.flows.params import Word2VecParams
    from replearn.flows.text_stages import TOKENIZER

    cfg = _bench("bare_word2vec").flow_config(str(REPO / "README.md"), {"epochs": 1, "dim": 16})
    assert cfg["train"] == Word2VecParams(epochs=1, dim=16).train_config()
    assert cfg["tokenizer"] == {**TOKENIZER, "text_column": "text"} and cfg["matrices"] == ["input"]
    assert cfg["index"]["target_recall"] == 0.95 and cfg["knn"]["k"] == 10


@pytest.mark.slow
def test_bare_pipeline_writes_the_table_and_index_without_prefect_or_mlflow(lee_corpus, tmp_path):
    from replearn.lib.store.embeddings_table import read_vectors
    from replearn.lib.store.faiss_index import load_index

    config = tmp_path / "config.json"
    config.write_text(json.dumps(_bench("bare_word2vec").flow_config(str(lee_corpus), {"epochs": 1, "dim": 16})))
    out, figures = tmp_path / "out", tmp_path / "bare.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, str(REPO / "bench" / "bare_word2vec.py"), "--config", str(config), "--out",
                    str(out), "--json", str(figures)], check=True, env=env, capture_output=True)
    r = json.loads(figures.read_text())
    assert not r["imported_prefect"] and not r["imported_mlflow"]
    keys, ids, xb, meta = read_vectors(r["embeddings"])
    assert xb.shape == (r["vocab_size"], 16) and len(keys) == r["vocab_size"] > 1000 and meta.similarity == "cos"
    index, _ = load_index(r["index"])
    assert index.ntotal == r["vocab_size"] and r["recall_at_10"] >= 0.95
    assert (out / "knn_graph.parquet").is_file() and (out / "embedding_map.png").is_file()
    assert not (out / "checkpoints").exists() and r["train_seconds"] > 0


def test_orchestration_verdicts():
    r = {"first_run_s": 100.0, "bare_s": 92.0, "second_run_s": 1.5, "first_run_warm_api_s": 95.0, "search_s": 2.0,
         "bare.train_seconds": 70.0, "flow.train_seconds": 75.0, "flow_warm.train_seconds": None}
    d = _bench("orchestration").derive(r)
    assert d["overhead_s"] == 8.0 and d["overhead_share"] == 0.08 and d["pass.overhead_share"]
    assert d["overhead_adj_s"] == 3.0 and "warm_api_overhead_adj_s" not in d
    assert d["pass.second_run"] and not d["pass.warm_api_overhead"] and not d["pass.search"]
