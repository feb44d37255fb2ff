"""Which version a query uses: ``name@champion`` (or a given version) resolved to local files, from the registry
cache when the store is unchanged (no MLflow import), through MLflow otherwise.

Set ``REPLEARN_REGISTRY_CACHE=0`` to always ask MLflow (the benchmark's "before").
"""

from __future__ import annotations

import os
import time

from replearn.serving import version_cache
from replearn.serving.registered import RegisteredVersion

#: environment variable: ``0`` / ``off`` / ``false`` / ``no`` bypasses the cache
CACHE_ENV = "REPLEARN_REGISTRY_CACHE"


def cache_enabled(environ=os.environ) -> bool:
    """False when ``$REPLEARN_REGISTRY_CACHE`` says ``0``, ``off``, ``false`` or ``no``."""
    return environ.get(CACHE_ENV, "1").strip().lower() not in ("0", "off", "false", "no")


def _from_registry(tracking_uri: str, name: str, alias: str, version: str | None, hint: bool) -> RegisteredVersion:
    from replearn.serving.registry import registered_version  # imports MLflow: only on this path

    return registered_version(tracking_uri, name, alias, version, hint=hint)


def resolve_version(tracking_uri: str, name: str, alias: str = "champion", version: str | None = None, *,
                    hint: bool = True) -> RegisteredVersion:
    """``name@alias`` (or version ``version``) as local files, never staler than the store.

    A ``sqlite:///`` store that has not changed since the cache entry was
    written answers from the cache (:mod:`replearn.serving.version_cache`);
    any other store, a changed one, a miss or ``REPLEARN_REGISTRY_CACHE=0`` asks
    MLflow (:func:`replearn.serving.registry.registered_version`) and, for a
    SQLite store, rewrites the entry.

    Raises:
        LookupError: no such registered model, alias or version (``hint``: the message says how to train one).
    """
    db = version_cache.sqlite_file(tracking_uri) if cache_enabled() else None
    taken_ns = time.time_ns()  # before the stat: a write after it is later than this
    before = version_cache.store_identity(db) if db is not None else None
    key = version_cache.cache_key(name, alias, version)
    if before is not None:
        hit = version_cache.cached(db, before, key)
        if hit is not None:
            return hit
    rv = _from_registry(tracking_uri, name, alias, version, hint)
    if before is not None:
        version_cache.remember(db, before, taken_ns, key, rv)
    return rv
