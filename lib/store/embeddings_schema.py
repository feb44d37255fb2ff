"""The embeddings table's schema and its footer metadata (:class:`EmbeddingsMetadata`).

The columns, the layouts and how plain pyarrow / polars / duckdb read a table
are described in :mod:`replearn.lib.store.embeddings_table`; the columns are
validated and built as Arrow by :mod:`replearn.lib.store.embeddings_columns`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pyarrow as pa

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.atomic import _json_default

__all__ = ["FORMAT_VERSION", "METADATA_KEY", "MODALITIES", "EmbeddingsMetadata", "Similarity", "schema"]

METADATA_KEY = b"replearn"
"""Parquet file-level key-value metadata key holding the :class:`EmbeddingsMetadata` JSON."""

FORMAT_VERSION = 1
"""Version of the table layout, stored in the metadata JSON as ``format_version``."""

MODALITIES = ("text", "image")
"""Allowed non-null values of the ``modality`` column."""

Similarity = Literal["ip", "l2", "cos"]
_SIMILARITIES = get_args(Similarity)


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class EmbeddingsMetadata:
    """What a reader needs to know about an embeddings file; stored in the file itself.

    Attributes:
        family: model family that produced the vectors, e.g. ``"word2vec"``,
            ``"multisense"``, ``"contrastive"``, ``"clip"``. Non-empty.
        dim: vector dimension ``D``, an int >= 1. Must equal ``vectors.shape[1]``.
        normalized: ``True`` if every vector has L2 norm 1 (checked on write,
            tolerance 1e-3).
        similarity: the similarity the index uses: ``"ip"`` (inner product,
            higher is closer), ``"l2"`` (squared Euclidean, lower is closer) or
            ``"cos"`` (cosine, in [-1, 1], higher is closer).
        mlflow_run_id: MLflow run that trained the model, or ``None``.
        source_hash: :func:`content_hash` of the training data, or ``None``.
        config: the training config (JSON-serialisable dict; numpy scalars,
            paths and sets are converted, the dict is deep-copied on construction).
        matrix: which weight matrix was exported, e.g. ``"input"``,
            ``"context"``, ``"mean"``; ``None`` when the model has only one.

    Raises:
        EmbeddingsError: on construction, for an invalid field (empty family,
            ``dim < 1``, unknown similarity, non-JSON config, ...).
    """

    family: str
    dim: int
    normalized: bool
    similarity: Similarity
    mlflow_run_id: str | None = None
    source_hash: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    matrix: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.family, str) or not self.family:
            problems.append(f"family must be a non-empty string, got {self.family!r}")
        if isinstance(self.dim, bool) or not isinstance(self.dim, (int, np.integer)) or self.dim < 1:
            problems.append(f"dim must be an int >= 1, got {self.dim!r}")
        if not isinstance(self.normalized, (bool, np.bool_)):
            problems.append(f"normalized must be a bool, got {self.normalized!r}")
        if self.similarity not in _SIMILARITIES:
            problems.append(f"similarity must be one of {_SIMILARITIES}, got {self.similarity!r}")
        for name in ("mlflow_run_id", "source_hash", "matrix"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                problems.append(f"{name} must be a string or None, got {value!r}")
        if not isinstance(self.config, dict):
            problems.append(f"config must be a dict, got {type(self.config).__name__}")
        if problems:
            raise EmbeddingsError("invalid EmbeddingsMetadata: " + "; ".join(problems))
        try:
            config = json.loads(json.dumps(self.config, default=_json_default, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise EmbeddingsError(
                f"invalid EmbeddingsMetadata: config must be JSON-serialisable (no NaN/Inf): {e}"
            ) from e
        object.__setattr__(self, "dim", int(self.dim))
        object.__setattr__(self, "normalized", bool(self.normalized))
        object.__setattr__(self, "config", config)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict (a deep copy), plus ``format_version``."""
        d = dataclasses.asdict(self)
        d["format_version"] = FORMAT_VERSION
        return d

    def to_json(self) -> str:
        """Return the JSON stored in the Parquet footer under key ``replearn``."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbeddingsMetadata:
        """Build from :meth:`to_dict` output; unknown keys (from newer writers) are ignored.

        Raises:
            EmbeddingsError: a required field is missing or invalid, or
                ``format_version`` is newer than this code understands.
        """
        version = d.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise EmbeddingsError(
                f"embeddings metadata has format_version {version!r}; this replearn reads up to "
                f"{FORMAT_VERSION}: upgrade replearn"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ("family", "dim", "normalized", "similarity") if n not in d]
        if missing:
            raise EmbeddingsError(f"embeddings metadata lacks required fields {missing}")
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, text: str | bytes) -> EmbeddingsMetadata:
        """Parse :meth:`to_json` output. Raises EmbeddingsError for invalid JSON or fields."""
        try:
            d = json.loads(text)
        except ValueError as e:
            raise EmbeddingsError(f"embeddings metadata is not valid JSON: {e}") from e
        if not isinstance(d, dict):
            raise EmbeddingsError(f"embeddings metadata must be a JSON object, got {type(d).__name__}")
        return cls.from_dict(d)


def schema(dim: int) -> pa.Schema:
    """Return the pyarrow schema of an embeddings table with ``dim``-dimensional vectors.

    ``id int64 not null, key string not null, vector fixed_size_list<float32>[dim] not null,
    sense int16, modality string, label string``. No file metadata attached.

    Raises:
        EmbeddingsError: ``dim`` is not an int >= 1.
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise EmbeddingsError(f"dim must be an int >= 1, got {dim!r}")
    return pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("key", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), int(dim)), nullable=False),
            pa.field("sense", pa.int16(), nullable=True),
            pa.field("modality", pa.string(), nullable=True),
            pa.field("label", pa.string(), nullable=True),
        ]
    )
