"""Word -> neighbours from a registered version's files (embeddings table + FAISS index), without MLflow.

The engine behind the registered word-vector pyfunc
(:mod:`replearn.serving.word_vectors_model`) and the CLI's ``replearn search word2vec``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from replearn.lib.store.embeddings_table import read_vectors
from replearn.lib.store.faiss_index import load_index, search_widening
from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.query import query_word, tokenizer_of
from replearn.lib.vectors import KeyedVectors
from replearn.serving.query_errors import topn_of


def _as_list(value) -> list[str]:
    """Words of a query field: None / NaN -> [], ``"a b,c"`` -> ``["a", "b", "c"]``, a list -> its items."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [w for w in value.replace(",", " ").split() if w]
    return [str(w) for w in value]


class WordVectorsEngine:
    """Nearest words with gensim 4 ``most_similar`` semantics, answered by the FAISS index.

    A query is the normalised mean of the unit vectors of the positive words
    minus the negative ones; similarity is cosine in [-1, 1]; input words are
    excluded from the results.

    Args:
        kv: the words and their vectors (V words, (V, D) float32).
        index: the FAISS index over the same rows (row i = word i).
        metric: the similarity the index was built for (``cos``, ``ip``, ``l2``).
    """

    family = "word2vec"
    #: the columns of each answer row (and of the pyfunc's output DataFrame)
    COLUMNS = ("query", "rank", "word", "similarity")

    def __init__(self, kv: KeyedVectors, index, metric: str = "cos", tokenizer: TokenizerConfig = TokenizerConfig()):
        self.kv, self.index, self.metric, self.tokenizer = kv, index, metric, tokenizer

    @classmethod
    def load(cls, artifacts: Mapping[str, str | Path], eager: bool = True) -> WordVectorsEngine:
        """From the files of a registered version: ``embeddings`` (Parquet) and ``index`` (FAISS).

        ``eager`` is accepted for the engines' common interface; nothing here is deferred.

        Raises:
            EmbeddingsError / OSError: a missing or unreadable file.
        """
        words, _ids, vectors, meta = read_vectors(artifacts["embeddings"])
        index, index_meta = load_index(artifacts["index"])
        return cls(KeyedVectors(words, vectors), index, index_meta.get("metric", "cos"),
                   tokenizer_of(meta.config.get("tokenizer")))

    def neighbours(self, positive: list[str], negative: list[str], topn: int = 10) -> list[tuple[str, float]]:
        """Top ``topn`` (word, cosine) for one query; the words go through the corpus's normalisation first
        (:func:`~replearn.lib.text.query.query_word`: ``ČESKÁ`` finds ``česká``).

        Raises:
            VocabularyError (a ReplearnInputError): a word not in the vocabulary, or no word at all.
        """
        rows = self.answer([{"positive": list(positive), "negative": list(negative), "topn": topn}])
        return [(r["word"], r["similarity"]) for r in rows]

    def answer(self, records: Iterable[Mapping]) -> list[dict]:
        """One row per neighbour of each query record.

        Args:
            records: dicts with ``positive`` (a word, a space/comma separated
                string, or a list of words), optional ``negative`` (same forms)
                and optional ``topn`` (int >= 1, default 10).

        Returns:
            rows ``{"query": record number, "rank": 1-based, "word", "similarity": cosine}``.
        """
        queries = [(_as_list(rec.get("positive")), _as_list(rec.get("negative")), topn_of(rec, 10)) for rec in records]
        if not queries:
            return []
        built = [self.kv.query_vector([query_word(w, self.tokenizer) for w in pos],
                                      [query_word(w, self.tokenizer) for w in neg]) for pos, neg, _ in queries]
        k = max(topn + len(exclude) for (_, _, topn), (_, exclude) in zip(queries, built))
        # one FAISS search for the whole batch (a request of 1,000 queries answers in well under a second)
        D, I = search_widening(self.index, np.stack([q for q, _ in built]).astype(np.float32), k, self.metric)
        rows = []
        for qi, ((_, _, topn), (_, exclude)) in enumerate(zip(queries, built)):
            skip = set(int(i) for i in exclude)
            hits = [(self.kv.words[int(i)], float(d)) for d, i in zip(D[qi], I[qi])
                    if int(i) >= 0 and int(i) not in skip]
            rows += [{"query": qi, "rank": rank, "word": w, "similarity": sim}
                     for rank, (w, sim) in enumerate(hits[:topn], 1)]
        return rows
