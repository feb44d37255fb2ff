"""Prefect tasks: export embeddings to Parquet and build their FAISS index."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from replearn.lib.store.atomic import temp_sibling
from replearn.lib.store.embeddings_shards import publish_embeddings_shards, shard_ranges, write_embeddings_shard
from replearn.lib.store.embeddings_table import EmbeddingsMetadata, read_vectors, write_embeddings
from replearn.lib.store.embedding_map import METHOD_NAMES, embedding_map
from replearn.lib.store.word_map import select_neighbourhoods, word_map
from replearn.lib.store.faiss_index import load_index, save_index, sidecar_path
from replearn.lib.store.index_tuning import build_tuned_index, tuning_metrics
from replearn.lib.store.knn_graph import knn_graph, write_knn_graph
from replearn.lib.text.vocab import read_vocabulary
from replearn.infra.caching import STAGE_CACHE
from replearn.infra.stage_outputs import Artifact, Embeddings, Index
from replearn.infra.tracking import client, log_metrics, log_params


MATRICES = ("input", "context", "mean")


def _check_export(matrices: list[str], shards: int | None) -> None:
    """ValueError for an unknown matrix name or ``shards < 1``."""
    unknown = [m for m in matrices if m not in MATRICES]
    if unknown:
        raise ValueError(f"unknown matrix {unknown[0]!r}; choose from input, context, mean")
    if shards is not None and shards < 1:
        raise ValueError(f"shards must be >= 1 or None, got {shards}")


def _tables(out_dir: str, matrices: list[str]) -> dict[str, str]:
    """``{matrix: <out_dir>/<matrix>.parquet}``."""
    return {name: str(Path(out_dir) / f"{name}.parquet") for name in matrices}


def _metadata(name: str, dim: int, config: dict, run_id: str, source_hash: str | None) -> EmbeddingsMetadata:
    """The file metadata of the word-vector table of matrix ``name``."""
    return EmbeddingsMetadata(family="word2vec", dim=dim, normalized=False, similarity="cos", mlflow_run_id=run_id,
                              source_hash=source_hash, config=config, matrix=name)


@task(name="plan-export-shards", cache_policy=NO_CACHE)
def plan_export_shards_task(vectors_path: str, vocab_path: str, out_dir: str, matrices: list[str], config: dict,
                            run_id: str, source_hash: str | None, shards: int) -> list[dict]:
    """Cut each matrix's table into at most ``shards`` row ranges (lib/store/embeddings_shards.py), each to be written
    into a hidden staging folder beside its table.

    Returns the arguments of one ``export-word-vectors-shard`` task per (matrix, range), matrices in the given order.

    Raises:
        ValueError: an unknown matrix name, or ``shards < 1``.
    """
    _check_export(matrices, shards)
    vocab = read_vocabulary(Path(vocab_path))
    with np.load(vectors_path) as z:
        dim = int(z["input"].shape[1])
    tables = _tables(out_dir, matrices)
    ranges = shard_ranges(len(vocab), shards)
    calls = []
    for name in matrices:
        staging, meta = temp_sibling(Path(tables[name]), "parts"), _metadata(name, dim, config, run_id, source_hash)
        calls += [{"vectors_path": vectors_path, "vocab_path": vocab_path, "matrix": name, "start": a, "stop": b,
                   "folder": str(staging), "index": i, "metadata": meta.to_dict()} for i, (a, b) in enumerate(ranges)]
    return calls


@task(name="export-word-vectors-shard", cache_policy=NO_CACHE)
def export_word_vectors_shard_task(vectors_path: str, vocab_path: str, matrix: str, start: int, stop: int,
                                   folder: str, index: int, metadata: dict) -> str:
    """Write rows ``start:stop`` of one matrix as shard ``index`` of the staging ``folder``; return its path.

    Runs wherever the flow's shard runner puts it: the vectors, the vocabulary and ``folder`` must be visible there.
    """
    words = read_vocabulary(Path(vocab_path)).words[start:stop]
    with np.load(vectors_path) as z:
        vectors = _matrix(z, matrix)[start:stop]
    path = write_embeddings_shard(folder, index, list(words), vectors, EmbeddingsMetadata.from_dict(metadata),
                                  ids=np.arange(start, stop, dtype=np.int64))
    return str(path)


@task(name="export-word-vectors", cache_policy=STAGE_CACHE - "staged", persist_result=True)
def export_word_vectors_task(vectors_path: str, vocab_path: str, out_dir: str, matrices: list[str], config: dict,
                             run_id: str, source_hash: str | None, shards: int | None = None,
                             staged: dict[str, str] | None = None) -> Embeddings:
    """Write one embeddings table per matrix (``input`` = V, ``context`` = U, ``mean`` = (V + U) / 2): the export
    stage's cached record.

    Returns the tables ``{matrix: <out_dir>/<matrix>.parquet}``, the first matrix the main one. With ``shards`` None
    each is one Parquet file, written here. With ``shards`` = k (a Dask or Ray runner) each is a folder of at most k
    shards ``part-00000.parquet, ...`` (row ranges): the flow composes the stage (flows/text_stages.py:
    ``plan-export-shards``, one ``export-word-vectors-shard`` task per shard on its shard runner, then this task
    with ``staged``: ``{matrix: the staging folder its shards went to}``), and this task checks each staging folder
    and renames it into place (lib/store/embeddings_shards.py). The stage cache keys it on everything but
    ``staged``, and the flow looks that key up first (infra/cache_lookup.py), so on a hit no shard runs. Either is
    written atomically and reads back (``read_vectors``, pyarrow, polars) as the same table.

    Raises:
        ValueError: an unknown matrix name, ``shards < 1``, or ``shards`` given without the folders ``staged``.
        EmbeddingsError: no rows, or non-finite vectors (lib/store/embeddings_table.py); a shard missing or
            inconsistent.
    """
    _check_export(matrices, shards)
    out = _tables(out_dir, matrices)
    if shards is None:  # one file per matrix, written here from the vectors read once
        vocab = read_vocabulary(Path(vocab_path))
        with np.load(vectors_path) as z:
            mats = {name: _matrix(z, name) for name in matrices}
        for name, vectors in mats.items():
            write_embeddings(out[name], list(vocab.words), vectors,
                             _metadata(name, int(vectors.shape[1]), config, run_id, source_hash),
                             ids=np.arange(len(vocab), dtype=np.int64))
    else:
        if staged is None:
            raise ValueError("a sharded export needs its shards written first: run the stage with "
                             "flows/text_stages.export_word_vectors_stage")
        expected = len(shard_ranges(len(read_vocabulary(Path(vocab_path))), shards))
        try:
            for name in matrices:
                publish_embeddings_shards(staged[name], out[name], expected=expected)
        finally:
            for folder in staged.values():
                shutil.rmtree(folder, ignore_errors=True)
    get_run_logger().info("exported %s", ", ".join(f"{k}: {v}" for k, v in out.items()))
    return Embeddings(tables=out, main=matrices[0])


def _matrix(z, name: str) -> np.ndarray:
    """Matrix ``name`` of the saved vectors ``z`` (an open .npz): V, U or (V + U) / 2, float32 (V, D)."""
    if name == "mean":
        return (z["input"] + z["context"]) / 2
    return z[name]


@task(name="build-index", cache_policy=STAGE_CACHE, persist_result=True)
def index_task(parquet_path: str, index_path: str, tracking_uri: str, run_id: str, factory: str | None = None,
               memory_budget_mb: float | None = None, target_recall: float = 0.95, n_queries: int = 1000,
               seed: int = 0) -> Index:
    """FAISS index over an embeddings table, chosen by size, dimension and memory budget and tuned, saved beside it.

    Flat for small tables; HNSW / IVF-Flat / IVF-PQ (OPQ) for larger ones, with
    nprobe / efSearch raised until recall@10 against exact search on held-out
    rows reaches ``target_recall``. The choice, the measured recall and latency
    go to the index's JSON sidecar and to MLflow.
    """
    keys, ids, xb, meta = read_vectors(parquet_path)
    budget = None if memory_budget_mb is None else int(memory_budget_mb * 2**20)
    index, report = build_tuned_index(xb, meta.similarity, ids=ids, memory_budget_bytes=budget, factory=factory,
                                      target_recall=target_recall, n_queries=n_queries, seed=seed)
    save_index(index, Path(index_path), metric=meta.similarity, factory=report["factory"], tuning=report,
               build_seconds=report["build_seconds"], extra={"embeddings": Path(parquet_path).name})
    figures = tuning_metrics(report)
    figures["index.ntotal"] = float(index.ntotal)
    log_metrics(tracking_uri, run_id, figures)
    log_params(tracking_uri, run_id, {"factory": report["factory"], "reason": report["choice"].get("reason", "")},
               prefix="index.")
    recall = figures.get("index.recall_at_10", float(report["tuning"]["recall_at_k"]))
    get_run_logger().info("index %s (%s, %d vectors): recall@10 %.4f, %.3f ms/query", index_path, report["factory"],
                          index.ntotal, recall, report["tuning"]["ms_per_query"])
    return Index(path=index_path, sidecar=str(sidecar_path(index_path)), recall_at_10=recall,
                 build_seconds=report["build_seconds"], ntotal=int(index.ntotal), factory=report["factory"])


@task(name="knn-graph", cache_policy=STAGE_CACHE, persist_result=True)
def knn_graph_task(parquet_path: str, index_path: str, out_path: str, tracking_uri: str, run_id: str,
                   k: int = 10) -> Artifact:
    """The k-nearest-neighbour graph of the embeddings, (src, dst, similarity) as Parquet, from the saved index."""
    keys, ids, xb, meta = read_vectors(parquet_path)
    index, _ = load_index(index_path)
    src, dst, sim = knn_graph(xb, k, meta.similarity, ids=ids, index=index)
    write_knn_graph(Path(out_path), src, dst, sim, metric=meta.similarity, k=k)
    log_metrics(tracking_uri, run_id, {"graph.edges": float(len(src)), "graph.k": float(k),
                                       "graph.mean_similarity": float(np.mean(sim)) if len(sim) else 0.0})
    return Artifact(out_path)


WORD_FAMILIES = ("word2vec", "multisense")
"""Families whose map is the probe-word map (lib/store/word_map.py) rather than the scatter of every row."""


@task(name="embedding-map", cache_policy=STAGE_CACHE, persist_result=True)
def embedding_map_task(parquet_path: str, png_path: str, tracking_uri: str, run_id: str, method: str = "pca",
                       max_points: int = 5000, probes: list[str] | None = None) -> Artifact:
    """A 2-D map of the embeddings, logged to MLflow as ``plots/<png name>``.

    Word vectors (word2vec, multisense): the probe words (``probes``, default the neighbour table's words;
    for multi-sense vectors their senses) and their nearest neighbours, named and coloured by probe
    (t-SNE of those words; :func:`_word_map`). Probes not in the vocabulary are skipped and logged; when none is there,
    the plain scatter is drawn instead. Other families: a scatter of up to ``max_points`` rows (``method``,
    PCA by default) coloured by label, each modality (image, text) with its own marker.
    """
    from replearn.lib.store.embeddings_table import read_embeddings

    keys, ids, xb, meta = read_vectors(parquet_path)
    if meta.family in WORD_FAMILIES and _word_map(keys, xb, meta, parquet_path, png_path, probes):
        client(tracking_uri).log_artifact(run_id, png_path, "plots")
        return Artifact(png_path)
    table, _ = read_embeddings(parquet_path, columns=["label", "modality"])
    labels = table.column("label").to_pylist()
    modality = table.column("modality").to_pylist()
    if all(v is None for v in labels):
        labels = modality if any(v is not None for v in modality) else None
    embedding_map(xb, Path(png_path), labels=labels, modality=modality, method=method, max_points=max_points,
                  title=f"{meta.family} embeddings ({METHOD_NAMES.get(method, method)}, {len(xb)} points)")
    client(tracking_uri).log_artifact(run_id, png_path, "plots")
    return Artifact(png_path)


def _word_map(keys: list[str], xb: np.ndarray, meta: EmbeddingsMetadata, parquet_path: str, png_path: str,
              probes: list[str] | None) -> bool:
    """Draw the probe-word map of a word-vector table to ``png_path``; False (and a warning) when no probe is in it.

    Default probes: the neighbour table's (lib/eval/neighbours.py ``PROBE_WORDS``, the first 6 found); for
    multi-sense vectors the ambiguous words of the sense table first (tasks/multisense.py ``AMBIGUOUS``), the
    first 8 senses with a prior >= 0.1 found. Given probes: up to 10 probes (senses).
    """
    from replearn.lib.eval.neighbours import PROBE_WORDS
    from replearn.lib.store.embeddings_table import read_embeddings

    multisense = meta.family == "multisense"
    senses = read_embeddings(parquet_path, columns=["sense"])[0].column("sense").to_numpy(zero_copy_only=False) \
        if multisense else None
    if probes:
        wanted, max_groups = list(probes), 10
    elif multisense:
        from replearn.tasks.multisense import AMBIGUOUS

        wanted, max_groups = [*AMBIGUOUS, *PROBE_WORDS], 8
    else:
        wanted, max_groups = list(PROBE_WORDS), 6
    hoods = select_neighbourhoods(keys, xb, wanted, k=6 if multisense else 8, senses=senses, max_groups=max_groups,
                                  priors=meta.config.get("priors_of_multi_sense_words", {}))
    logger = get_run_logger()
    if probes and hoods.skipped:
        logger.warning("word map: %d probe(s) not in the vocabulary, skipped: %s", len(hoods.skipped),
                       ", ".join(hoods.skipped))
    if probes and hoods.dropped:
        logger.warning("word map: at most %d probes (senses) fit one map; left out: %s", max_groups,
                       ", ".join(hoods.dropped))
    if not hoods.groups:
        logger.warning("word map: none of the probes (%s) is in the vocabulary; drawing a plain scatter instead",
                       ", ".join(wanted[:10]))
        return False
    word_map(xb, keys, hoods, Path(png_path),
             title=f"{meta.family}: probe words and their nearest neighbours (cosine), t-SNE of these words")
    return True
