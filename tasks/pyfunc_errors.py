"""Bad queries to a served replearn model get HTTP 400 with replearn's message, not a stack trace.

MLflow's scoring server (``mlflow models serve`` / ``replearn serve``) turns any
exception from ``predict`` into a response that carries the Python traceback;
an :class:`mlflow.exceptions.MlflowException` is passed through with only its
message and error code. Input errors (an unknown word or id, a missing field)
are therefore re-raised as ``MlflowException(INVALID_PARAMETER_VALUE)`` ->
HTTP 400. Any other exception is a bug and keeps MLflow's traceback.
"""

from __future__ import annotations

import functools

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from replearn.lib.errors import ReplearnInputError

INPUT_ERRORS = (ReplearnInputError, ValueError, KeyError, TypeError)


def input_errors_as_bad_request(predict):
    """Decorate a PythonModel ``predict``: input errors become MlflowException(INVALID_PARAMETER_VALUE).

    The message is the original one (a KeyError's key is quoted), prefixed with
    the exception's class name, e.g. ``UnknownWordError: 'zzz' is not in the vocabulary``.
    """

    @functools.wraps(predict)
    def wrapper(*args, **kwargs):
        try:
            return predict(*args, **kwargs)
        except INPUT_ERRORS as exc:
            raise MlflowException(f"{type(exc).__name__}: {exc}", error_code=INVALID_PARAMETER_VALUE) from exc

    return wrapper
