"""The MLflow pyfunc around an engine: MLflow loads the engine from the model's artifacts and calls it per DataFrame.

Every registered replearn model is a thin :class:`EnginePyfunc` subclass
(logged as models-from-code by :mod:`replearn.tasks.register`); the engine
classes (``serving/*_engine.py``) hold the loading and the answers and need no
MLflow, so the CLI's ``replearn search`` uses them directly.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from replearn.serving.pyfunc_errors import input_errors_as_bad_request
from replearn.serving.query_errors import check_batch


class EnginePyfunc(mlflow.pyfunc.PythonModel):
    """A pyfunc whose ``predict`` is ``engine_class.answer`` on the input rows; input errors are HTTP 400.

    Subclasses set ``engine_class``: a class with ``load(artifacts)`` (artifact
    name -> local path), ``answer(records) -> list[dict]`` and ``COLUMNS``.
    """

    engine_class: type

    def load_context(self, context) -> None:
        self.engine = self.engine_class.load(context.artifacts)

    @input_errors_as_bad_request
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        check_batch(len(model_input))  # at most MAX_BATCH queries a request: a clear 400, not a 504 minutes later
        rows = self.engine.answer(model_input.to_dict("records"))
        return pd.DataFrame(rows, columns=list(self.engine_class.COLUMNS))
