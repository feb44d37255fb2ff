"""The word-vector flow: tokenize -> vocabulary -> encode -> train -> evaluate -> export -> index -> register."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from replearn.flows.params import Word2VecParams
from replearn.infra.runners import api_for_workers, check_cluster, fan_out_settings, runs_on, task_runner
from replearn.tasks.evaluate_words import evaluate_task
from replearn.tasks.export import embedding_map_task, export_word_vectors_task, index_task, knn_graph_task
from replearn.infra.caching import reuse_or_rerun
from replearn.infra.home import data_home, inside_home
from replearn.tasks.register import register_task
from replearn.tasks.runs import (
    default_corpus_task,
    discard_outputs_task,
    end_run_task,
    fingerprint_task,
    start_run_task,
)
from replearn.tasks.text import tokenize_task, vocabulary_task
from replearn.infra.tracking import tracking_uri
from replearn.tasks.word2vec import encode_task, train_task

TOKENIZER = {"lowercase": True, "normalization": "NFKC", "min_len": 2, "max_len": 15}


@flow(name="word2vec", log_prints=True)
def word2vec_flow(params: Word2VecParams = Word2VecParams()) -> dict:
    """Train skip-gram word vectors on a corpus and make them searchable; every stage tracked in MLflow.

    Outputs go to ``<home>/runs/word2vec/<mlflow run id>/`` (tokens, vocabulary,
    vectors, ``embeddings/*.parquet``, ``index.faiss``); checkpoints to
    ``<home>/checkpoints/word2vec/<corpus+settings key>/`` so that a killed run,
    started again with the same inputs, resumes after its last finished epoch.
    Returns a summary dict (metrics, paths, MLflow run id, model version).

    ``params.runner`` says where tokenization partitions and export shards run
    (infra/runners.py); the outputs are the same. The CLI starts this flow with
    that task runner already; run otherwise (a deployment, the pipeline), the
    flow starts itself again as a subflow with it.
    """
    if not runs_on(params.runner):
        with api_for_workers():
            runner = task_runner(params.runner, params.address, params.workers)
            check_cluster(params.runner, params.address)
            return word2vec_flow.with_options(task_runner=runner)(params)
    fan = fan_out_settings(params.runner, params.workers)
    home = str(data_home(params.home))
    uri = tracking_uri(home)
    corpus = params.corpus or default_corpus_task(home)
    tokenizer = {**TOKENIZER, "text_column": params.text_column}
    train_cfg = params.train_config()
    fp = fingerprint_task(corpus, {"tokenizer": tokenizer, **train_cfg})
    run_id = start_run_task(uri, "word2vec", home, tags={"corpus": corpus, "source_hash": fp["source_hash"]})
    run_dir = inside_home(home, "runs", "word2vec", run_id)
    try:
        # every stage below is cached on its inputs' content and its source code (infra/caching.py): run again
        # with the same corpus and settings and the completed stages are reused, not recomputed
        stats = reuse_or_rerun(tokenize_task, corpus, str(run_dir / "tokens"), tokenizer, uri, run_id,
                               source_hash=fp["source_hash"], parallel=fan["parallel"])
        vocab = reuse_or_rerun(vocabulary_task, stats["path"], str(run_dir / "vocab.parquet"), params.min_count,
                               params.max_vocab, uri, run_id)
        enc = reuse_or_rerun(encode_task, stats["path"], vocab["path"], str(run_dir / "encoded"),
                             params.max_sentence_tokens)
        trained = reuse_or_rerun(train_task, enc["path"], vocab["path"], train_cfg,
                                 str(Path(home) / "checkpoints" / "word2vec" / fp["key"]),
                                 str(run_dir / "vectors.npz"), uri, run_id)
        metrics = evaluate_task(trained["path"], vocab["path"], uri, run_id, probes=params.probes)
        exported = reuse_or_rerun(export_word_vectors_task, trained["path"], vocab["path"], str(run_dir / "embeddings"),
                                  list(dict.fromkeys(["input", *params.export_matrices])),
                                  {"train": train_cfg, "tokenizer": tokenizer}, run_id, fp["source_hash"],
                                  shards=fan["shards"])
        index = reuse_or_rerun(index_task, exported["input"], str(run_dir / "index.faiss"), uri, run_id)
        graph = reuse_or_rerun(knn_graph_task, exported["input"], index["path"], str(run_dir / "knn_graph.parquet"),
                               uri, run_id)
        reuse_or_rerun(embedding_map_task, exported["input"], str(run_dir / "embedding_map.png"), uri, run_id)
        registered = register_task(uri, run_id, params.model_name, "word2vec",
                                   {"embeddings": exported["input"], "index": index["path"],
                                    "index_meta": index["sidecar"], "graph": graph},
                                   "analogy_score", metrics["analogy_score"],
                                   eval_data="questions-words.txt, WordSim-353, SimLex-999")
    except BaseException:
        end_run_task(uri, run_id, failed=True)
        discard_outputs_task(str(run_dir))
        raise
    end_run_task(uri, run_id)
    return {
        "mlflow_run_id": run_id, "tracking_uri": uri, "corpus": corpus, "tokens": stats["tokens"],
        "vocab_size": vocab["vocab_size"], "words_per_second": trained["train.words_per_second"],
        "metrics": {k: v for k, v in metrics.items() if k != "neighbours"}, "neighbours": metrics["neighbours"],
        "embeddings": exported, "index": index["path"], "recall_at_10": index["recall_at_10"],
        "model": registered,
    }
