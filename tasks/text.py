"""Prefect tasks for the text stages: tokenize and vocabulary."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from replearn.lib.store.atomic import temp_sibling
from replearn.lib.text.partitions import (
    PARTITION_BYTES,
    Partition,
    gather_partitions,
    plan_partitions,
    tokenize_partition,
)
from replearn.lib.text.config import TokenizerConfig, TokenizeStats
from replearn.lib.text.token_shards import check_out_dir
from replearn.lib.text.vocab import build_vocabulary, count_tokens, write_vocabulary
from replearn.infra.caching import STAGE_CACHE
from replearn.infra.stage_outputs import Tokens, Vocabulary
from replearn.infra.fanout import fan_out
from replearn.infra.tracking import log_metrics, log_params


@task(name="tokenize", cache_policy=STAGE_CACHE, persist_result=True)
def tokenize_task(source: str, out_dir: str, tokenizer: dict, tracking_uri: str, run_id: str,
                  source_hash: str | None = None, partition_bytes: int = PARTITION_BYTES,
                  parallel: int | None = 1) -> Tokens:
    """Tokenize ``source`` into Parquet token shards under ``out_dir``; log statistics to MLflow.

    The corpus is cut into partitions (lib/text/partitions.py: one per file, large plain text files in byte
    ranges of about ``partition_bytes`` cut at line starts), each tokenized by a ``tokenize-partition`` task on the
    flow's task runner, at most ``parallel`` at once (1: one after another, as a single process always did; None:
    all at once, for a Dask or Ray cluster); ``gather-tokens`` then moves their shards into ``out_dir``. Same token
    table and statistics whatever the runner. ``source_hash`` (the corpus's content hash) keys the stage cache, so
    an edited corpus at the same path is tokenized again; ``parallel`` is not part of the key. This task is the
    stage's cache gate: when its result is reused, no partition task runs (infra/fanout.py).

    Returns the token folder and its statistics (files, documents, tokens, invalid_utf8, boms_removed, shards).

    Raises:
        CorpusError: missing or empty corpus, unreadable file, missing Parquet text column (lib/text/tokenize.py).
    """
    config = TokenizerConfig(**tokenizer)
    check_out_dir(Path(out_dir))
    partitions = plan_partitions(source, partition_bytes)
    staging = temp_sibling(Path(out_dir), "parts")  # partition folders, on the file system of out_dir
    try:
        parts = fan_out(tokenize_partition_task, [
            {"partition": p.to_dict(), "out_dir": str(staging / f"{i:05d}"), "tokenizer": tokenizer,
             "progress": parallel == 1}
            for i, p in enumerate(partitions)], parallel)
        d = gather_tokens_task(source, parts, out_dir, tokenizer)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log_params(tracking_uri, run_id, {"corpus": source, **dataclasses.asdict(config)}, prefix="tokenize.")
    log_metrics(tracking_uri, run_id, {f"tokenize.{k}": v for k, v in d.items() if isinstance(v, (int, float))})
    get_run_logger().info("tokenized %s (%d partitions): %s documents, %s tokens, %s invalid UTF-8 bytes replaced, "
                          "%s BOMs dropped", source, len(partitions), d["documents"], d["tokens"], d["invalid_utf8"],
                          d["boms_removed"])
    return Tokens(path=out_dir, **d)


@task(name="tokenize-partition", cache_policy=NO_CACHE)
def tokenize_partition_task(partition: dict, out_dir: str, tokenizer: dict, progress: bool = False) -> dict:
    """Tokenize one partition (``Partition.to_dict()``) into shards under ``out_dir``; return its statistics.

    Runs wherever the flow's task runner puts it: ``out_dir`` and the corpus must be visible there.
    Returns ``{"path": out_dir, files, documents, tokens, invalid_utf8, boms_removed, shards}``.
    """
    stats = tokenize_partition(Partition.from_dict(partition), Path(out_dir), TokenizerConfig(**tokenizer),
                               progress=progress)
    return {"path": out_dir, **stats.to_dict()}


@task(name="gather-tokens", cache_policy=NO_CACHE)
def gather_tokens_task(source: str, parts: list[dict], out_dir: str, tokenizer: dict) -> dict:
    """Move the partitions' shards, in order, into the token folder ``out_dir``; return the corpus statistics.

    Raises:
        CorpusError: the corpus yielded no tokens at all.
    """
    stats = gather_partitions(source, [(p["path"], TokenizeStats.from_dict(p)) for p in parts], Path(out_dir),
                              TokenizerConfig(**tokenizer))
    return stats.to_dict()


@task(name="vocabulary", cache_policy=STAGE_CACHE, persist_result=True)
def vocabulary_task(token_dir: str, out_path: str, min_count: int, max_vocab: int | None,
                    tracking_uri: str, run_id: str) -> Vocabulary:
    """Count tokens, prune by ``min_count`` / ``max_vocab`` and write the vocabulary Parquet (token, count, id)."""
    counts = count_tokens(Path(token_dir))
    vocab = build_vocabulary(counts, min_count=min_count, max_vocab=max_vocab)
    write_vocabulary(vocab, Path(out_path))
    info = {"vocab_size": len(vocab), "distinct_tokens": counts.height, "vocab_tokens": int(vocab.total)}
    log_metrics(tracking_uri, run_id, {f"vocabulary.{k}": v for k, v in info.items()})
    log_params(tracking_uri, run_id, {"min_count": min_count, "max_vocab": max_vocab}, prefix="vocabulary.")
    get_run_logger().info("vocabulary: %d words kept of %d distinct (min_count=%d)", len(vocab), counts.height, min_count)
    return Vocabulary(path=out_path, **info)
