"""The registered word-vector model: an MLflow pyfunc that answers nearest-neighbour queries from its FAISS index."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from replearn.lib.store.embeddings_table import read_vectors
from replearn.lib.store.faiss_index import load_index, search
from replearn.lib.vectors import KeyedVectors
from replearn.serving.pyfunc_errors import input_errors_as_bad_request, topn_of


def _as_list(value) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [w for w in value.replace(",", " ").split() if w]
    return [str(w) for w in value]


class WordVectorsModel(mlflow.pyfunc.PythonModel):
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

    def load_context(self, context) -> None:
        words, ids, vectors, meta = read_vectors(context.artifacts["embeddings"])
        self.kv = KeyedVectors(words, vectors)
        self.index, self.index_meta = load_index(context.artifacts["index"])
        self.metric = self.index_meta.get("metric", "cos")

    def neighbours(self, positive: list[str], negative: list[str], topn: int = 10) -> list[tuple[str, float]]:
        """Top ``topn`` (word, cosine) for one query, answered by the FAISS index."""
        q, exclude = self.kv.query_vector(positive, negative)
        D, I = search(self.index, q[None, :].astype(np.float32), topn + len(exclude), self.metric)
        skip = set(int(i) for i in exclude)
        hits = [(self.kv.words[int(i)], float(d)) for d, i in zip(D[0], I[0]) if int(i) not in skip]
        return hits[:topn]

    @input_errors_as_bad_request
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        rows = []
        for qi, rec in enumerate(model_input.to_dict("records")):
            topn = topn_of(rec, 10)
            for rank, (w, s) in enumerate(self.neighbours(_as_list(rec.get("positive")),
                                                          _as_list(rec.get("negative")), topn), 1):
                rows.append({"query": qi, "rank": rank, "word": w, "similarity": s})
        return pd.DataFrame(rows, columns=["query", "rank", "word", "similarity"])


SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "positive"), ColSpec("string", "negative", required=False),
                   ColSpec("long", "topn", required=False)]),
    outputs=Schema([ColSpec("long", "query"), ColSpec("long", "rank"), ColSpec("string", "word"),
                    ColSpec("double", "similarity")]),
)
#: a query MLflow stores beside the signature (the run page and ``mlflow models serve`` show it): the 5 words
#: nearest to "king"
INPUT_EXAMPLE = pd.DataFrame({"positive": ["king"], "topn": pd.Series([5], dtype="int64")})
