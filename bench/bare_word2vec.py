"""The stages of ``replearn run word2vec`` as plain ``replearn.lib`` calls: no Prefect, no MLflow, no stage cache.

tokenize -> vocabulary -> encode -> train -> evaluate -> export (Parquet) ->
FAISS index (chosen and tuned) -> kNN graph -> embedding map, with the lib
calls and arguments of the flow's tasks (flows/word2vec.py,
flows/text_stages.py, flows/publish.py and the tasks they call). What the flow
adds on top, and this leaves out, is orchestration: Prefect (API, task runs,
result persistence, cache keys, the corpus fingerprint), MLflow (run, params,
metrics, the loss chart, artifacts, the registered model) and the CLI.

The settings come from where the flow takes them, never written here twice:
:func:`flow_config` reads them from ``Word2VecParams``, ``flows/text_stages.TOKENIZER``
and the defaults of the tasks' own signatures. That import pulls in Prefect,
so the benchmark (bench/orchestration.py) runs it in a separate, untimed
process (``--print-config``) and hands the JSON to the timed run (``--config``),
which imports only ``replearn.lib``.

    python bench/bare_word2vec.py --print-config --corpus PATH [--set epochs=1 --set dim=16 ...] > config.json
    python bench/bare_word2vec.py --config config.json --out DIR [--json PATH]
    python bench/bare_word2vec.py --corpus PATH --out DIR [--set KEY=VALUE ...] [--json PATH]   # both in one process

``--json`` (and :func:`run_bare`) give one flat object: ``<stage>_s`` per
stage, ``total_s``, ``train_seconds`` (the trainer's own clock,
as the flow logs ``train.seconds``), ``tokens``, ``vocab_size``, the
evaluation metrics, ``index_factory``, ``recall_at_10``, the output paths,
and ``imported_prefect`` / ``imported_mlflow`` (must be False).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

#: The stages, in the flow's order (the keys ``<stage>_s`` of the result).
STAGES = ("tokenize", "vocabulary", "encode", "train", "evaluate", "export", "index", "knn_graph", "embedding_map")


def _task_defaults(task, *names: str) -> dict:
    """``{name: default}`` of the keyword parameters ``names`` of a Prefect task's function."""
    params = inspect.signature(task.fn).parameters
    return {n: params[n].default for n in names}


def flow_config(corpus: str, settings: dict | None = None) -> dict:
    """The settings the word2vec flow would run with on ``corpus`` (a path) and parameters ``settings``, as plain JSON.

    Imports the flow's modules (Prefect among them): call it outside any timing.

    Returns:
        ``{"corpus", "tokenizer", "partition_bytes", "min_count", "max_vocab", "max_sentence_tokens", "train"
        (Word2VecConfig fields), "probes", "matrices", "evaluate", "index", "knn", "map"}``.

    Raises:
        pydantic.ValidationError: a setting the flow's parameters refuse.
    """
    from replearn.flows.params import Word2VecParams
    from replearn.flows.text_stages import TOKENIZER
    from replearn.lib.text.partitions import PARTITION_BYTES
    from replearn.tasks.evaluate_words import evaluate_task
    from replearn.tasks.export import embedding_map_task, index_task, knn_graph_task

    p = Word2VecParams(corpus=corpus, **(settings or {}))
    return {"corpus": str(Path(corpus).resolve()), "tokenizer": {**TOKENIZER, "text_column": p.text_column},
            "partition_bytes": PARTITION_BYTES, "min_count": p.min_count, "max_vocab": p.max_vocab,
            "max_sentence_tokens": p.max_sentence_tokens, "train": p.train_config(),
            "probes": None if p.probes is None else list(p.probes),
            "matrices": list(dict.fromkeys(["input", *p.export_matrices])),
            "evaluate": _task_defaults(evaluate_task, "restrict_vocab"),
            "index": _task_defaults(index_task, "factory", "memory_budget_mb", "target_recall", "n_queries", "seed"),
            "knn": _task_defaults(knn_graph_task, "k"),
            "map": _task_defaults(embedding_map_task, "method", "max_points")}


@contextlib.contextmanager
def _timed(times: dict, stage: str) -> Iterator[None]:
    """Add the wall seconds of the body to ``times[f"{stage}_s"]``."""
    t = time.perf_counter()
    yield
    times[f"{stage}_s"] = round(time.perf_counter() - t, 3)


def _tokenize(cfg: dict, out: Path) -> dict:
    """As flows/text_stages.tokenize_stage with the local runner: plan partitions, tokenize each, gather them."""
    import shutil

    from replearn.lib.store.atomic import temp_sibling
    from replearn.lib.text.config import TokenizerConfig
    from replearn.lib.text.partitions import gather_partitions, plan_partitions, tokenize_partition

    config, tokens = TokenizerConfig(**cfg["tokenizer"]), out / "tokens"
    staging = temp_sibling(tokens, "parts")
    parts = [(staging / f"{i:05d}", p) for i, p in enumerate(plan_partitions(cfg["corpus"], cfg["partition_bytes"]))]
    try:
        stats = gather_partitions(cfg["corpus"], [(d, tokenize_partition(p, d, config)) for d, p in parts], tokens,
                                  config)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"tokens": stats.tokens, "documents": stats.documents}


def _vocabulary(cfg: dict, out: Path) -> dict:
    """As tasks/text.py vocabulary_task: count, prune by min_count / max_vocab, write the Parquet."""
    from replearn.lib.text.vocab import build_vocabulary, count_tokens, write_vocabulary

    vocab = build_vocabulary(count_tokens(out / "tokens"), min_count=cfg["min_count"], max_vocab=cfg["max_vocab"])
    write_vocabulary(vocab, out / "vocab.parquet")
    return {"vocab_size": len(vocab)}


def _encode(cfg: dict, out: Path) -> None:
    """As tasks/word2vec.py encode_task."""
    from replearn.lib.text.vocab import read_vocabulary
    from replearn.lib.word2vec.corpus import encode_corpus

    vocab = read_vocabulary(out / "vocab.parquet")
    encode_corpus(sorted((out / "tokens").glob("*.parquet")), vocab.words, out / "encoded",
                  max_sentence_tokens=cfg["max_sentence_tokens"])


def _train(cfg: dict, out: Path) -> dict:
    """As tasks/word2vec.py train_task without MLflow: train (checkpoint per epoch), save V and U, drop checkpoints."""
    import shutil

    from replearn.lib.store.atomic import atomic_write_npz
    from replearn.lib.text.vocab import keep_probability, noise_distribution, read_vocabulary
    from replearn.lib.word2vec.config import Word2VecConfig
    from replearn.lib.word2vec.corpus import EncodedCorpus
    from replearn.lib.word2vec.softmax import train_softmax
    from replearn.lib.word2vec.trainer import train_sgns

    c = Word2VecConfig.from_dict(cfg["train"])
    vocab, corpus = read_vocabulary(out / "vocab.parquet"), EncodedCorpus.open(out / "encoded")
    keep = keep_probability(vocab.counts, c.sample)
    if c.objective == "softmax":
        result = train_softmax(corpus, vocab.counts, c, keep_prob=keep)
    else:
        result = train_sgns(corpus, vocab.counts, c, keep_prob=keep,
                            noise_probs=noise_distribution(vocab.counts, c.ns_exponent),
                            checkpoint_dir=out / "checkpoints")
    atomic_write_npz(out / "vectors.npz", input=result.syn0, context=result.syn1)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return {"train_seconds": round(result.seconds, 3)}


def _evaluate(cfg: dict, out: Path) -> dict:
    """As tasks/evaluate_words.py evaluate_task without MLflow or Prefect artifacts: analogies, WordSim-353,
    SimLex-999 (NaN when fewer than 2 pairs are in the vocabulary), nearest neighbours of the probes."""
    import numpy as np

    from replearn.lib.errors import ReplearnInputError
    from replearn.lib.eval.analogy import evaluate_analogies
    from replearn.lib.eval.neighbours import default_probes, nearest_neighbours
    from replearn.lib.eval.similarity import evaluate_word_pairs, simlex999_path, wordsim353_path
    from replearn.lib.text.vocab import read_vocabulary
    from replearn.lib.vectors import KeyedVectors

    with np.load(out / "vectors.npz") as z:
        kv = KeyedVectors(read_vocabulary(out / "vocab.parquet").words, z["input"])
    metrics = evaluate_analogies(kv, restrict_vocab=cfg["evaluate"]["restrict_vocab"]).to_dict()
    for path, prefix in ((wordsim353_path(), "wordsim353_"), (simlex999_path(), "simlex999_")):
        try:
            metrics.update(evaluate_word_pairs(kv, path).to_dict(prefix))
        except ReplearnInputError:
            metrics[f"{prefix}spearman"] = float("nan")
    nearest_neighbours(kv, cfg["probes"] or default_probes(kv), topn=5)
    return {k: metrics[k] for k in ("analogy_score", "analogy_total", "wordsim353_spearman", "simlex999_spearman")}


def _export(cfg: dict, out: Path) -> dict:
    """As tasks/export.py export_word_vectors_task (one file per matrix): the embeddings tables."""
    import numpy as np

    from replearn.lib.store.embeddings_table import EmbeddingsMetadata, write_embeddings
    from replearn.lib.text.vocab import read_vocabulary

    vocab = read_vocabulary(out / "vocab.parquet")
    tables = {m: out / "embeddings" / f"{m}.parquet" for m in cfg["matrices"]}
    with np.load(out / "vectors.npz") as z:
        mats = {m: (z["input"] + z["context"]) / 2 if m == "mean" else z[m] for m in cfg["matrices"]}
    for m, vectors in mats.items():
        meta = EmbeddingsMetadata(family="word2vec", dim=int(vectors.shape[1]), normalized=False, similarity="cos",
                                  mlflow_run_id=None, source_hash=None,
                                  config={"train": cfg["train"], "tokenizer": cfg["tokenizer"]}, matrix=m)
        write_embeddings(tables[m], list(vocab.words), vectors, meta, ids=np.arange(len(vocab), dtype=np.int64))
    return {"embeddings": str(tables[cfg["matrices"][0]])}


def _index(cfg: dict, out: Path, table: str) -> dict:
    """As tasks/export.py index_task: choose, build, tune and save the FAISS index with its sidecar."""
    from replearn.lib.store.embeddings_table import read_vectors
    from replearn.lib.store.faiss_index import save_index
    from replearn.lib.store.index_tuning import build_tuned_index, tuning_metrics

    c = cfg["index"]
    keys, ids, xb, meta = read_vectors(table)
    budget = None if c["memory_budget_mb"] is None else int(c["memory_budget_mb"] * 2**20)
    index, report = build_tuned_index(xb, meta.similarity, ids=ids, memory_budget_bytes=budget, factory=c["factory"],
                                      target_recall=c["target_recall"], n_queries=c["n_queries"], seed=c["seed"])
    path = out / "index.faiss"
    save_index(index, path, metric=meta.similarity, factory=report["factory"], tuning=report,
               build_seconds=report["build_seconds"], extra={"embeddings": Path(table).name})
    recall = tuning_metrics(report).get("index.recall_at_10", float(report["tuning"]["recall_at_k"]))
    return {"index": str(path), "index_factory": report["factory"], "recall_at_10": recall}


def _knn_graph(cfg: dict, out: Path, table: str) -> None:
    """As tasks/export.py knn_graph_task: each row's k nearest others through the saved index, as Parquet."""
    from replearn.lib.store.embeddings_table import read_vectors
    from replearn.lib.store.faiss_index import load_index
    from replearn.lib.store.knn_graph import knn_graph, write_knn_graph

    k = cfg["knn"]["k"]
    keys, ids, xb, meta = read_vectors(table)
    index, _ = load_index(out / "index.faiss")
    src, dst, sim = knn_graph(xb, k, meta.similarity, ids=ids, index=index)
    write_knn_graph(out / "knn_graph.parquet", src, dst, sim, metric=meta.similarity, k=k)


def _embedding_map(cfg: dict, out: Path, table: str) -> None:
    """As tasks/export.py embedding_map_task without MLflow: the 2-D map PNG, coloured by label where known."""
    from replearn.lib.store.embedding_map import embedding_map
    from replearn.lib.store.embeddings_table import read_embeddings, read_vectors

    method, max_points = cfg["map"]["method"], cfg["map"]["max_points"]
    keys, ids, xb, meta = read_vectors(table)
    t, _ = read_embeddings(table, columns=["label", "modality"])
    labels = t.column("label").to_pylist()
    if all(v is None for v in labels):
        modality = t.column("modality").to_pylist()
        labels = modality if any(v is not None for v in modality) else None
    embedding_map(xb, out / "embedding_map.png", labels=labels, method=method, max_points=max_points,
                  title=f"{meta.family} embeddings ({method}, {len(xb)} points)")


def run_bare(cfg: dict, out: Path | str) -> dict:
    """Run every stage of the word2vec flow on ``cfg`` (from :func:`flow_config`) into the folder ``out``.

    Writes ``out/tokens/``, ``vocab.parquet``, ``encoded/``, ``vectors.npz``, ``embeddings/<matrix>.parquet``,
    ``index.faiss`` (+ its JSON sidecar), ``knn_graph.parquet`` and ``embedding_map.png``.

    Returns:
        ``{<stage>_s: wall seconds, total_s, train_seconds, tokens, documents, vocab_size, analogy_score,
        analogy_total, wordsim353_spearman, simlex999_spearman, embeddings, index, index_factory, recall_at_10}``.

    Raises:
        CorpusError: a missing or empty corpus; as the flow's stages otherwise.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    r: dict = {}
    t0 = time.perf_counter()
    for stage, step in (("tokenize", _tokenize), ("vocabulary", _vocabulary), ("encode", _encode),
                        ("train", _train), ("evaluate", _evaluate), ("export", _export)):
        with _timed(r, stage):
            r.update(step(cfg, out) or {})
    for stage, step in (("index", _index), ("knn_graph", _knn_graph), ("embedding_map", _embedding_map)):
        with _timed(r, stage):
            r.update(step(cfg, out, r["embeddings"]) or {})
    r["total_s"] = round(time.perf_counter() - t0, 3)
    return r


def _settings(pairs: list[str]) -> dict:
    """``["epochs=1", "probes=[\\"king\\"]", "corpus_name=x"]`` -> ``{"epochs": 1, ...}`` (JSON values, else strings)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", help="corpus path (needed unless --config is given)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a word2vec flow parameter (Word2VecParams field), e.g. epochs=1; repeatable")
    ap.add_argument("--config", type=Path, help="settings from --print-config (no flow import in this process)")
    ap.add_argument("--print-config", action="store_true", help="print the flow's settings as JSON and stop")
    ap.add_argument("--out", type=Path, help="output folder")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    if args.config:
        cfg = json.loads(args.config.read_text())
    elif args.corpus:
        cfg = flow_config(args.corpus, _settings(args.set))
    else:
        ap.error("give --corpus or --config")
    if args.print_config:
        print(json.dumps(cfg, indent=1))
        return
    if args.out is None:
        ap.error("--out is needed to run the stages")
    r = {**run_bare(cfg, args.out),
         "imported_prefect": "prefect" in sys.modules, "imported_mlflow": "mlflow" in sys.modules}
    text = json.dumps(r, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
