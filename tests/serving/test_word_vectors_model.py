"""The registered pyfunc answers nearest-neighbour queries from its FAISS index like gensim's most_similar."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from gensim.models import KeyedVectors as GensimKV

from replearn.lib.store.embeddings_table import EmbeddingsMetadata, write_embeddings
from replearn.lib.store.faiss_index import build_index, save_index
from replearn.serving.word_vectors_model import WordVectorsModel


def test_predict_equals_gensim_most_similar(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    emb = write_embeddings(tmp_path / "e.parquet", words, vectors,
                           EmbeddingsMetadata(family="word2vec", dim=16, normalized=False, similarity="cos"))
    idx = save_index(build_index(vectors, "cos"), tmp_path / "index.faiss", metric="cos", factory="Flat")
    model = WordVectorsModel()
    model.load_context(SimpleNamespace(artifacts={"embeddings": str(emb), "index": str(idx)}))
    gkv = GensimKV(16)
    gkv.add_vectors(words, vectors)
    queries = [(["w1"], []), (["w5", "w9"], ["w2"]), ("w3 w4", "w7"), (["w10"], None)]
    out = model.predict(None, pd.DataFrame([{"positive": p, "negative": n, "topn": 7} for p, n in queries]))
    for qi, (p, n) in enumerate(queries):
        pos = p.split() if isinstance(p, str) else p
        neg = n.split() if isinstance(n, str) else (n or [])
        want = gkv.most_similar(positive=pos, negative=neg, topn=7)
        got = out[out["query"] == qi]
        assert list(got["word"]) == [w for w, _ in want]
        np.testing.assert_allclose(got["similarity"], [s for _, s in want], atol=1e-5)
        assert list(got["rank"]) == list(range(1, 8))
