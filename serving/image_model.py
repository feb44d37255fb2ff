"""The registered metric-learning model: an MLflow pyfunc answering "which images are nearest" from its FAISS index."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from replearn.lib.metric.encoders import EncoderConfig, build_encoder, embed
from replearn.lib.metric.images import decode_image
from replearn.lib.store.embeddings_table import read_embeddings, read_vectors
from replearn.lib.store.faiss_index import load_index, search
from replearn.serving.pyfunc_errors import input_errors_as_bad_request, topn_of


class ImageNeighboursModel(mlflow.pyfunc.PythonModel):
    """Nearest images (with labels) to an image file or to an exported row id.

    Input: a DataFrame with ``image`` (a path to any image file; resized and
    grey-scaled like the training data) or ``id`` (a row of the exported
    embeddings table), and optional ``topn`` (default 10). Output columns:
    ``query``, ``rank`` (1-based), ``id``, ``key``, ``label``, ``similarity``
    (cosine in [-1, 1]). A query by id does not return itself.
    """

    def load_context(self, context) -> None:
        keys, ids, vectors, meta = read_vectors(context.artifacts["embeddings"])
        table, _ = read_embeddings(context.artifacts["embeddings"], columns=["label"])
        self.keys, self.ids, self.vectors = keys, ids, vectors
        self.labels = table.column("label").to_pylist()
        self.row_of = {int(i): r for r, i in enumerate(ids)}
        self.index, meta_index = load_index(context.artifacts["index"])
        self.metric = meta_index.get("metric", "cos")
        ck = torch.load(context.artifacts["encoder"], map_location="cpu", weights_only=True)
        self.encoder = build_encoder(EncoderConfig.from_dict(ck["encoder_config"]))
        self.encoder.load_state_dict(ck["encoder"])
        self.encoder.eval()
        self.size = int(ck["encoder_config"]["in_size"])

    def _query(self, rec: dict) -> tuple[np.ndarray, int | None]:
        if rec.get("image") not in (None, "") and not (isinstance(rec.get("image"), float)):
            img = decode_image(str(rec["image"]), self.size)[None, None]
            return embed(self.encoder, img.astype(np.float32))[0], None
        i = int(rec["id"])
        if i not in self.row_of:
            raise ValueError(f"id {i} is not in the exported embeddings (ids {int(self.ids.min())}..{int(self.ids.max())})")
        return self.vectors[self.row_of[i]], i

    @input_errors_as_bad_request
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        rows = []
        for qi, rec in enumerate(model_input.to_dict("records")):
            topn = topn_of(rec, 10)
            q, self_id = self._query(rec)
            D, I = search(self.index, q[None, :].astype(np.float32), topn + 1, self.metric)
            hits = [(int(i), float(d)) for d, i in zip(D[0], I[0]) if int(i) != self_id][:topn]
            for rank, (i, s) in enumerate(hits, 1):
                r = self.row_of[i]
                rows.append({"query": qi, "rank": rank, "id": i, "key": self.keys[r], "label": self.labels[r],
                             "similarity": s})
        return pd.DataFrame(rows, columns=["query", "rank", "id", "key", "label", "similarity"])


SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "image", required=False), ColSpec("long", "id", required=False),
                   ColSpec("long", "topn", required=False)]),
    outputs=Schema([ColSpec("long", "query"), ColSpec("long", "rank"), ColSpec("long", "id"), ColSpec("string", "key"),
                    ColSpec("string", "label"), ColSpec("double", "similarity")]),
)
#: a query MLflow stores beside the signature: the 5 images nearest to indexed image 0
INPUT_EXAMPLE = pd.DataFrame({"id": pd.Series([0], dtype="int64"), "topn": pd.Series([5], dtype="int64")})
