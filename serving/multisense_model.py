"""The registered multi-sense model: an MLflow pyfunc that disambiguates a word in context.

Input rows: ``word`` and optional ``context`` (text around it) and ``topn``.
Output: one row per sense of the word with its prior p(z|x), its posterior
p(z|x, context) (Tian et al. 2014, eq. 5), the sense's nearest words, and a
``note`` saying when the context had no known word so the posterior is the prior.
The answers come from :class:`~replearn.serving.multisense_engine.MultiSenseEngine`.
"""

from __future__ import annotations

import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from replearn.serving.multisense_engine import MultiSenseEngine, context_words  # noqa: F401  (context_words: re-export)
from replearn.serving.pyfunc_base import EnginePyfunc


class MultiSenseModel(EnginePyfunc):
    """Posterior over the senses of ``word`` given ``context``, with each sense's neighbours."""

    engine_class = MultiSenseEngine


SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "word"), ColSpec("string", "context", required=False),
                   ColSpec("long", "topn", required=False)]),
    outputs=Schema([ColSpec("long", "query"), ColSpec("string", "word"), ColSpec("long", "sense"),
                    ColSpec("double", "prior"), ColSpec("double", "posterior"), ColSpec("string", "neighbours"),
                    ColSpec("string", "note")]),
)
#: a query MLflow stores beside the signature: the senses of "bank" and the one "river water" selects
INPUT_EXAMPLE = pd.DataFrame({"word": ["bank"], "context": ["river water"], "topn": pd.Series([5], dtype="int64")})
