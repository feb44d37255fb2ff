"""``replearn run word2vec --runner dask`` (a LocalCluster of 2 workers) makes what the default runner makes: the same
token table, vocabulary, vectors (one training thread, fixed seed) and embeddings table; the cluster is gone after."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from _cli_runs import cli_env, finish, stage_output, start, summary, vectors, word2vec_cmd
from typer.testing import CliRunner

from replearn.cli.main import app
from replearn.flows.params import Word2VecParams
from replearn.lib.store.embeddings_table import read_embeddings, read_vectors
from replearn.infra.tracking import client

pytestmark = pytest.mark.slow

SMALL = dict(dim=16, epochs=2, min_count=3, threads=1, seed=5)
ARGS = ("--dim", "16", "--epochs", "2", "--min-count", "3", "--threads", "1", "--seed", "5")


def _corpus(lee: Path, root: Path) -> Path:
    """The Lee corpus as a folder of three files, one gzipped: three tokenize partitions."""
    lines = lee.read_bytes().splitlines(keepends=True)
    root.mkdir()
    third = len(lines) // 3
    (root / "a.txt").write_bytes(b"".join(lines[:third]))
    with gzip.open(root / "b.txt.gz", "wb") as f:
        f.write(b"".join(lines[third: 2 * third]))
    (root / "c.txt").write_bytes(b"".join(lines[2 * third:]))
    return root


def _session_processes(sid: int) -> list[str]:
    """Processes still alive in session ``sid`` (the CLI's: its Prefect server, the Dask scheduler and workers)."""
    import psutil

    alive = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getsid(p.info["pid"]) == sid:
                alive.append(" ".join(p.info["cmdline"] or [])[:120])
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass
    return alive


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, lee_corpus) -> Path:
    return _corpus(lee_corpus, tmp_path_factory.mktemp("runners") / "corpus")


@pytest.fixture(scope="module")
def local_run(prefect_harness, corpus, tmp_path_factory) -> dict:
    """The reference: the default runner (Prefect's thread pool), in this process."""
    from replearn.flows.word2vec import word2vec_flow

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        return word2vec_flow(Word2VecParams(corpus=str(corpus), home=str(tmp_path_factory.mktemp("local")), **SMALL))


def _assert_same_outputs(local: dict, other: dict, shards: int) -> None:
    ta_dir, tb_dir = stage_output(local, "tokens"), stage_output(other, "tokens")
    va_path, vb_path = stage_output(local, "vocabulary"), stage_output(other, "vocabulary")
    ta, tb = pq.read_table(ta_dir), pq.read_table(tb_dir)
    assert ta.num_rows > 250 and ta.equals(tb)                                     # rows and their order
    assert sorted(p.name for p in ta_dir.iterdir()) == sorted(p.name for p in tb_dir.iterdir())
    assert pq.read_table(va_path).equals(pq.read_table(vb_path))
    assert local["tokens"] == other["tokens"] and local["vocab_size"] == other["vocab_size"]
    (va, ua), (vb, ub) = vectors(local), vectors(other)
    assert np.array_equal(va, vb) and np.array_equal(ua, ub)                       # one thread, fixed seed

    ea, eb = Path(local["embeddings"]), Path(other["embeddings"])
    assert ea.is_file() and eb.is_dir() and len(list(eb.glob("part-*.parquet"))) == shards  # one file / shards
    (t1, m1), (t2, m2) = read_embeddings(ea), read_embeddings(eb)
    assert t1.select(["id", "key", "vector"]).equals(t2.select(["id", "key", "vector"]))
    assert m1.config == m2.config and m1.source_hash == m2.source_hash
    keys, ids, x, _ = read_vectors(eb)
    assert np.array_equal(x, vb[ids]) and keys == read_vectors(ea)[0]
    for s in (local, other):
        m = client(s["tracking_uri"]).get_run(s["mlflow_run_id"]).data.metrics
        assert m["tokenize.files"] == 3 and m["tokenize.tokens"] == local["tokens"]
    assert other["model"]["version"] in (1, "1") and other["recall_at_10"] > 0.99   # the sharded table indexes


def test_cli_runner_dask_makes_what_the_default_runner_makes(local_run, corpus, tmp_path):
    proc = start(word2vec_cmd(corpus, tmp_path / "dask", tmp_path / "dask.json", *ARGS, "--runner", "dask",
                              "--workers", "2"), cli_env(tmp_path / "prefect"), tmp_path / "dask.log")
    try:
        finish(proc, tmp_path / "dask.log", timeout=480)
        deadline = time.monotonic() + 60
        while _session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _session_processes(proc.pid) == [], "the run left processes behind"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    log = (tmp_path / "dask.log").read_text()
    assert "LocalCluster" in log and log.count("tokenize-partition") >= 3
    assert "Starting temporary server" not in log   # the workers report to the CLI's local Prefect API
    _assert_same_outputs(local_run, summary(tmp_path / "dask.json"), shards=2)


def test_a_flow_run_with_runner_dask_sends_its_shards_to_a_dask_cluster(local_run, corpus, tmp_path, monkeypatch):
    """What a deployment or the pipeline does with ``runner: dask`` in its parameters: the flow keeps the default
    task runner and starts no subflow; its ShardRunner starts a Dask cluster (3 workers here: 3 export shards) for
    the shard tasks and closes it after."""
    from prefect.client.orchestration import get_client
    import psutil

    from replearn.flows.word2vec import word2vec_flow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    other = word2vec_flow(Word2VecParams(corpus=str(corpus), home=str(tmp_path / "home"), runner="dask", workers=3,
                                         **SMALL))
    _assert_same_outputs(local_run, other, shards=3)
    flow_run_id = client(other["tracking_uri"]).get_run(other["mlflow_run_id"]).data.tags["prefect.flow_run_id"]
    with get_client(sync_client=True) as c:
        assert c.read_flow_run(flow_run_id).parent_task_run_id is None   # not a subflow of itself

    def left() -> list[str]:  # multiprocessing's resource tracker serves this process until it exits: not a leak
        return [cmd for cmd in (" ".join(p.cmdline())[:150] for p in psutil.Process().children(recursive=True)
                                if p.pid not in before) if "resource_tracker" not in cmd]

    deadline = time.monotonic() + 60
    while left() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left(), f"cluster processes left behind: {left()}"


def test_runner_options_are_checked_before_anything_starts(monkeypatch):
    import builtins

    runner = CliRunner()
    result = runner.invoke(app, ["run", "word2vec", "--address", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2 and "--address" in result.output and "dask" in result.output
    result = runner.invoke(app, ["run", "word2vec", "--runner", "spark"])
    assert result.exit_code == 2 and "--runner" in result.output

    real_import = builtins.__import__

    def no_prefect_ray(name, *args, **kwargs):
        if name.startswith("prefect_ray"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_prefect_ray)
    result = runner.invoke(app, ["run", "word2vec", "--runner", "ray"])
    assert result.exit_code == 2 and "pip install -e '.[ray]'" in result.output


def test_an_existing_cluster_is_checked_before_the_flow_starts(monkeypatch):
    """--address: a Prefect server is required, the scheme must fit, the scheduler must answer and have workers."""
    from distributed import LocalCluster

    from replearn.infra.runners import check_cluster
    from replearn.lib.errors import ReplearnInputError

    from prefect.settings import PREFECT_API_URL, temporary_settings

    runner = CliRunner()
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # no Prefect server configured
        result = runner.invoke(app, ["run", "word2vec", "--runner", "dask", "--address", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2 and "PREFECT_API_URL" in result.output and "Traceback" not in result.output

    monkeypatch.setattr("replearn.infra.runners.check_prefect_api", lambda: None)  # tested below
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        for bad in ("notaurl", "ray://127.0.0.1:10001", "tcp://127.0.0.1:99999"):
            with pytest.raises(ReplearnInputError, match="is not a dask address"):
                check_cluster("dask", bad)
        with pytest.raises(ReplearnInputError, match="is not a ray address"):
            check_cluster("ray", "tcp://127.0.0.1:1")
        t0 = time.perf_counter()
        with pytest.raises(ReplearnInputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:1"):
            check_cluster("dask", "tcp://127.0.0.1:1", timeout_s=2)
        assert time.perf_counter() - t0 < 30
        with pytest.raises(ReplearnInputError, match="cannot reach the Ray cluster"):
            check_cluster("ray", "ray://127.0.0.1:1", timeout_s=2)
        with LocalCluster(n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1",
                          dashboard_address=None) as cluster:
            with pytest.raises(ReplearnInputError, match="has no workers"):
                check_cluster("dask", cluster.scheduler_address)
            cluster.scale(1)
            cluster.wait_for_workers(1, timeout=60)
            check_cluster("dask", cluster.scheduler_address)  # reachable, one worker: fine
    check_cluster("dask", None)  # a local cluster for the run: nothing to check


def test_a_configured_prefect_api_must_answer(prefect_harness, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from replearn.infra.runners import check_prefect_api
    from replearn.lib.errors import ReplearnInputError

    check_prefect_api()  # the harness's server answers
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:1/api"}):
        with pytest.raises(ReplearnInputError, match="cannot reach the Prefect API at http://127.0.0.1:1/api"):
            check_prefect_api(timeout_s=2)
        result = CliRunner().invoke(app, ["run", "word2vec", "--epochs", "1"])
        assert result.exit_code == 2 and "cannot reach the Prefect API" in result.output
        assert "Traceback" not in result.output
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        check_prefect_api()  # none configured: a temporary local server will be used
