"""Cross-modal search from a registered two-tower version's files (embeddings, FAISS index, model), without MLflow.

A text query returns the nearest images; an image query (a file path, or the
id of an exported image) returns the nearest captions. One index holds both
modalities (images at the low ids, captions after them); each search is
restricted to the other modality's id range by a FAISS ID selector. The engine
behind the registered pyfunc (:mod:`replearn.serving.clip_model`) and
``replearn search clip``; it needs torch for the towers, which are loaded on the first text or image query (a
query by id needs only the table and the index).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from replearn.lib.metric.images import decode_image
from replearn.lib.store.embeddings_table import read_embeddings, read_vectors
from replearn.lib.store.faiss_index import load_index
from replearn.lib.store.filtered_search import search_id_range
from replearn.serving.query_errors import topn_of


def _given(v) -> bool:
    return v is not None and v != "" and not (isinstance(v, float) and np.isnan(v))


class ClipSearchEngine:
    """Cross-modal nearest neighbours.

    A query record has one of ``text`` (a sentence), ``image`` (a path to any
    image file) or ``id`` (an exported image's row id), and optional ``topn``
    (default 10). Similarity is cosine in [-1, 1].
    """

    family = "clip"
    COLUMNS = ("query", "rank", "id", "modality", "key", "label", "similarity")

    @classmethod
    def load(cls, artifacts: Mapping[str, str | Path], eager: bool = True) -> ClipSearchEngine:
        """From ``embeddings`` (Parquet with modality and label), ``index`` (FAISS) and ``model`` (checkpoint).

        Args:
            eager: load the two towers now (a served model); False defers them (and the torch import) to the
                first text or image query, for a one-shot query by id.

        Raises:
            EmbeddingsError / ReplearnInputError / OSError: a missing or unreadable file.
        """
        self = cls()
        self.model_file, self._model = artifacts["model"], None
        keys, ids, vectors, _ = read_vectors(artifacts["embeddings"])
        table, _ = read_embeddings(artifacts["embeddings"], columns=["modality", "label"])
        self.keys, self.ids, self.vectors = keys, ids, vectors
        self.modality = table.column("modality").to_pylist()
        self.labels = table.column("label").to_pylist()
        self.row_of = {int(i): r for r, i in enumerate(ids)}
        img = [int(i) for i, m in zip(ids, self.modality) if m == "image"]
        txt = [int(i) for i, m in zip(ids, self.modality) if m == "text"]
        self.ranges = {"image": (min(img), max(img) + 1), "text": (min(txt), max(txt) + 1)}
        self.index, meta = load_index(artifacts["index"])
        self.metric = meta.get("metric", "cos")
        if eager:
            self.model  # noqa: B018  (loads it)
        return self

    @property
    def model(self):
        """The two towers (eval mode, CPU), loaded on first use."""
        if self._model is None:
            from replearn.lib.clip.model import load_model

            self._model = load_model(self.model_file, device="cpu")
        return self._model

    @property
    def size(self) -> int:
        """Side of the square images the image tower takes, pixels."""
        return int(self.model.config.image.in_size)

    def _query(self, rec: Mapping) -> tuple[np.ndarray, str]:
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

    def answer(self, records: Iterable[Mapping]) -> list[dict]:
        """Rows ``{"query", "rank" (1-based), "id", "modality" (of the result), "key" (image source or caption),
        "label" (class of an image where known), "similarity"}`` for each query record.

        Raises:
            ValueError / CaptionError: an unknown id, an empty query, a caption with no known token.
            OSError: an image file that cannot be read.
        """
        rows = []
        for qi, rec in enumerate(records):
            topn = topn_of(rec, 10)
            q, want = self._query(rec)
            lo, hi = self.ranges[want]
            D, I = search_id_range(self.index, q[None, :].astype(np.float32), topn, self.metric, lo, hi)
            for rank, (i, s) in enumerate(zip(I[0], D[0]), 1):
                r = self.row_of[int(i)]
                rows.append({"query": qi, "rank": rank, "id": int(i), "modality": self.modality[r],
                             "key": self.keys[r], "label": self.labels[r], "similarity": float(s)})
        return rows
