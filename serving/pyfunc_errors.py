"""Bad queries to a served replearn model get HTTP 400 with replearn's message, not a stack trace.

MLflow's scoring server (``mlflow models serve`` / ``replearn serve``) turns any
exception from ``predict`` into a response that carries the Python traceback;
an :class:`mlflow.exceptions.MlflowException` is passed through with only its
message and error code. Input errors (an unknown word or id, a missing field)
are therefore re-raised as :class:`BadQueryError`, an ``MlflowException``
(INVALID_PARAMETER_VALUE -> HTTP 400) that is also a ``ValueError``, so callers
in Python (the CLI's search and disambiguate commands) still catch it as bad
input. Any other exception is a bug and keeps MLflow's traceback.
"""

from __future__ import annotations

import functools

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from replearn.lib.errors import ReplearnInputError

INPUT_ERRORS = (ReplearnInputError, ValueError, KeyError, TypeError)


class BadQueryError(MlflowException, ValueError):
    """A query a served model cannot answer (unknown word or id, missing field): HTTP 400 with this message."""

    def __init__(self, message: str):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


def input_errors_as_bad_request(predict):
    """Decorate a PythonModel ``predict``: input errors become :class:`BadQueryError` (HTTP 400, no traceback).

    The message is the original one (a KeyError's key is quoted), prefixed with
    the exception's class name, e.g. ``UnknownWordError: 'zzz' is not in the vocabulary``.
    """

    @functools.wraps(predict)
    def wrapper(*args, **kwargs):
        try:
            return predict(*args, **kwargs)
        except INPUT_ERRORS as exc:
            raise BadQueryError(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


def topn_of(record: dict, default: int) -> int:
    """The ``topn`` of one query row: ``default`` when absent / null / NaN, else an int >= 1.

    Raises:
        ValueError: ``topn`` is not a whole number >= 1 (named with the value given).
    """
    value = record.get("topn")
    if value is None or (not isinstance(value, (str, bytes)) and bool(pd.isna(value))):
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = None
    if n is None or n != value or n < 1:
        raise ValueError(f"topn must be a whole number >= 1, got {value!r}")
    return n
