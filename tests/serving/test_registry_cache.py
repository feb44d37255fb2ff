"""`replearn search` resolves the champion from a JSON cache beside the SQLite store, never staler than the store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from replearn.infra.tracking import client, experiment_id, tracking_uri
from replearn.lib.store.embeddings_table import EmbeddingsMetadata, write_embeddings
from replearn.lib.store.faiss_index import build_index, save_index
from replearn.serving import resolve, version_cache
from replearn.serving.query import query_registered
from replearn.serving.registry import load_registered

NAME = "replearn-word2vec"
QUERY = [{"positive": "w1", "negative": "", "topn": 5}]


def _register(home, seed: int, champion: bool = True) -> str:
    """A tiny word2vec version (300 random words, seed -> vectors) logged and registered as the CLI's flow does."""
    from replearn.tasks.register import log_pyfunc

    uri = tracking_uri(home)
    c = client(uri)
    folder = home / f"v{seed}"
    folder.mkdir()
    vectors = np.random.default_rng(seed).normal(size=(300, 16)).astype(np.float32)
    emb = write_embeddings(folder / "e.parquet", [f"w{i}" for i in range(300)], vectors,
                           EmbeddingsMetadata(family="word2vec", dim=16, normalized=False, similarity="cos"))
    idx = save_index(build_index(vectors, "cos"), folder / "index.faiss", metric="cos", factory="Flat")
    run_id = c.create_run(experiment_id(uri, "word2vec", home)).info.run_id
    source, model_id = log_pyfunc(uri, run_id, "word2vec", {"embeddings": str(emb), "index": str(idx),
                                                            "index_meta": str(folder / "index.json")})
    try:
        c.create_registered_model(NAME)
    except Exception:
        pass
    mv = c.create_model_version(NAME, source, run_id=run_id, model_id=model_id)
    if champion:
        c.set_registered_model_alias(NAME, "champion", mv.version)
    return str(mv.version)


@pytest.fixture
def settle(monkeypatch):
    """A short settle time, and a function that waits it out (the store must rest before an entry is written)."""
    monkeypatch.setattr(version_cache, "SETTLE_S", 0.05)
    return lambda: time.sleep(0.1)


@pytest.fixture
def mlflow_calls(monkeypatch):
    """The versions resolved through MLflow (the cache's misses), in order."""
    calls = []
    real = resolve._from_registry

    def spy(*args, **kwargs):
        rv = real(*args, **kwargs)
        calls.append(rv.version)
        return rv

    monkeypatch.setattr(resolve, "_from_registry", spy)
    return calls


def _db(home):
    return home / "mlflow.db"


def test_a_cache_hit_answers_as_mlflow_does_without_asking_it(home, settle, mlflow_calls):
    _register(home, 1)
    uri = tracking_uri(home)
    settle()
    first, rv1 = query_registered(uri, NAME, "word2vec", QUERY)          # miss: MLflow, then cached
    second, rv2 = query_registered(uri, NAME, "word2vec", QUERY)         # hit
    assert mlflow_calls == ["1"] and rv1 == rv2 and first == second
    assert version_cache.cache_file(_db(home)).is_file()
    model, mv = load_registered(uri, NAME)                               # the registered pyfunc, through MLflow
    want = model.predict(pd.DataFrame(QUERY))
    pd.testing.assert_frame_equal(pd.DataFrame(second, columns=list(want.columns)), want, check_dtype=False)
    assert str(mv.version) == rv2.version == "1"


def test_moving_the_alias_makes_the_next_search_use_the_new_version(home, settle, mlflow_calls):
    _register(home, 1)
    v2 = _register(home, 2, champion=False)
    uri = tracking_uri(home)
    client(uri).set_registered_model_alias(NAME, "champion", "1")
    settle()
    old, rv = query_registered(uri, NAME, "word2vec", QUERY)
    assert rv.version == "1" and query_registered(uri, NAME, "word2vec", QUERY)[1].version == "1"
    client(uri).set_registered_model_alias(NAME, "champion", v2)         # as the MLflow UI would
    new, rv = query_registered(uri, NAME, "word2vec", QUERY)            # at once, no settling
    assert rv.version == v2 and new != old
    assert mlflow_calls == ["1", v2]


def test_a_new_version_or_a_replaced_database_falls_back_to_mlflow(home, settle, mlflow_calls):
    _register(home, 1)
    uri = tracking_uri(home)
    backup = home / "backup.db"
    shutil.copy2(_db(home), backup)                                     # the store with v1 as champion
    settle()
    assert query_registered(uri, NAME, "word2vec", QUERY)[1].version == "1"
    v2 = _register(home, 2, champion=False)                             # registered, alias not moved
    assert query_registered(uri, NAME, "word2vec", QUERY)[1].version == "1"
    assert mlflow_calls == ["1", "1"]
    client(uri).set_registered_model_alias(NAME, "champion", v2)
    settle()
    assert query_registered(uri, NAME, "word2vec", QUERY)[1].version == v2
    assert query_registered(uri, NAME, "word2vec", QUERY)[1].version == v2   # cached
    os.replace(backup, _db(home))                                       # an older store put back (mtime kept)
    query_registered(uri, NAME, "word2vec", QUERY)
    # asked MLflow again (this process's MLflow still holds the old file open, so what it answers is not the point)
    assert len(mlflow_calls) == 4 and mlflow_calls[:3] == ["1", "1", v2]


@pytest.mark.parametrize("damage", ["missing", "corrupt", "foreign"])
def test_a_missing_or_corrupt_cache_is_ignored_and_rewritten(home, settle, mlflow_calls, damage):
    _register(home, 1)
    uri = tracking_uri(home)
    settle()
    query_registered(uri, NAME, "word2vec", QUERY)
    path = version_cache.cache_file(_db(home))
    if damage == "missing":
        path.unlink()
    elif damage == "corrupt":
        path.write_text('{"format": 1, "store": ')
    else:
        path.write_text(json.dumps({"format": 1, "store": json.loads(path.read_text())["store"],
                                    "versions": {f"{NAME}@champion": {"name": NAME}}}))
    rows, rv = query_registered(uri, NAME, "word2vec", QUERY)
    assert rv.version == "1" and len(rows) == 5 and mlflow_calls == ["1", "1"]
    assert f"{NAME}@champion" in json.loads(path.read_text())["versions"]   # rewritten whole
    query_registered(uri, NAME, "word2vec", QUERY)
    assert mlflow_calls == ["1", "1"]


def test_an_unsettled_store_or_a_disabled_cache_always_asks_mlflow(home, monkeypatch, mlflow_calls):
    _register(home, 1)
    uri = tracking_uri(home)
    monkeypatch.setattr(version_cache, "SETTLE_S", 3600.0)             # the store was just written
    query_registered(uri, NAME, "word2vec", QUERY)
    assert not version_cache.cache_file(_db(home)).exists()
    monkeypatch.setattr(version_cache, "SETTLE_S", 0.0)
    monkeypatch.setenv(resolve.CACHE_ENV, "0")
    query_registered(uri, NAME, "word2vec", QUERY)
    query_registered(uri, NAME, "word2vec", QUERY)
    assert mlflow_calls == ["1", "1", "1"] and not version_cache.cache_file(_db(home)).exists()


def test_an_http_tracking_uri_never_uses_the_cache(monkeypatch, tmp_path):
    from replearn.serving.registered import RegisteredVersion

    uri = "http://127.0.0.1:5999"
    assert version_cache.sqlite_file(uri) is None
    assert version_cache.sqlite_file("sqlite:///:memory:") is None
    answered = RegisteredVersion(NAME, "7", "s3://bucket/m/artifacts", str(tmp_path), {}, "word2vec")
    monkeypatch.setattr(resolve, "_from_registry", lambda *a, **k: answered)
    for name in ("cached", "remember", "store_identity"):
        monkeypatch.setattr(version_cache, name, lambda *a, **k: pytest.fail("the cache was used"))
    assert resolve.resolve_version(uri, NAME) is answered
    assert resolve.resolve_version(uri, NAME) is answered


def test_a_version_of_another_family_is_refused_by_name(home):
    _register(home, 1)
    with pytest.raises(LookupError, match="is a word2vec model, not a metric one"):
        query_registered(tracking_uri(home), NAME, "metric", [{"id": 0}])


@pytest.mark.slow
def test_the_cli_search_answers_the_same_from_the_cache_without_mlflow_prefect_or_torch(home):
    _register(home, 1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    code = ("import sys\nfrom replearn.cli.main import main\nsys.argv = ['replearn'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('LOADED', [m for m in ('mlflow', 'prefect', 'torch', 'sqlalchemy') if m in sys.modules])")
    args = [sys.executable, "-c", code, "search", "word2vec", "--word", "w1", "--topn", "3", "--home", str(home)]
    # the first search asks MLflow (the default 2 s settle time has passed by the time it ran: sleep if not)
    time.sleep(max(0.0, 2.05 - (time.time() - _db(home).stat().st_mtime)))
    cold = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    warm = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert cold.returncode == warm.returncode == 0, cold.stderr + warm.stderr
    assert "'mlflow'" in cold.stdout.splitlines()[-1]
    assert warm.stdout.splitlines()[-1] == "LOADED []"
    assert cold.stdout.splitlines()[:-1] == warm.stdout.splitlines()[:-1]
    assert "replearn-word2vec v1:" in warm.stdout and "+w1" in warm.stdout


def test_an_entry_is_written_only_for_a_settled_unchanged_store_and_local_files(tmp_path):
    from replearn.serving.registered import RegisteredVersion

    db = tmp_path / "mlflow.db"
    db.write_bytes(b"x" * 10)
    folder = tmp_path / "model"
    folder.mkdir()
    local = RegisteredVersion(NAME, "1", folder.as_uri(), str(folder), {}, "word2vec")
    ident = version_cache.store_identity(db)
    later = max(ident["files"][0][3:]) + int(version_cache.SETTLE_S * 1e9)
    assert not version_cache.remember(db, ident, later - 1, "k", local)          # written just before the stat
    remote = RegisteredVersion(NAME, "1", "s3://b/m", str(folder), {}, "word2vec")
    assert not version_cache.remember(db, ident, later, "k", remote)            # a download, not the store's files
    assert version_cache.remember(db, ident, later, "k", local)
    assert version_cache.cached(db, ident, "k") == local
    with open(db, "ab") as f:                                                   # written during the lookup
        f.write(b"y")
    assert not version_cache.remember(db, ident, later, "k", local)
    assert version_cache.cached(db, version_cache.store_identity(db), "k") is None
