"""Prefect tasks: export embeddings to Parquet and build their FAISS index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import task
from prefect.logging import get_run_logger

from replearn.lib.store.embeddings_table import EmbeddingsMetadata, read_vectors, write_embeddings
from replearn.lib.store.faiss_index import recall_at_k, save_index, sidecar_path, timed_build_index
from replearn.lib.text.vocab import read_vocabulary
from replearn.tasks.tracking import log_metrics


@task(name="export-word-vectors")
def export_word_vectors_task(vectors_path: str, vocab_path: str, out_dir: str, matrices: list[str], config: dict,
                             run_id: str, source_hash: str | None) -> dict[str, str]:
    """Write one embeddings table per matrix (``input`` = V, ``context`` = U, ``mean`` = (V + U) / 2).

    Returns ``{matrix: parquet path}``. Each file is written atomically.
    """
    vocab = read_vocabulary(Path(vocab_path))
    out: dict[str, str] = {}
    with np.load(vectors_path) as z:
        mats = {"input": z["input"], "context": z["context"]}
    mats["mean"] = (mats["input"] + mats["context"]) / 2
    for name in matrices:
        if name not in mats:
            raise ValueError(f"unknown matrix {name!r}; choose from input, context, mean")
        vectors = mats[name]
        meta = EmbeddingsMetadata(family="word2vec", dim=int(vectors.shape[1]), normalized=False, similarity="cos",
                                  mlflow_run_id=run_id, source_hash=source_hash, config=config, matrix=name)
        path = Path(out_dir) / f"{name}.parquet"
        write_embeddings(path, list(vocab.words), vectors, meta, ids=np.arange(len(vocab), dtype=np.int64))
        out[name] = str(path)
    get_run_logger().info("exported %s", ", ".join(f"{k}: {v}" for k, v in out.items()))
    return out


@task(name="build-index")
def index_task(parquet_path: str, index_path: str, tracking_uri: str, run_id: str, factory: str = "Flat",
               n_queries: int = 1000, seed: int = 0) -> dict:
    """FAISS index over an embeddings table (cosine = inner product on unit vectors), saved beside it.

    Recall@10 is measured against exact search on ``n_queries`` held-out rows
    and written to the index's JSON sidecar and MLflow.
    """
    keys, ids, xb, meta = read_vectors(parquet_path)
    index, seconds = timed_build_index(xb, meta.similarity, factory, ids=ids)
    rng = np.random.default_rng(seed)
    xq = xb[rng.choice(len(xb), size=min(n_queries, len(xb)), replace=False)]
    recall = recall_at_k(index, xb, xq, k=min(10, len(xb)), metric=meta.similarity, ids=ids)
    save_index(index, Path(index_path), metric=meta.similarity, factory=factory, recall_at_10=recall,
               build_seconds=seconds, extra={"embeddings": Path(parquet_path).name})
    log_metrics(tracking_uri, run_id, {"index.recall_at_10": recall, "index.build_seconds": seconds,
                                       "index.ntotal": float(index.ntotal)})
    get_run_logger().info("index %s (%s, %d vectors): recall@10 %.4f", index_path, factory, index.ntotal, recall)
    return {"path": index_path, "sidecar": str(sidecar_path(index_path)), "recall_at_10": recall, "build_seconds": seconds, "ntotal": int(index.ntotal)}
