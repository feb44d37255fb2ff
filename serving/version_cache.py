"""A small JSON cache beside a SQLite MLflow store: (model, alias or version) -> registered version, valid only while
the store file is unchanged.

``replearn search`` would otherwise import MLflow and open its SQLAlchemy
store (about 2.5 s) to learn which version ``champion`` points at. The cache
file ``<store>.registry-cache.json`` (``<home>/mlflow.db.registry-cache.json``
for the default store) holds the store's identity and, per lookup key, the
:class:`~replearn.serving.registered.RegisteredVersion` found through MLflow.

The identity is ``os.stat`` of the database and of its ``-wal`` / ``-journal``
siblings (device, inode, size, mtime_ns, ctime_ns): any write to the registry
(a new version, an alias moved in the MLflow UI, a version deleted, the file
replaced) changes it, and every entry is ignored. Stale answers are ruled out
by three rules (:func:`remember`): the identity is taken *before* MLflow is
read and must be the same after; an entry is written only when the store had
not been written for :data:`SETTLE_S` seconds when its identity was taken, so
a later write cannot share its timestamps with the cached ones on a
coarse-clock filesystem; and only
versions whose files are the registry's own local folder (not a temporary
download) are kept. A missing, corrupt or foreign cache file is ignored and
replaced; the file is written atomically, and a failed write is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from replearn.lib.store.atomic import atomic_write_json
from replearn.serving.registered import RegisteredVersion

#: the cache file's layout version (an unknown one is ignored)
FORMAT = 1
#: seconds the store must have been left alone before an entry is written (covers 2 s filesystem timestamps)
SETTLE_S = 2.0


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///...`` tracking URI (absolute; relative paths from the working directory).

    None for any other URI (``http://``, ``databricks``, ``file:``), an in-memory database, a URI with query
    parameters, or a file that does not exist (yet).
    """
    if not uri.startswith("sqlite:///") or "?" in uri:
        return None
    path = uri[len("sqlite:///"):]
    if not path or path == ":memory:":
        return None
    db = Path(path) if os.path.isabs(path) else Path.cwd() / path
    return db if db.is_file() else None


def store_identity(db: Path) -> dict | None:
    """``{"path", "files": [[dev, ino, size, mtime_ns, ctime_ns] or None for db, db-wal, db-journal]}``; None when
    the database is gone."""
    files = []
    for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-journal")):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            files.append(None)
            continue
        files.append([st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return {"path": str(db), "files": files} if files[0] is not None else None


def cache_file(db: Path) -> Path:
    """Where the cache of store ``db`` lives: ``<db>.registry-cache.json`` beside it."""
    return db.with_name(db.name + ".registry-cache.json")


def cache_key(name: str, alias: str = "champion", version: str | None = None) -> str:
    """``name/version`` for a version, ``name@alias`` for an alias."""
    return f"{name}/{version}" if version else f"{name}@{alias}"


def _read(db: Path) -> dict:
    """The cache file's content, or {} when missing, unreadable, corrupt or of another format."""
    try:
        data = json.loads(cache_file(db).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    ok = isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("versions"), dict)
    return data if ok else {}


def cached(db: Path, identity: dict, key: str) -> RegisteredVersion | None:
    """The entry for ``key`` when the cache was written for exactly ``identity`` and its files still exist."""
    data = _read(db)
    if data.get("store") != identity or key not in data["versions"]:
        return None
    try:
        rv = RegisteredVersion.from_json(data["versions"][key])
    except (KeyError, TypeError, ValueError):
        return None
    return rv if rv.files_exist() else None


def _local_source(rv: RegisteredVersion) -> bool:
    """True when the version's files are the registry's own folder (a ``file:`` / path source), not a download."""
    parsed = urlparse(rv.source)
    if parsed.scheme not in ("", "file"):
        return False
    try:
        return Path(unquote(parsed.path)).resolve() == Path(rv.folder).resolve()
    except OSError:
        return False


def settled(identity: dict, now_ns: int) -> bool:
    """True when no file of the store was written (mtime or ctime) in the :data:`SETTLE_S` seconds before
    ``now_ns`` (ns since the epoch)."""
    latest = max(max(f[3], f[4]) for f in identity["files"] if f is not None)
    return now_ns - latest >= SETTLE_S * 1e9


def remember(db: Path, identity: dict, taken_ns: int, key: str, rv: RegisteredVersion) -> bool:
    """Add ``key -> rv`` to the cache of ``db`` for ``identity``, the store's identity taken (just after the clock
    read ``taken_ns``, ``time.time_ns()``) before MLflow was asked for ``rv``.

    Nothing is written when the store changed since, when it was not :func:`settled` at ``taken_ns``, or when
    the version's files are not the registry's own local folder. Entries of another identity are dropped.
    Returns True when the entry was written.
    """
    if store_identity(db) != identity or not settled(identity, taken_ns) or not _local_source(rv):
        return False
    data = _read(db)
    versions = data["versions"] if data.get("store") == identity else {}
    versions[key] = rv.to_json()
    try:
        atomic_write_json(cache_file(db), {"format": FORMAT, "store": identity, "versions": versions})
    except OSError:  # a read-only data home: searches still work, through MLflow
        return False
    return True
