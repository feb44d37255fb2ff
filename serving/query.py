"""Answer queries with a registered version's engine, without MLflow when the registry cache is current.

What ``replearn search ...`` and ``replearn disambiguate`` call: the version
comes from :func:`replearn.serving.resolve.resolve_version`, the answers from
the family's engine (:mod:`replearn.serving.engines`), with the pyfunc's
messages for bad queries (:mod:`replearn.serving.query_errors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from replearn.serving.engines import engine_class
from replearn.serving.query_errors import QueryError, input_errors_as
from replearn.serving.registered import RegisteredVersion
from replearn.serving.resolve import resolve_version


def open_engine(tracking_uri: str, name: str, family: str, version: str | None = None, alias: str = "champion"):
    """(the loaded engine of ``name@alias`` or version ``version``, its :class:`RegisteredVersion`).

    Raises:
        LookupError: no such model, alias or version, or a version of another family than ``family``.
        EmbeddingsError / OSError: the version's files cannot be read.
    """
    rv = resolve_version(tracking_uri, name, alias, version)
    if rv.family and rv.family != family:
        raise LookupError(f"{name} version {rv.version} is a {rv.family} model, not a {family} one; pass the "
                          f"--model-name of a {family} model")
    return engine_class(family).load(rv.artifacts, eager=False), rv  # one query: load only what it needs


@input_errors_as(QueryError)
def ask(engine, records: Iterable[Mapping]) -> list[dict]:
    """``engine.answer(records)``; an input error (unknown word or id, bad ``topn``) becomes :class:`QueryError`
    (a ValueError) with the message the registered pyfunc gives, e.g. ``UnknownWordError: 'zzz' is ...``."""
    return engine.answer(records)


def query_registered(tracking_uri: str, name: str, family: str, records: Iterable[Mapping],
                     version: str | None = None) -> tuple[list[dict], RegisteredVersion]:
    """The answer rows (the pyfunc's output columns, as dicts) of ``records`` and the version that answered.

    Raises:
        LookupError: see :func:`open_engine`. QueryError: a query the model cannot answer. OSError: an unreadable
        query image.
    """
    engine, rv = open_engine(tracking_uri, name, family, version)
    return ask(engine, records), rv
