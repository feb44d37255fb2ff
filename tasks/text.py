"""Prefect tasks for the text stages: tokenize (plan, partitions, the stage's record) and vocabulary."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from replearn.lib.errors import VocabularyError
from replearn.lib.store import file_digests
from replearn.lib.text.partitions import (
    PARTITION_BYTES,
    Partition,
    gather_partitions,
    plan_partitions,
    tokenize_partition,
)
from replearn.lib.text.config import TokenizerConfig, TokenizeStats
from replearn.lib.store.atomic import atomic_path
from replearn.lib.text.vocab import build_vocabulary, count_tokens, write_vocabulary
from replearn.infra.caching import STAGE_CACHE
from replearn.infra.stage_outputs import TokenPartition, Tokens, Vocabulary
from replearn.infra.tracking import log_metrics, log_params


#: Every token's count (pruned or not), written beside the vocabulary: what a warm start merges.
TOKEN_COUNTS = "token_counts.parquet"


def digest_memo(home: str | Path) -> Path:
    """Where a data home remembers its corpus files' digests (lib/store/file_digests.py): ``<home>/file-digests``."""
    return Path(home) / "file-digests"


@task(name="plan-partitions", cache_policy=NO_CACHE)
def plan_partitions_task(source: str, memo_dir: str | None = None, partition_bytes: int = PARTITION_BYTES,
                         files: list[str] | None = None) -> list[dict]:
    """Cut ``source`` into partitions (lib/text/partitions.py: one per file, large plain text files in byte ranges of
    about ``partition_bytes`` cut at line starts), each with the SHA-256 of its file (remembered in ``memo_dir``
    while the file is unchanged, so a growing folder reads only its new files). ``files``: only these files of
    ``source`` (None: all).

    Returns one ``{"partition": Partition.to_dict(), "file_digest": <hex>}`` per partition, in corpus order:
    the inputs of a ``tokenize-partition`` task.

    Raises:
        CorpusError: missing or empty corpus, unreadable file.
    """
    return [{"partition": p.to_dict(), "file_digest": file_digests.file_digest(p.path, memo_dir).hex()}
            for p in plan_partitions(source, partition_bytes, files)]


@task(name="tokenize-partition", cache_policy=STAGE_CACHE, persist_result=True)
def tokenize_partition_task(partition: dict, file_digest: str, out_dir: str, tokenizer: dict,
                            progress: bool = False) -> TokenPartition:
    """Tokenize one partition (``Partition.to_dict()``) into shards under ``out_dir``; return them and their counts.

    Cached on the partition (file path and byte range), the file's content digest ``file_digest`` and the
    tokenizer settings: a file already tokenized by an earlier run (in a corpus folder that has since grown) is
    not read again. Runs wherever the flow's shard runner puts it: ``out_dir`` and the corpus must be visible there.

    Raises:
        CorpusError: the file cannot be read or decompressed; a Parquet file lacks the text column.
    """
    stats = tokenize_partition(Partition.from_dict(partition), Path(out_dir), TokenizerConfig(**tokenizer),
                               progress=progress)
    return TokenPartition(path=out_dir, stats=stats.to_dict())


@task(name="tokenize", cache_policy=STAGE_CACHE - "parts", persist_result=True)
def tokenize_task(source: str, out_dir: str, tokenizer: dict, tracking_uri: str, run_id: str,
                  source_hash: str | None = None, partition_bytes: int = PARTITION_BYTES,
                  files: list[str] | None = None, parts: list[TokenPartition] | None = None) -> Tokens:
    """The tokenize stage's cached record: link the tokenized partitions' shards, in order, into the token folder
    ``out_dir``; log the corpus statistics to MLflow.

    The flow composes the stage (flows/text_stages.py): ``plan-partitions``, one ``tokenize-partition`` per
    partition on its shard runner (each cached on its file's content), then this task with their results ``parts``.
    The stage cache keys this task like the whole stage, on the corpus, its content hash ``source_hash`` (an edited
    corpus at the same path is tokenized again), the settings and ``partition_bytes``, not on ``parts``; the flow
    looks that key up first (infra/cache_lookup.py), so on a hit no partition runs. ``files``: only these files of
    ``source`` were tokenized (the new files a warm start trains on). Same token table and statistics
    whatever the runner. The partitions' shards are hard-linked (the partitions stay, for the next run that reads
    the same files).

    Returns the token folder and its statistics (files, documents, tokens, invalid_utf8, boms_removed, shards).

    Raises:
        CorpusError: the corpus yielded no tokens at all, or a partition's shard is missing.
        ValueError: ``parts`` is None (called without the partitions, which only a cache hit may skip).
    """
    if parts is None:
        raise ValueError("tokenize needs the tokenized partitions: run the stage with flows/text_stages.tokenize_stage")
    config = TokenizerConfig(**tokenizer)
    stats = gather_partitions(source, [(p.path, TokenizeStats.from_dict(p.stats)) for p in parts], Path(out_dir),
                              config, keep_parts=True)
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
                    tracking_uri: str, run_id: str, base_counts: str | None = None) -> Vocabulary:
    """Count tokens, prune by ``min_count`` / ``max_vocab`` and write the vocabulary Parquet (token, count, id),
    and every token's count, pruned or not, beside it (``token_counts.parquet``: token, count).

    With ``base_counts`` (the token counts of the model a warm start continues from), those are added to the
    new text's before pruning (merged counts: the noise table and subsampling of the warm start come from
    them), so its words stay, and a word enters once its count over all the text seen reaches ``min_count``,
    however the text was split between runs.

    Raises:
        VocabularyError: nothing, or a single word, is left: word vectors need two words to compare and index.
    """
    counts = count_tokens(Path(token_dir))
    distinct = counts.height
    if base_counts:
        counts = (pl.concat([counts, pl.read_parquet(base_counts, columns=["token", "count"])])
                  .group_by("token").agg(pl.col("count").sum()).sort(["count", "token"], descending=[True, False]))
    vocab = build_vocabulary(counts, min_count=min_count, max_vocab=max_vocab)
    if len(vocab) < 2:
        fix = "raise --max-vocab" if max_vocab == 1 else "lower --min-count or use a larger corpus"
        raise VocabularyError(f"only one word ({vocab.words[0]!r}) is left of {distinct} distinct after "
                              f"min_count={min_count}{', max_vocab=1' if max_vocab == 1 else ''}: word vectors need "
                              f"at least two words to compare and index; {fix}")
    write_vocabulary(vocab, Path(out_path))
    all_counts = Path(out_path).with_name(TOKEN_COUNTS)
    with atomic_path(all_counts) as tmp:
        counts.write_parquet(tmp)
    info = {"vocab_size": len(vocab), "distinct_tokens": distinct, "vocab_tokens": int(vocab.total)}
    log_metrics(tracking_uri, run_id, {f"vocabulary.{k}": v for k, v in info.items()})
    log_params(tracking_uri, run_id, {"min_count": min_count, "max_vocab": max_vocab}, prefix="vocabulary.")
    get_run_logger().info("vocabulary: %d words kept of %d distinct (min_count=%d)%s", len(vocab),
                          counts.height, min_count,
                          f"; counts merged with those of the model continued ({distinct} distinct in the new text)"
                          if base_counts else "")
    return Vocabulary(path=out_path, counts=str(all_counts), **info)
