"""Disambiguate a word in context from a registered multi-sense version's model file, without MLflow (or torch).

Each query returns one row per sense of the word with its prior p(z|x), its
posterior p(z|x, context) (Tian et al. 2014, eq. 5), the sense's nearest words,
and a ``note`` saying when the context had no known word so the posterior is
the prior. The engine behind the registered pyfunc
(:mod:`replearn.serving.multisense_model`) and ``replearn disambiguate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from replearn.lib.multisense.model import MultiSenseVectors
from replearn.lib.text.query import query_tokens, query_word
from replearn.serving.query_errors import topn_of

def context_words(text) -> list[str]:
    """The tokens of ``text`` under the corpus's rules (:func:`~replearn.lib.text.query.query_tokens`); [] for
    None or NaN (a missing DataFrame cell)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    return query_tokens(str(text))


class MultiSenseEngine:
    """Posterior over the senses of ``word`` given ``context``, with each sense's neighbours.

    Args:
        model: the trained multi-sense vectors.
    """

    family = "multisense"
    COLUMNS = ("query", "word", "sense", "prior", "posterior", "neighbours", "note")

    def __init__(self, model: MultiSenseVectors):
        self.model = model

    @classmethod
    def load(cls, artifacts: Mapping[str, str | Path], eager: bool = True) -> MultiSenseEngine:
        """From ``model`` (the saved :class:`MultiSenseVectors` folder or file); ``eager``: the engines' common
        interface, nothing here is deferred."""
        return cls(MultiSenseVectors.load(Path(artifacts["model"])))

    def answer(self, records: Iterable[Mapping]) -> list[dict]:
        """Rows ``{"query", "word", "sense", "prior", "posterior", "neighbours" (comma separated), "note"}``.

        A record has ``word``, optional ``context`` (text around it) and optional ``topn`` (neighbours per sense,
        default 8).

        Raises:
            UnknownWordError / KeyError: a word not in the vocabulary, or a record without ``word``.
        """
        rows = []
        for qi, rec in enumerate(records):
            word = query_word(rec["word"])
            topn = topn_of(rec, 8)
            post = self.model.posterior(word, context_words(rec.get("context")))
            for z, nbrs in enumerate(self.model.sense_neighbours(word, topn=topn)):
                rows.append({"query": qi, "word": word, "sense": z, "prior": float(post.prior[z]),
                             "posterior": float(post.probs[z]), "neighbours": ", ".join(w for w, _ in nbrs),
                             "note": post.note})
        return rows
