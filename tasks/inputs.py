"""Prefect tasks that name a flow's input: the corpus (a path or an embedded corpus), and content fingerprints of the input
(a corpus, an image source, a loaded data file)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prefect import task

from replearn.infra.stage_outputs import Fingerprint
from replearn.lib.metric.datasets import source_hash as image_source_hash
from replearn.lib.store.embeddings_table import content_hash
from replearn.lib.text.partitions import select_files
from replearn.lib.text.default_corpus import resolve_corpus


@task(name="corpus")
def corpus_task(corpus: str | None, home: str) -> str:
    """The corpus path to read: ``corpus`` itself, or the embedded corpus it names (``books``, the default when
    empty, or ``gensim``, built once under ``<home>/data``); see :func:`replearn.lib.text.default_corpus.resolve_corpus`."""
    return str(resolve_corpus(corpus, Path(home) / "data"))


def settings_key(data_hash: str, settings: dict) -> str:
    """16 hex digits of sha256(data hash + settings as sorted JSON): names a (data, settings) checkpoint folder."""
    return hashlib.sha256((data_hash + json.dumps(settings, sort_keys=True, default=str)).encode()).hexdigest()[:16]


@task(name="fingerprint")
def fingerprint_task(source: str, settings: dict, memo_dir: str | None = None,
                     files: list[str] | None = None) -> Fingerprint:
    """Content hash of the files under ``source`` (only ``files`` of them, when given) and a key for (source,
    settings): names the resumable checkpoint folder. With ``memo_dir`` (tasks/text.py ``digest_memo``), files
    unchanged since an earlier run are not read again (lib/store/file_digests.py)."""
    data_hash = content_hash(select_files(Path(source), files), memo_dir)
    return Fingerprint(data_hash, settings_key(data_hash, settings))


@task(name="fingerprint-images")
def image_source_task(source: str) -> str:
    """Content hash of an image source (``digits``, ``mnist:<folder>``, a folder, Parquet or CSV; see
    :func:`replearn.lib.metric.datasets.source_hash`): enters the load stage's cache key."""
    return image_source_hash(source)


@task(name="data-key")
def data_key_task(data_path: str, settings: dict) -> Fingerprint:
    """Content hash of a loaded data file and a key for (data, settings): names the resumable checkpoint
    folder of a training stage."""
    data_hash = content_hash(data_path)
    return Fingerprint(data_hash, settings_key(data_hash, settings))
