"""The registered two-tower model: an MLflow pyfunc for cross-modal search from its FAISS index.

A text query returns the nearest images; an image query (a file path, or the
id of an exported image) returns the nearest captions. One index holds both
modalities (images at the low ids, captions after them); each search is
restricted to the other modality's id range by a FAISS ID selector.
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from replearn.lib.clip.model import load_model
from replearn.lib.metric.images import decode_image
from replearn.lib.store.embeddings_table import read_embeddings, read_vectors
from replearn.lib.store.faiss_index import load_index
from replearn.lib.store.filtered_search import search_id_range
from replearn.serving.pyfunc_errors import input_errors_as_bad_request, topn_of


def _given(v) -> bool:
    return v is not None and v != "" and not (isinstance(v, float) and np.isnan(v))


class ClipSearchModel(mlflow.pyfunc.PythonModel):
    """Cross-modal nearest neighbours.

    Input: a DataFrame with one of ``text`` (a sentence), ``image`` (a path to
    any image file) or ``id`` (an exported image's row id) per row, and optional
    ``topn`` (default 10). Output columns: ``query``, ``rank`` (1-based),
    ``id``, ``modality`` (of the result), ``key`` (image source or caption),
    ``label`` (class of an image where known), ``similarity`` (cosine in [-1, 1]).
    """

    def load_context(self, context) -> None:
        keys, ids, vectors, _ = read_vectors(context.artifacts["embeddings"])
        table, _ = read_embeddings(context.artifacts["embeddings"], columns=["modality", "label"])
        self.keys, self.ids, self.vectors = keys, ids, vectors
        self.modality = table.column("modality").to_pylist()
        self.labels = table.column("label").to_pylist()
        self.row_of = {int(i): r for r, i in enumerate(ids)}
        img = [int(i) for i, m in zip(ids, self.modality) if m == "image"]
        txt = [int(i) for i, m in zip(ids, self.modality) if m == "text"]
        self.ranges = {"image": (min(img), max(img) + 1), "text": (min(txt), max(txt) + 1)}
        self.index, meta = load_index(context.artifacts["index"])
        self.metric = meta.get("metric", "cos")
        self.model = load_model(context.artifacts["model"], device="cpu")
        self.size = int(self.model.config.image.in_size)

    def _query(self, rec: dict) -> tuple[np.ndarray, str]:
        """(the query's unit vector (D,), the modality to return)."""
        if _given(rec.get("text")):
            return self.model.embed_texts([str(rec["text"])], where="the query")[0], "image"
        if _given(rec.get("image")):
            img = decode_image(str(rec["image"]), self.size)[None, None].astype(np.float32)
            return self.model.embed_images(img)[0], "text"
        if _given(rec.get("id")):
            i = int(rec["id"])
            if i not in self.row_of:
                raise ValueError(f"id {i} is not in the exported embeddings")
            r = self.row_of[i]
            return self.vectors[r], ("text" if self.modality[r] == "image" else "image")
        raise ValueError("each query needs one of 'text', 'image' (a path) or 'id'")

    @input_errors_as_bad_request
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        rows = []
        for qi, rec in enumerate(model_input.to_dict("records")):
            topn = topn_of(rec, 10)
            q, want = self._query(rec)
            lo, hi = self.ranges[want]
            D, I = search_id_range(self.index, q[None, :].astype(np.float32), topn, self.metric, lo, hi)
            for rank, (i, s) in enumerate(zip(I[0], D[0]), 1):
                r = self.row_of[int(i)]
                rows.append({"query": qi, "rank": rank, "id": int(i), "modality": self.modality[r],
                             "key": self.keys[r], "label": self.labels[r], "similarity": float(s)})
        return pd.DataFrame(rows, columns=["query", "rank", "id", "modality", "key", "label", "similarity"])


SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "text", required=False), ColSpec("string", "image", required=False),
                   ColSpec("long", "id", required=False), ColSpec("long", "topn", required=False)]),
    outputs=Schema([ColSpec("long", "query"), ColSpec("long", "rank"), ColSpec("long", "id"),
                    ColSpec("string", "modality"), ColSpec("string", "key"), ColSpec("string", "label"),
                    ColSpec("double", "similarity")]),
)
#: a query MLflow stores beside the signature: the 5 items nearest to a text
INPUT_EXAMPLE = pd.DataFrame({"text": ["a photo of a dog"], "topn": pd.Series([5], dtype="int64")})
