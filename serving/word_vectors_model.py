"""The registered word-vector model: an MLflow pyfunc that answers nearest-neighbour queries from its FAISS index.

The answers come from :class:`~replearn.serving.word_vectors_engine.WordVectorsEngine`.
"""

from __future__ import annotations

import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from replearn.serving.pyfunc_base import EnginePyfunc
from replearn.serving.word_vectors_engine import WordVectorsEngine


class WordVectorsModel(EnginePyfunc):
    """Word -> neighbours, from the exported embeddings table and its FAISS index.

    Input: a DataFrame with a ``positive`` column (a word, a space/comma separated
    string, or a list of words), optional ``negative`` (same forms) and optional
    ``topn`` (int, default 10). Each row is one query with gensim 4
    ``most_similar`` semantics: the normalised mean of the unit vectors of the
    positive words minus the negative ones, cosine similarity, input words
    excluded.

    Output: a DataFrame with columns ``query`` (row number), ``rank`` (1-based),
    ``word``, ``similarity`` (cosine in [-1, 1]).
    """

    engine_class = WordVectorsEngine


SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "positive"), ColSpec("string", "negative", required=False),
                   ColSpec("long", "topn", required=False)]),
    outputs=Schema([ColSpec("long", "query"), ColSpec("long", "rank"), ColSpec("string", "word"),
                    ColSpec("double", "similarity")]),
)
#: a query MLflow stores beside the signature (the run page and ``mlflow models serve`` show it): the 5 words
#: nearest to "king"
INPUT_EXAMPLE = pd.DataFrame({"positive": ["king"], "topn": pd.Series([5], dtype="int64")})
