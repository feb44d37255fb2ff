"""The registered two-tower model: an MLflow pyfunc for cross-modal search from its FAISS index.

A text query returns the nearest images; an image query (a file path, or the
id of an exported image) returns the nearest captions. The answers come from
:class:`~replearn.serving.clip_engine.ClipSearchEngine`.
"""

from __future__ import annotations

import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from replearn.serving.clip_engine import ClipSearchEngine
from replearn.serving.pyfunc_base import EnginePyfunc


class ClipSearchModel(EnginePyfunc):
    """Cross-modal nearest neighbours.

    Input: a DataFrame with one of ``text`` (a sentence), ``image`` (a path to
    any image file) or ``id`` (an exported image's row id) per row, and optional
    ``topn`` (default 10). Output columns: ``query``, ``rank`` (1-based),
    ``id``, ``modality`` (of the result), ``key`` (image source or caption),
    ``label`` (class of an image where known), ``similarity`` (cosine in [-1, 1]).
    """

    engine_class = ClipSearchEngine


SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "text", required=False), ColSpec("string", "image", required=False),
                   ColSpec("long", "id", required=False), ColSpec("long", "topn", required=False)]),
    outputs=Schema([ColSpec("long", "query"), ColSpec("long", "rank"), ColSpec("long", "id"),
                    ColSpec("string", "modality"), ColSpec("string", "key"), ColSpec("string", "label"),
                    ColSpec("double", "similarity")]),
)
#: a query MLflow stores beside the signature: the 5 items nearest to a text
INPUT_EXAMPLE = pd.DataFrame({"text": ["a photo of a dog"], "topn": pd.Series([5], dtype="int64")})
