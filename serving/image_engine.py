"""Nearest images (with labels) from a registered metric-learning version's files, without MLflow.

The engine behind the registered pyfunc (:mod:`replearn.serving.image_model`)
and ``replearn search metric``; it needs torch for the encoder, which a query by id does not use (see ``eager``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from replearn.lib.metric.images import decode_image
from replearn.lib.store.embeddings_table import read_embeddings, read_vectors
from replearn.lib.store.faiss_index import load_index, search_widening
from replearn.serving.query_errors import topn_of


class ImageNeighboursEngine:
    """Nearest exported images to an image file or to an exported row id.

    A query record has ``image`` (a path to any image file; resized and
    grey-scaled like the training data) or ``id`` (a row of the exported
    embeddings table), and optional ``topn`` (default 10). A query by id does
    not return itself. Similarity is cosine in [-1, 1].
    """

    family = "metric"
    COLUMNS = ("query", "rank", "id", "key", "label", "similarity")

    @classmethod
    def load(cls, artifacts: Mapping[str, str | Path], eager: bool = True) -> ImageNeighboursEngine:
        """From ``embeddings`` (Parquet with labels), ``index`` (FAISS) and ``encoder`` (torch file).

        Args:
            eager: load the encoder now (a served model); False defers it (and the torch import) to the first
                image query, for a one-shot query by id.

        Raises:
            EmbeddingsError / OSError: a missing or unreadable file.
        """
        self = cls()
        self.encoder_file = artifacts["encoder"]
        self.encoder = None
        keys, ids, vectors, _ = read_vectors(artifacts["embeddings"])
        table, _ = read_embeddings(artifacts["embeddings"], columns=["label"])
        self.keys, self.ids, self.vectors = keys, ids, vectors
        self.labels = table.column("label").to_pylist()
        self.row_of = {int(i): r for r, i in enumerate(ids)}
        self.index, meta_index = load_index(artifacts["index"])
        self.metric = meta_index.get("metric", "cos")
        if eager:
            self._load_encoder()
        return self

    def _load_encoder(self) -> None:
        """The encoder (eval mode, CPU) and its input side in pixels, from the encoder file."""
        import torch

        from replearn.lib.metric.encoders import EncoderConfig, build_encoder

        ck = torch.load(self.encoder_file, map_location="cpu", weights_only=True)
        encoder = build_encoder(EncoderConfig.from_dict(ck["encoder_config"]))
        encoder.load_state_dict(ck["encoder"])
        encoder.eval()
        self.encoder, self.size = encoder, int(ck["encoder_config"]["in_size"])

    def _query(self, rec: Mapping) -> tuple[np.ndarray, int | None]:
        """(the query vector (D,), the id to leave out of the results or None)."""
        if rec.get("image") not in (None, "") and not (isinstance(rec.get("image"), float)):
            from replearn.lib.metric.encoders import embed

            if self.encoder is None:
                self._load_encoder()
            img = decode_image(str(rec["image"]), self.size)[None, None]
            return embed(self.encoder, img.astype(np.float32))[0], None
        i = int(rec["id"])
        if i not in self.row_of:
            raise ValueError(f"id {i} is not in the exported embeddings (ids {int(self.ids.min())}..{int(self.ids.max())})")
        return self.vectors[self.row_of[i]], i

    def answer(self, records: Iterable[Mapping]) -> list[dict]:
        """Rows ``{"query", "rank" (1-based), "id", "key", "label", "similarity"}`` for each query record.

        Raises:
            ValueError / KeyError: an unknown id, or a record with neither ``image`` nor ``id``.
            OSError: an image file that cannot be read.
        """
        rows = []
        for qi, rec in enumerate(records):
            topn = topn_of(rec, 10)
            q, self_id = self._query(rec)
            D, I = search_widening(self.index, q[None, :].astype(np.float32), topn + 1, self.metric)
            hits = [(int(i), float(d)) for d, i in zip(D[0], I[0]) if int(i) != self_id][:topn]
            for rank, (i, s) in enumerate(hits, 1):
                r = self.row_of[i]
                rows.append({"query": qi, "rank": rank, "id": i, "key": self.keys[r], "label": self.labels[r],
                             "similarity": s})
        return rows
