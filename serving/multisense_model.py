"""The registered multi-sense model: an MLflow pyfunc that disambiguates a word in context.

Input rows: ``word`` and optional ``context`` (text around it) and ``topn``.
Output: one row per sense of the word with its prior p(z|x), its posterior
p(z|x, context) (Tian et al. 2014, eq. 5), the sense's nearest words, and a
``note`` saying when the context had no known word so the posterior is the prior.
"""

from __future__ import annotations

import re
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from replearn.lib.multisense.model import MultiSenseVectors
from replearn.serving.pyfunc_errors import input_errors_as_bad_request, topn_of

_WORD = re.compile(r"[^\W\d_]+")


def context_words(text) -> list[str]:
    """Lower-cased alphabetic words of ``text`` (the training tokenizer's rule for the context)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    return [w.lower() for w in _WORD.findall(str(text))]


class MultiSenseModel(mlflow.pyfunc.PythonModel):
    """Posterior over the senses of ``word`` given ``context``, with each sense's neighbours."""

    def load_context(self, context) -> None:
        self.model = MultiSenseVectors.load(Path(context.artifacts["model"]))

    @input_errors_as_bad_request
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        rows = []
        for qi, rec in enumerate(model_input.to_dict("records")):
            word = str(rec["word"]).lower()
            topn = topn_of(rec, 8)
            post = self.model.posterior(word, context_words(rec.get("context")))
            for z, nbrs in enumerate(self.model.sense_neighbours(word, topn=topn)):
                rows.append({"query": qi, "word": word, "sense": z, "prior": float(post.prior[z]),
                             "posterior": float(post.probs[z]), "neighbours": ", ".join(w for w, _ in nbrs),
                             "note": post.note})
        return pd.DataFrame(rows, columns=["query", "word", "sense", "prior", "posterior", "neighbours", "note"])


SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "word"), ColSpec("string", "context", required=False),
                   ColSpec("long", "topn", required=False)]),
    outputs=Schema([ColSpec("long", "query"), ColSpec("string", "word"), ColSpec("long", "sense"),
                    ColSpec("double", "prior"), ColSpec("double", "posterior"), ColSpec("string", "neighbours"),
                    ColSpec("string", "note")]),
)
#: a query MLflow stores beside the signature: the senses of "bank" and the one "river water" selects
INPUT_EXAMPLE = pd.DataFrame({"word": ["bank"], "context": ["river water"], "topn": pd.Series([5], dtype="int64")})
