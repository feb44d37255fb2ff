"""What a bad query to a served model says, without MLflow: one message rule for the pyfunc and the CLI's fast path.

An input error (an unknown word or id, a missing field, a bad ``topn``) raised
while an engine answers is re-raised as ``error_type(f"{ExceptionClass}: {message}")``:
:class:`QueryError` (a ``ValueError``) on the CLI's fast path, MLflow's
``BadQueryError`` (HTTP 400) in the registered pyfunc
(:mod:`replearn.serving.pyfunc_errors`). Any other exception is a bug and
propagates unchanged.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from replearn.lib.errors import ReplearnInputError

#: exceptions that mean "this query cannot be answered", not "replearn has a bug"
INPUT_ERRORS = (ReplearnInputError, ValueError, KeyError, TypeError)
#: The most results one query may ask for (``topn``), and the most queries one request may hold.
MAX_TOPN = 1000
MAX_BATCH = 1000


class QueryError(ValueError):
    """A query an engine cannot answer (unknown word or id, missing field); the message names the original class."""


def query_message(exc: BaseException) -> str:
    """``UnknownWordError: 'zzz' is not in the vocabulary`` (a KeyError's key is quoted: ``KeyError: 'word'``)."""
    return f"{type(exc).__name__}: {exc}"


def input_errors_as(error_type: Callable[[str], BaseException]):
    """Decorator factory: :data:`INPUT_ERRORS` raised by the function become ``error_type(query_message(exc))``."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except INPUT_ERRORS as exc:
                raise error_type(query_message(exc)) from exc

        return wrapper

    return decorate


def _missing(value) -> bool:
    """None, NaN, or (when pandas is loaded: the value came from a DataFrame) pandas' NA / NaT."""
    if value is None:
        return True
    if isinstance(value, (str, bytes)):
        return False
    pd = sys.modules.get("pandas")  # a query from a DataFrame: pandas is there already; a plain dict never needs it
    if pd is not None:
        return bool(pd.isna(value))
    return value != value


def topn_of(record: dict, default: int) -> int:
    """The ``topn`` of one query row: ``default`` when absent / null / NaN, else an int in ``1..MAX_TOPN``.

    Raises:
        ValueError: ``topn`` is not a whole number in ``1..MAX_TOPN`` (named with the value given).
    """
    value = record.get("topn")
    if _missing(value):
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = None
    if n is None or n != value or not 1 <= n <= MAX_TOPN:
        raise ValueError(f"topn must be a whole number from 1 to {MAX_TOPN}, got {value!r}")
    return n


def check_batch(n: int) -> None:
    """Refuse a request of more than :data:`MAX_BATCH` queries (HTTP 400 when served).

    Raises:
        ValueError: ``n > MAX_BATCH``, saying to split the request.
    """
    if n > MAX_BATCH:
        raise ValueError(f"{n} queries in one request; at most {MAX_BATCH}: split the request")
