"""The registered metric-learning model: an MLflow pyfunc answering "which images are nearest" from its FAISS index.

The answers come from :class:`~replearn.serving.image_engine.ImageNeighboursEngine`.
"""

from __future__ import annotations

import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from replearn.serving.image_engine import ImageNeighboursEngine
from replearn.serving.pyfunc_base import EnginePyfunc


class ImageNeighboursModel(EnginePyfunc):
    """Nearest images (with labels) to an image file or to an exported row id.

    Input: a DataFrame with ``image`` (a path to any image file; resized and
    grey-scaled like the training data) or ``id`` (a row of the exported
    embeddings table), and optional ``topn`` (default 10). Output columns:
    ``query``, ``rank`` (1-based), ``id``, ``key``, ``label``, ``similarity``
    (cosine in [-1, 1]). A query by id does not return itself.
    """

    engine_class = ImageNeighboursEngine


SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "image", required=False), ColSpec("long", "id", required=False),
                   ColSpec("long", "topn", required=False)]),
    outputs=Schema([ColSpec("long", "query"), ColSpec("long", "rank"), ColSpec("long", "id"), ColSpec("string", "key"),
                    ColSpec("string", "label"), ColSpec("double", "similarity")]),
)
#: a query MLflow stores beside the signature: the 5 images nearest to indexed image 0
INPUT_EXAMPLE = pd.DataFrame({"id": pd.Series([0], dtype="int64"), "topn": pd.Series([5], dtype="int64")})
