"""Prefect tasks for the text stages: tokenize (plan, partitions, the stage's record) and vocabulary."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from replearn.lib.errors import VocabularyError
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
from replearn.infra.tracking import log_metrics, log_params


@task(name="plan-partitions", cache_policy=NO_CACHE)
def plan_partitions_task(source: str, out_dir: str, partition_bytes: int = PARTITION_BYTES) -> list[dict]:
    """Cut ``source`` into partitions (lib/text/partitions.py: one per file, large plain text files in byte ranges of
    about ``partition_bytes`` cut at line starts) and name a folder for each, inside one hidden staging folder beside
    ``out_dir`` (the token folder to come, on its file system).

    Returns one ``{"partition": Partition.to_dict(), "out_dir": <partition folder>}`` per partition, in corpus order:
    the arguments of a ``tokenize-partition`` task.

    Raises:
        CorpusError: missing or empty corpus, unreadable file; ``out_dir`` exists and is not a folder.
    """
    check_out_dir(Path(out_dir))
    staging = temp_sibling(Path(out_dir), "parts")
    return [{"partition": p.to_dict(), "out_dir": str(staging / f"{i:05d}")}
            for i, p in enumerate(plan_partitions(source, partition_bytes))]


@task(name="tokenize-partition", cache_policy=NO_CACHE)
def tokenize_partition_task(partition: dict, out_dir: str, tokenizer: dict, progress: bool = False) -> dict:
    """Tokenize one partition (``Partition.to_dict()``) into shards under ``out_dir``; return its statistics.

    Runs wherever the flow's shard runner puts it: ``out_dir`` and the corpus must be visible there.
    Returns ``{"path": out_dir, files, documents, tokens, invalid_utf8, boms_removed, shards}``.
    """
    stats = tokenize_partition(Partition.from_dict(partition), Path(out_dir), TokenizerConfig(**tokenizer),
                               progress=progress)
    return {"path": out_dir, **stats.to_dict()}


@task(name="tokenize", cache_policy=STAGE_CACHE - "parts", persist_result=True)
def tokenize_task(source: str, out_dir: str, tokenizer: dict, tracking_uri: str, run_id: str,
                  source_hash: str | None = None, partition_bytes: int = PARTITION_BYTES,
                  parts: list[dict] | None = None) -> Tokens:
    """The tokenize stage's cached record: move the tokenized partitions' shards, in order, into the token folder
    ``out_dir``; log the corpus statistics to MLflow.

    The flow composes the stage (flows/text_stages.py): ``plan-partitions``, one ``tokenize-partition`` per
    partition on its shard runner, then this task with their results ``parts``. The stage cache keys this task like
    the whole stage, on the corpus, its content hash ``source_hash`` (an edited corpus at the same path is
    tokenized again), the settings and ``partition_bytes``, not on ``parts``; the flow looks that key up first
    (infra/cache_lookup.py), so on a hit no partition runs. Same token table and statistics whatever the runner.
    The partition folders and the staging folder holding them are removed.

    Returns the token folder and its statistics (files, documents, tokens, invalid_utf8, boms_removed, shards).

    Raises:
        CorpusError: the corpus yielded no tokens at all, or a partition's shard is missing.
        ValueError: ``parts`` is None (called without the partitions, which only a cache hit may skip).
    """
    if parts is None:
        raise ValueError("tokenize needs the tokenized partitions: run the stage with flows/text_stages.tokenize_stage")
    config = TokenizerConfig(**tokenizer)
    try:
        stats = gather_partitions(source, [(p["path"], TokenizeStats.from_dict(p)) for p in parts], Path(out_dir),
                                  config)
    finally:
        for staging in {Path(p["path"]).parent for p in parts}:
            shutil.rmtree(staging, ignore_errors=True)
    d = stats.to_dict()
    log_params(tracking_uri, run_id, {"corpus": source, **dataclasses.asdict(config)}, prefix="tokenize.")
    log_metrics(tracking_uri, run_id, {f"tokenize.{k}": v for k, v in d.items() if isinstance(v, (int, float))})
    skipped = (f"; {d['null_documents']} null and {d['empty_documents']} token-less rows skipped"
               if d["null_documents"] or d["empty_documents"] else "")
    get_run_logger().info("tokenized %s (%d partitions): %s documents, %s tokens, %s invalid UTF-8 bytes replaced, "
                          "%s BOMs dropped%s", source, len(parts), d["documents"], d["tokens"], d["invalid_utf8"],
                          d["boms_removed"], skipped)
    return Tokens(path=out_dir, **d)


@task(name="vocabulary", cache_policy=STAGE_CACHE, persist_result=True)
def vocabulary_task(token_dir: str, out_path: str, min_count: int, max_vocab: int | None,
                    tracking_uri: str, run_id: str) -> Vocabulary:
    """Count tokens, prune by ``min_count`` / ``max_vocab`` and write the vocabulary Parquet (token, count, id).

    Raises:
        VocabularyError: nothing, or a single word, is left: word vectors need two words to compare and index.
    """
    counts = count_tokens(Path(token_dir))
    vocab = build_vocabulary(counts, min_count=min_count, max_vocab=max_vocab)
    if len(vocab) < 2:
        fix = "raise --max-vocab" if max_vocab == 1 else "lower --min-count or use a larger corpus"
        raise VocabularyError(f"only one word ({vocab.words[0]!r}) is left of {counts.height} distinct after "
                              f"min_count={min_count}{', max_vocab=1' if max_vocab == 1 else ''}: word vectors need "
                              f"at least two words to compare and index; {fix}")
    write_vocabulary(vocab, Path(out_path))
    info = {"vocab_size": len(vocab), "distinct_tokens": counts.height, "vocab_tokens": int(vocab.total)}
    log_metrics(tracking_uri, run_id, {f"vocabulary.{k}": v for k, v in info.items()})
    log_params(tracking_uri, run_id, {"min_count": min_count, "max_vocab": max_vocab}, prefix="vocabulary.")
    get_run_logger().info("vocabulary: %d words kept of %d distinct (min_count=%d)", len(vocab), counts.height, min_count)
    return Vocabulary(path=out_path, **info)
