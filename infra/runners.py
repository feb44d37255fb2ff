"""Task runners of the flows (``--runner local|dask|ray``): where the shards of a stage run.

* ``local``: Prefect's default thread pool in the flow's own process (what
  a flow has without options).
* ``dask``: prefect-dask's ``DaskTaskRunner``: a ``dask.distributed``
  ``LocalCluster`` of ``workers`` processes (one thread each) started for the
  flow run and closed after it, or the existing cluster at ``address``
  (``tcp://scheduler-host:8786``).
* ``ray``: prefect-ray's ``RayTaskRunner``: a local Ray instance with
  ``workers`` CPUs, or the cluster at ``address`` (``ray://head-host:10001``).
  An optional extra: ``pip install -e '.[ray]'``.

A flow chooses its runner itself, from its parameters, whoever started it
(the CLI, a deployment, the pipeline flow): it opens a :class:`ShardRunner`
around its stages, and the stages that map over shards (tokenize
partitions, export shards: flows/text_stages.py, infra/fanout.py) submit
their shard tasks to it. Only those tasks go to the cluster; the stages
themselves, training included, run in the flow's process. No flow starts
itself again to change its task runner. Workers must see the same paths (the
corpus and the data home: one machine, or a shared file system) and have
replearn installed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any, Literal

from prefect import Task
from prefect.context import FlowRunContext
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from replearn.infra.fanout import fan_out
from replearn.lib.errors import ReplearnInputError

__all__ = ["RUNNERS", "ShardRunner", "api_for_workers", "check_cluster", "check_prefect_api", "fan_out_settings",
           "runs_on", "task_runner"]

RUNNERS = ("local", "dask", "ray")

RAY_MISSING = "--runner ray needs prefect-ray and ray, an optional extra: .venv/bin/pip install -e '.[ray]'"
DASK_MISSING = "--runner dask needs prefect-dask: .venv/bin/pip install -e . (it is a dependency of replearn)"


def task_runner(runner: str, address: str | None = None, workers: int = 2) -> TaskRunner:
    """A new Prefect task runner for ``runner`` (``local``, ``dask`` or ``ray``).

    Args:
        runner: one of :data:`RUNNERS`.
        address: an existing cluster (Dask scheduler ``tcp://host:8786``, Ray
            ``ray://host:10001`` or ``auto``); None starts a local one for the
            flow run (``local`` ignores it).
        workers: processes of the local Dask cluster (one thread each) or CPUs
            of the local Ray instance, >= 1.

    Raises:
        ReplearnInputError: unknown runner, ``workers < 1``, or the runner's
            package is not installed (the message says what to install).
    """
    if runner not in RUNNERS:
        raise ReplearnInputError(f"unknown runner {runner!r}; choose from {', '.join(RUNNERS)}")
    if workers < 1:
        raise ReplearnInputError(f"workers must be >= 1, got {workers}")
    if runner == "local":
        return ThreadPoolTaskRunner()
    if runner == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise ReplearnInputError(DASK_MISSING) from None
        if address:
            return DaskTaskRunner(address=address)
        # no dashboard: it needs bokeh and a free port 8787; worker logs below ERROR stay in the workers
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None, "silence_logs": logging.ERROR})
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        raise ReplearnInputError(RAY_MISSING) from None
    return RayTaskRunner(address=address) if address else RayTaskRunner(init_kwargs={"num_cpus": workers})


def check_cluster(runner: str, address: str | None, timeout_s: float = 10.0) -> None:
    """Fail fast, before the flow starts, when ``--address`` cannot serve this run.

    Checks, for an existing cluster (``address`` given): a Prefect server is
    configured (``PREFECT_API_URL``: the cluster's workers outlive this run
    and keep reporting to the first API they were given, so a temporary one
    would lose the task runs of every later run); the address has the
    runner's scheme; the scheduler (Dask) or head (Ray) answers within
    ``timeout_s``; a Dask scheduler has at least one worker (otherwise the
    shards would wait forever).

    Raises:
        ReplearnInputError: naming the address and what to do.
    """
    if not address:
        return
    from prefect.settings import PREFECT_API_URL

    if not (runner == "ray" and address == "auto"):
        _check_address_form(runner, address)
    if not PREFECT_API_URL.value():
        raise ReplearnInputError(
            f"--address {address}: an existing cluster needs a Prefect server its workers can report to (they outlive "
            "this run): start one (make servers, or prefect server start) and export PREFECT_API_URL=http://HOST:4200/api")
    check_prefect_api()
    if runner == "ray" and address == "auto":
        return
    host, port = _check_address_form(runner, address)
    if runner == "ray":
        import socket

        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
        except OSError as e:
            raise ReplearnInputError(f"cannot reach the Ray cluster at {address} ({e}): start it (ray start --head "
                                     "--ray-client-server-port PORT) or fix --address") from None
        return
    from distributed import Client

    try:
        with Client(address, timeout=f"{timeout_s}s") as client:
            workers = len(client.scheduler_info().get("workers", {}))
    except (OSError, TimeoutError) as e:
        raise ReplearnInputError(f"cannot reach the Dask scheduler at {address} within {timeout_s:.0f} s ({e}): "
                                 "start it (dask scheduler) or fix --address") from None
    if workers == 0:
        raise ReplearnInputError(f"the Dask scheduler at {address} has no workers, so nothing would run: start some "
                                 f"(dask worker {address}) and run again")


def _check_address_form(runner: str, address: str) -> tuple[str, int]:
    """(host, port) of a ``tcp://`` / ``tls://`` (Dask) or ``ray://`` (Ray) address; ReplearnInputError otherwise."""
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    schemes = {"dask": ("tcp", "tls"), "ray": ("ray",)}[runner]
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if parts.scheme not in schemes or not host or not port:
        raise ReplearnInputError(f"--address {address!r} is not a {runner} address: use "
                                 + (" or ".join(f"{x}://HOST:PORT" for x in schemes)) + (" or auto" * (runner == "ray")))
    return host, port


def check_prefect_api(timeout_s: float = 10.0) -> None:
    """With ``PREFECT_API_URL`` configured, check that the server answers ``/health``; without one, do nothing.

    Raises:
        ReplearnInputError: naming the URL, the failure and the two ways out.
    """
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return
    import httpx

    try:
        httpx.get(url.rstrip("/") + "/health", timeout=timeout_s).raise_for_status()
    except httpx.HTTPError as e:
        raise ReplearnInputError(f"cannot reach the Prefect API at {url} ({e}): start the server (make servers) or "
                                 "unset PREFECT_API_URL to run with a temporary local one") from None


def runs_on(runner: str) -> bool:
    """Whether the current flow run's task runner is of the kind ``runner`` names (always True for ``local``)."""
    ctx = FlowRunContext.get()
    current = ctx.task_runner if ctx is not None else None
    if runner == "local":
        return True
    name = {"dask": "DaskTaskRunner", "ray": "RayTaskRunner"}[runner]
    return any(cls.__name__ == name for cls in type(current).__mro__)


def fan_out_settings(runner: str, workers: int) -> dict:
    """How the stages fan out under ``runner``: ``{"parallel": ..., "shards": ...}``.

    ``local``: tokenize partitions one at a time (each already uses two threads;
    the memory of one partition in flight, as before) and export one file per
    matrix. ``dask`` / ``ray``: every partition submitted at once (the cluster
    schedules them) and ``workers`` export shards.
    """
    if runner == "local":
        return {"parallel": 1, "shards": None}
    return {"parallel": None, "shards": workers}


@contextlib.contextmanager
def api_for_workers() -> Iterator[None]:
    """Let worker processes report their task runs to the Prefect API this process uses.

    With no ``PREFECT_API_URL`` configured, Prefect runs a temporary local
    server for this process, and a Dask or Ray worker process, seeing no URL
    either, would start one of its own (seconds of start-up per worker, and
    task runs recorded apart). This starts that temporary server now (Prefect
    keeps one per process and stops it at exit) and sets ``PREFECT_API_URL``
    to it for the duration, so the context the task runners ship to their
    workers carries the URL. With a URL configured it does nothing. A cluster
    on other machines cannot reach 127.0.0.1: give it a Prefect server
    (``PREFECT_API_URL``, docs/operations.md).
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield


class ShardRunner:
    """Where one flow run's shard tasks run (tokenize partitions, export shards), and how many at once.

    A context manager around a flow run's stages::

        with ShardRunner(params.runner, params.address, params.workers) as shards:
            tokens = tokenize_stage(..., runner=shards)

    * ``local``: the flow run's own task runner (Prefect's thread pool), one
      partition at a time (``parallel`` 1), one export file per matrix
      (``shards`` None).
    * ``dask`` / ``ray``: a cluster's task runner (:func:`task_runner`),
      created and, for an existing cluster at ``address``, checked
      (:func:`check_cluster`) on entry, but started only when a stage first
      has shards to run (a run whose sharded stages all come from the cache
      starts no cluster), with :func:`api_for_workers`; closed on exit. Every
      partition is submitted at once and the export has ``workers`` shards.
      A flow run already running on a task runner of that kind (the CLI
      starts word2vec with one) sends its shards there instead.

    Args:
        runner: one of :data:`RUNNERS`.
        address: an existing cluster, or None for a local one (see :func:`task_runner`).
        workers: processes of a local cluster and export shards, >= 1.
        parallel: shard tasks in flight at most (>= 1, or None for all at once); ``"auto"``: as the runner says
            (:func:`fan_out_settings`).

    Attributes:
        kind: the runner's name. parallel: as above, resolved. shards: export shards (None: one file per matrix).

    Raises:
        ReplearnInputError: as :func:`task_runner` raises (when made) and :func:`check_cluster` (on entry).
    """

    def __init__(self, runner: str = "local", address: str | None = None, workers: int = 2,
                 parallel: int | None | Literal["auto"] = "auto") -> None:
        candidate = task_runner(runner, address, workers)  # checks the name, workers and the package; starts nothing
        settings = fan_out_settings(runner, workers)
        self.kind = runner
        self.parallel: int | None = settings["parallel"] if parallel == "auto" else parallel
        self.shards: int | None = settings["shards"]
        self._address, self._candidate = address, candidate
        self._runner: TaskRunner | None = None
        self._started = False
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ShardRunner:
        if self.kind != "local" and not runs_on(self.kind):
            check_cluster(self.kind, self._address)
            self._runner = self._candidate
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def task_runner(self) -> TaskRunner | None:
        """The started task runner shard tasks go to (the cluster's, started now on first use), or None: the flow
        run's own."""
        if self._runner is not None and not self._started:
            self._stack.enter_context(api_for_workers())
            self._stack.enter_context(self._runner)
            self._started = True
        return self._runner

    def map(self, task: Task, calls: list[dict[str, Any]]) -> list[Any]:
        """Run ``task(**kwargs)`` for each dict of ``calls`` on this runner, at most :attr:`parallel` at once;
        the results in order (:func:`~replearn.infra.fanout.fan_out`, which says what is raised)."""
        return fan_out(task, calls, self.parallel, self.task_runner())


@contextlib.contextmanager
def process_local_prefect() -> Iterator[None]:
    """Prefect settings for flow runs started in this process (the CLI, the benches).

    With no ``PREFECT_API_URL`` configured, the flow runs report to the local
    API that :mod:`replearn.infra.local_api` keeps alive between commands
    (started here on first use), or, with ``REPLEARN_PREFECT_API=temporary``,
    to Prefect's temporary server, which lives and dies with this process.
    Flow-run heartbeats let a server with its loop services mark a crashed
    run; neither local server runs them, and Prefect joins its heartbeat
    thread (which sleeps in 1 s steps) at the end of every flow run, up to 1 s
    per run (0.6 s of a 1.1 s fully cached rerun, measured). So they are
    switched off for the duration. With a server configured (a deployment's
    worker, ``make servers``) nothing changes.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from replearn.infra.local_api import local_api

    if PREFECT_API_URL.value():
        yield
        return
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), local_api():
        yield
