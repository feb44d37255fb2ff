"""The multi-sense flow: tokenize -> vocabulary -> encode -> (pseudo-words) -> train (EM) -> evaluate -> export ->
index -> register."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from replearn.flows.params import MultisenseParams
from replearn.flows.word2vec import TOKENIZER
from replearn.tasks.export import embedding_map_task, index_task, knn_graph_task
from replearn.infra.caching import reuse_or_rerun
from replearn.infra.home import data_home, inside_home
from replearn.tasks.multisense import (
    evaluate_multisense_task,
    export_multisense_task,
    pseudowords_task,
    train_multisense_task,
)
from replearn.tasks.register import register_task
from replearn.tasks.runs import default_corpus_task, discard_outputs_task, end_run_task, fingerprint_task, start_run_task
from replearn.tasks.text import tokenize_task, vocabulary_task
from replearn.infra.tracking import tracking_uri
from replearn.tasks.word2vec import encode_task


@flow(name="multisense", log_prints=True)
def multisense_flow(params: MultisenseParams = MultisenseParams()) -> dict:
    """Multi-sense skip-gram trained by maximum marginal likelihood (Tian et al. 2014; AdaGram, Bartunov et al.
    2016): sense vectors, context vectors and a prior per word; evaluated on word similarity (prior-weighted
    average and MaxSim), the neighbours of each sense and, with ``pseudo_pairs``, pseudo-word disambiguation;
    exported one row per (word, sense), indexed and registered (champion by pseudo-word accuracy when measured,
    else SimLex-999 Spearman)."""
    home = str(data_home(params.home))
    uri = tracking_uri(home)
    corpus = params.corpus or default_corpus_task(home)
    tokenizer = {**TOKENIZER, "text_column": params.text_column}
    cfg = params.train_config()
    fp = fingerprint_task(corpus, {"tokenizer": tokenizer, **cfg, "pseudo_pairs": params.pseudo_pairs})
    run_id = start_run_task(uri, "multisense", home, tags={"corpus": corpus, "source_hash": fp["source_hash"]})
    run_dir = inside_home(home, "runs", "multisense", run_id)
    try:
        stats = reuse_or_rerun(tokenize_task, corpus, str(run_dir / "tokens"), tokenizer, uri, run_id,
                               source_hash=fp["source_hash"])
        vocab = reuse_or_rerun(vocabulary_task, stats["path"], str(run_dir / "vocab.parquet"), params.min_count,
                               None, uri, run_id)
        enc = reuse_or_rerun(encode_task, stats["path"], vocab["path"], str(run_dir / "encoded"), 1000)
        train_dir, train_vocab, pseudo = enc["path"], vocab["path"], None
        if params.pseudo_pairs:
            pseudo = pseudowords_task(enc["path"], vocab["path"], str(run_dir / "pseudo"), params.pseudo_pairs,
                                      params.seed, uri, run_id, params.threads)
            train_dir, train_vocab = pseudo["encoded"], pseudo["vocab"]
        trained = train_multisense_task(train_dir, train_vocab, cfg,
                                        str(Path(home) / "checkpoints" / "multisense" / fp["key"]),
                                        str(run_dir / "multisense.npz"), uri, run_id)
        ev = evaluate_multisense_task(trained["path"], uri, run_id, params.probes, pseudo)
        emb = export_multisense_task(trained["path"], str(run_dir / "embeddings" / "senses.parquet"),
                                     {"train": cfg, "tokenizer": tokenizer}, run_id, fp["source_hash"])
        index = index_task(emb, str(run_dir / "index.faiss"), uri, run_id)
        graph = knn_graph_task(emb, index["path"], str(run_dir / "knn_graph.parquet"), uri, run_id)
        embedding_map_task(emb, str(run_dir / "embedding_map.png"), uri, run_id)
        metric = "pseudoword_accuracy" if pseudo is not None else "simlex999_avg_spearman"
        registered = register_task(uri, run_id, params.model_name, "multisense",
                                   {"model": trained["path"], "embeddings": emb, "index": index["path"],
                                    "index_meta": index["sidecar"], "graph": graph}, metric, ev[metric],
                                   eval_data=(f"{fp['source_hash']}; {params.pseudo_pairs} pseudo-word pairs"
                                              if pseudo is not None else "WordSim-353, SimLex-999"))
    except BaseException:
        end_run_task(uri, run_id, failed=True)
        discard_outputs_task(str(run_dir))
        raise
    end_run_task(uri, run_id)
    return {"mlflow_run_id": run_id, "tracking_uri": uri, "corpus": corpus,
            "metrics": {k: v for k, v in ev.items() if isinstance(v, float)}, "neighbours": ev["neighbours"],
            "pseudowords": ev["pseudowords"], "pruned": trained["pruned"], "embeddings": emb, "index": index["path"],
            "model": registered}
