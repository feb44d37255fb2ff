"""Bad queries to a served replearn model get HTTP 400 with replearn's message, not a stack trace.

MLflow's scoring server (``mlflow models serve`` / ``replearn serve``) turns any
exception from ``predict`` into a response that carries the Python traceback;
an :class:`mlflow.exceptions.MlflowException` is passed through with only its
message and error code. Input errors (an unknown word or id, a missing field)
are therefore re-raised as :class:`BadQueryError`, an ``MlflowException``
(INVALID_PARAMETER_VALUE -> HTTP 400) that is also a ``ValueError``, so callers
in Python still catch it as bad input. Any other exception is a bug and keeps
MLflow's traceback. The message rule (and ``topn_of``) live in the MLflow-free
:mod:`replearn.serving.query_errors`, shared with the CLI's fast path.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from replearn.serving.query_errors import INPUT_ERRORS, input_errors_as, topn_of

__all__ = ["INPUT_ERRORS", "BadQueryError", "input_errors_as_bad_request", "topn_of"]


class BadQueryError(MlflowException, ValueError):
    """A query a served model cannot answer (unknown word or id, missing field): HTTP 400 with this message."""

    def __init__(self, message: str):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


#: Decorate a PythonModel ``predict``: input errors become :class:`BadQueryError` (HTTP 400, no traceback), with the
#: original message prefixed by the exception's class name, e.g. ``UnknownWordError: 'zzz' is not in the vocabulary``.
input_errors_as_bad_request = input_errors_as(BadQueryError)
