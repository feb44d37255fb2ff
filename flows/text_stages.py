"""The stages both text flows share (word2vec, multi-sense): the tokenizer settings, tokenize -> vocabulary -> encode,
and the export of word vectors.

A stage that maps over shards (tokenize partitions, export shards) is composed
here, at flow level, never by a task: the flow looks the stage up in the stage
cache (infra/cache_lookup.py: on a hit no shard runs and the stage's cached
task answers from the cache), otherwise plans the shards (a task), maps the
shard task over them on the flow run's :class:`~replearn.infra.runners.ShardRunner`
(a thread pool, a Dask or a Ray cluster), then calls the stage's cached task
with their results. Outputs are the same whatever the runner.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from prefect import Task

from replearn.infra.cache_lookup import cached_output
from replearn.infra.caching import StageOut, place_outputs, reuse_or_rerun
from replearn.infra.run_context import RunContext
from replearn.infra.runners import ShardRunner
from replearn.infra.stage_outputs import Embeddings, Encoded, StageOutput, Tokens, Vocabulary
from replearn.lib.text.partitions import PARTITION_BYTES
from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.token_shards import check_out_dir
from replearn.tasks.export import (
    export_word_vectors_shard_task,
    export_word_vectors_task,
    plan_export_shards_task,
)
from replearn.tasks.text import (
    digest_memo,
    plan_partitions_task,
    tokenize_partition_task,
    tokenize_task,
    vocabulary_task,
)
from replearn.tasks.word2vec import encode_task

__all__ = ["TOKENIZER", "corpus_stages", "export_word_vectors_stage", "tokenize_stage"]

#: The tokenizer settings both text flows record (in the stage cache key, the checkpoint key and the export
#: metadata), ``text_column`` added per run: lib/text's :class:`TokenizerConfig` defaults (read-only).
TOKENIZER = MappingProxyType({name: getattr(TokenizerConfig(), name)
                              for name in ("lowercase", "normalization", "min_len", "max_len")})


def _sharded(record_task: Task, record: dict[str, Any], run_shards: Callable[[], dict[str, Any]]) -> StageOutput:
    """One sharded stage: ``record_task(**record)`` from the cache when it holds a usable result (no shard runs);
    otherwise ``run_shards()`` (plan and map the shards; returns the keyword naming their results) and
    ``record_task`` on those results, its cache entry rewritten."""
    if cached_output(record_task, **record) is not None:
        return record_task(**record)
    return record_task.with_options(refresh_cache=True)(**{**record, **run_shards()})


def tokenize_stage(source: str, out_dir: str | StageOut, tokenizer: dict, tracking_uri: str, run_id: str,
                   source_hash: str | None = None, partition_bytes: int = PARTITION_BYTES,
                   runner: ShardRunner | None = None, files: list[str] | None = None) -> Tokens:
    """Tokenize ``source`` into Parquet token shards under ``out_dir``: ``plan-partitions``, one
    ``tokenize-partition`` per partition on ``runner`` (None: the flow run's own task runner, one at a time),
    then ``tokenize`` (tasks/text.py), which gathers them and logs the statistics to MLflow. Cached as one stage
    on the corpus's content hash ``source_hash``, the settings and ``partition_bytes``; each partition is cached
    on its file's content too, so when a corpus folder grows only its new files are read and tokenized.
    ``files``: tokenize only these files of ``source`` (None: all of them).

    The partitions live in the data home of ``out_dir`` (a :class:`StageOut`), or beside a plain ``out_dir``
    (``<parent>/stages/tokenize-partition/...``); the file digests are remembered in ``<home>/file-digests``.

    Raises:
        CorpusError: missing or empty corpus, unreadable file, missing Parquet text column (lib/text/tokenize.py).
    """
    runner = runner or ShardRunner()
    home = out_dir.home if isinstance(out_dir, StageOut) else str(Path(out_dir).parent)
    record = place_outputs(tokenize_task, source=source, out_dir=out_dir, tokenizer=tokenizer,
                           tracking_uri=tracking_uri, run_id=run_id, source_hash=source_hash,
                           partition_bytes=partition_bytes, files=files)

    def partitions() -> dict[str, Any]:
        check_out_dir(Path(record["out_dir"]))
        calls = [place_outputs(tokenize_partition_task, **c, out_dir=StageOut(home, run_id, ("part",)),
                               tokenizer=tokenizer, progress=runner.parallel == 1)
                 for c in plan_partitions_task(source, str(digest_memo(home)), partition_bytes, files)]
        parts = runner.map(tokenize_partition_task, calls)
        if gone := [i for i, p in enumerate(parts) if not Path(p.path).is_dir()]:  # a cached partition deleted
            again = runner.map(tokenize_partition_task.with_options(refresh_cache=True), [calls[i] for i in gone])
            parts = [*parts]
            for i, p in zip(gone, again):
                parts[i] = p
        return {"parts": parts}

    return _sharded(tokenize_task, record, partitions)


def corpus_stages(run: RunContext, corpus: str, tokenizer: dict, source_hash: str, min_count: int,
                  max_vocab: int | None, max_sentence_tokens: int | None, runner: ShardRunner,
                  files: list[str] | None = None, base_counts: str | None = None
                  ) -> tuple[Tokens, Vocabulary, Encoded]:
    """tokenize -> vocabulary -> encode of one text flow run, each stage cached and its outputs in the stage
    store (infra/caching.py): the token shards (``tokens``), the vocabulary (``vocab.parquet``, words seen
    ``min_count`` times or more, at most ``max_vocab``) and the corpus as ids (``encoded``, sentences cut at
    ``max_sentence_tokens``). A warm start passes the new ``files`` of the corpus (None: all) and the token counts
    of the model it continues (``base_counts``), merged in."""
    tokens = tokenize_stage(corpus, run.stage_out("tokens"), tokenizer, run.tracking_uri, run.run_id,
                            source_hash=source_hash, runner=runner, files=files)
    vocab = reuse_or_rerun(vocabulary_task, tokens.path, run.stage_out("vocab.parquet"), min_count, max_vocab,
                           run.tracking_uri, run.run_id, base_counts=base_counts)
    encoded = reuse_or_rerun(encode_task, tokens.path, vocab.path, run.stage_out("encoded"), max_sentence_tokens)
    return tokens, vocab, encoded


def export_word_vectors_stage(vectors_path: str, vocab_path: str, out_dir: str | StageOut, matrices: list[str],
                              config: dict, run_id: str, source_hash: str | None, shards: int | None = None,
                              runner: ShardRunner | None = None) -> Embeddings:
    """One embeddings table per matrix under ``out_dir`` (tasks/export.py ``export-word-vectors``): one file each
    when ``shards`` is None, else a folder of at most ``shards`` row ranges: ``plan-export-shards``, one
    ``export-word-vectors-shard`` per range on ``runner`` (None: the flow run's own task runner), and
    ``export-word-vectors`` renaming the shard folders into place. Cached as one stage.

    Raises:
        ValueError: an unknown matrix name, or ``shards < 1``.
        EmbeddingsError: no rows, or non-finite vectors (lib/store/embeddings_table.py).
    """
    runner = runner or ShardRunner()
    record = place_outputs(export_word_vectors_task, vectors_path=vectors_path, vocab_path=vocab_path,
                           out_dir=out_dir, matrices=matrices, config=config, run_id=run_id,
                           source_hash=source_hash, shards=shards)
    if shards is None:
        return reuse_or_rerun(export_word_vectors_task, **record)

    def write_shards() -> dict[str, Any]:
        calls = plan_export_shards_task(**{k: v for k, v in record.items() if k != "staged"})  # gather's own
        runner.map(export_word_vectors_shard_task, calls)
        return {"staged": {c["matrix"]: c["folder"] for c in calls}}

    return _sharded(export_word_vectors_task, record, write_shards)
