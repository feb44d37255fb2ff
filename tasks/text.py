"""Prefect tasks for the text stages: tokenize and vocabulary."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from prefect import task
from prefect.logging import get_run_logger

from replearn.lib.text.tokenize import TokenizerConfig, tokenize_corpus
from replearn.lib.text.vocab import build_vocabulary, count_tokens, write_vocabulary
from replearn.tasks.caching import STAGE_CACHE
from replearn.tasks.tracking import log_metrics, log_params


@task(name="tokenize", cache_policy=STAGE_CACHE, persist_result=True)
def tokenize_task(source: str, out_dir: str, tokenizer: dict, tracking_uri: str, run_id: str,
                  source_hash: str | None = None) -> dict:
    """Tokenize ``source`` into Parquet token shards under ``out_dir``; log statistics to MLflow.

    ``source_hash`` (the corpus's content hash) keys the stage cache, so an edited
    corpus at the same path is tokenized again. Returns ``{"path": out_dir}`` and
    the statistics (files, documents, tokens, invalid_utf8, boms_removed, shards).
    """
    config = TokenizerConfig(**tokenizer)
    stats = tokenize_corpus(Path(source), Path(out_dir), config, progress=True)
    d = stats.to_dict()
    log_params(tracking_uri, run_id, {"corpus": source, **dataclasses.asdict(config)}, prefix="tokenize.")
    log_metrics(tracking_uri, run_id, {f"tokenize.{k}": v for k, v in d.items() if isinstance(v, (int, float))})
    get_run_logger().info("tokenized %s: %s documents, %s tokens, %s invalid UTF-8 bytes replaced, %s BOMs dropped",
                          source, d["documents"], d["tokens"], d["invalid_utf8"], d["boms_removed"])
    return {"path": out_dir, **d}


@task(name="vocabulary", cache_policy=STAGE_CACHE, persist_result=True)
def vocabulary_task(token_dir: str, out_path: str, min_count: int, max_vocab: int | None,
                    tracking_uri: str, run_id: str) -> dict:
    """Count tokens, prune by ``min_count`` / ``max_vocab`` and write the vocabulary Parquet (token, count, id)."""
    counts = count_tokens(Path(token_dir))
    vocab = build_vocabulary(counts, min_count=min_count, max_vocab=max_vocab)
    write_vocabulary(vocab, Path(out_path))
    info = {"vocab_size": len(vocab), "distinct_tokens": counts.height, "vocab_tokens": int(vocab.total)}
    log_metrics(tracking_uri, run_id, {f"vocabulary.{k}": v for k, v in info.items()})
    log_params(tracking_uri, run_id, {"min_count": min_count, "max_vocab": max_vocab}, prefix="vocabulary.")
    get_run_logger().info("vocabulary: %d words kept of %d distinct (min_count=%d)", len(vocab), counts.height, min_count)
    return {"path": out_path, **info}
