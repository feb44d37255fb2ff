"""Typed stage outputs: what a stage hands the next stage, the stage cache and the CLI.

Every stage (a Prefect task in tasks/) returns a frozen dataclass that names its
files in fields marked by :func:`file_field`. The stage cache
(:mod:`replearn.infra.caching`) asks :meth:`StageOutput.output_files` which
files a cached result stands for, and runs the stage again when one is gone; a
flow passes ``out.path`` (or another field) on to the next stage; nobody guesses
which dict value is a path. The classes are plain data: Prefect persists them
with the task's result, and :meth:`StageOutput.to_dict` gives the JSON a flow's
summary carries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def file_field(**kwargs: Any) -> Any:
    """A dataclass field holding a path (``str``) or a ``{name: path}`` dict of paths the stage wrote."""
    return field(metadata={"file": True}, **kwargs)


@dataclass(frozen=True)
class StageOutput:
    """Base of every stage output: the files it names, and a plain-dict view."""

    def output_files(self) -> list[str]:
        """Every path in the fields made with :func:`file_field` (``None`` values skipped)."""
        paths: list[str] = []
        for f in dataclasses.fields(self):
            if not f.metadata.get("file"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, dict):
                paths.extend(str(v) for v in value.values() if v is not None)
            elif value is not None:
                paths.append(str(value))
        return paths

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-serialisable dict (nested outputs included)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Tokens(StageOutput):
    """Token shards of a corpus (``<path>/*.parquet``) and the tokenizer's counts."""

    path: str = file_field()
    files: int = 0
    documents: int = 0
    tokens: int = 0
    invalid_utf8: int = 0
    boms_removed: int = 0
    shards: int = 0
    null_documents: int = 0
    empty_documents: int = 0


@dataclass(frozen=True)
class TokenPartition(StageOutput):
    """One tokenized partition of a corpus (a file, or a byte range of one): its shards' folder and the
    tokenizer's counts for it (lib/text/config.py ``TokenizeStats.to_dict()``)."""

    path: str = file_field()
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Vocabulary(StageOutput):
    """The vocabulary Parquet (token, count, id) and its size."""

    path: str = file_field()
    vocab_size: int = 0
    distinct_tokens: int = 0
    vocab_tokens: int = 0
    counts: str | None = file_field(default=None)  # every token's count (token_counts.parquet), pruned or not


@dataclass(frozen=True)
class Encoded(StageOutput):
    """A corpus mapped to vocabulary ids (lib/word2vec/corpus.py ``EncodedCorpus``)."""

    path: str = file_field()
    n_tokens: int = 0
    n_sentences: int = 0
    raw_tokens: int = 0


@dataclass(frozen=True)
class Trained(StageOutput):
    """A trained model file, and the figures of its training (family-specific, e.g. ``words_per_second``)."""

    path: str = file_field()
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation(StageOutput):
    """Evaluation figures (``metrics``: name -> value) and the tables a person reads (neighbours, retrieval)."""

    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Embeddings(StageOutput):
    """Exported embeddings tables (``tables``: name -> Parquet path); ``main`` is the one indexed and served."""

    tables: dict[str, str] = file_field(default_factory=dict)
    main: str = "main"

    @property
    def path(self) -> str:
        """The Parquet path of the main table."""
        return self.tables[self.main]


@dataclass(frozen=True)
class Index(StageOutput):
    """A FAISS index, its JSON sidecar, and the tuning figures (recall@10 against exact search, build time)."""

    path: str = file_field()
    sidecar: str = file_field()
    recall_at_10: float = 0.0
    build_seconds: float = 0.0
    ntotal: int = 0
    factory: str = ""


@dataclass(frozen=True)
class Mined(StageOutput):
    """Triplets mined from an index over the training set (``mined.parquet``: ``anchor_id, positive_id,
    negative_id, d_ap, d_an, negative_rank``; lib/metric/index_mining.py) and their statistics (``stats``: the
    figures of lib/metric/mining_stats.py ``MiningStats.metrics()`` and the stage's ``seconds``)."""

    path: str = file_field()
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact(StageOutput):
    """One file a stage wrote (the kNN graph Parquet, the embedding-map PNG)."""

    path: str = file_field()


@dataclass(frozen=True)
class Registered(StageOutput):
    """A model version in the MLflow registry and the champion gate's decision.

    ``new_version`` is False when the run registered nothing because a version made of the same artifacts
    already stood (``version`` is that one; ``reason`` says so).
    """

    name: str
    version: int | str
    source: str
    champion: bool
    previous_champion: str | None
    previous_value: float | None
    reason: str
    new_version: bool = True


@dataclass(frozen=True)
class Published(StageOutput):
    """What the publish stages made of one run's embeddings: the index, the kNN graph, the map, the model."""

    embeddings: Embeddings
    index: Index
    graph: Artifact
    map: Artifact
    model: Registered

    def output_files(self) -> list[str]:
        return [p for part in (self.embeddings, self.index, self.graph, self.map) for p in part.output_files()]


@dataclass(frozen=True)
class Fingerprint(StageOutput):
    """The content hash of a flow's input data, and the key of (data, settings) that names its checkpoints."""

    source_hash: str
    key: str


@dataclass(frozen=True)
class InitModel(StageOutput):
    """Files of a registered version fetched into the stage store (a warm start's starting point: ``vectors``,
    ``vocabulary``, ``corpus_files``...; tasks/init_model.py), or a file a run writes for the next one."""

    name: str = ""
    version: str = ""
    files: dict[str, str] = file_field(default_factory=dict)

    @property
    def label(self) -> str:
        """``"NAME vVERSION"``: how runs, logs and summaries name the version (e.g. ``replearn-word2vec v1``)."""
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class Dataset(StageOutput):
    """A flow's training data, loaded and split once into one ``.npz`` (images, labels, captions, splits),
    and its counts (``info``: e.g. images, classes, skipped)."""

    path: str = file_field()
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pseudowords(StageOutput):
    """Pseudo-words for multi-sense evaluation: the merged corpus, its vocabulary and the stored occurrences."""

    dir: str = file_field()
    encoded: str = file_field()
    vocab: str = file_field()
    pairs: list[list[str]] = field(default_factory=list)
