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

Only the tasks a stage fans out (tokenize partitions, export shards:
tasks/fanout.py) go to the cluster; the stages themselves, training
included, run in the flow's process. Workers must see the same paths (the
corpus and the data home: one machine, or a shared file system) and have
replearn installed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prefect.context import FlowRunContext
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from replearn.lib.errors import ReplearnInputError

__all__ = ["RUNNERS", "api_for_workers", "fan_out_settings", "runs_on", "task_runner"]

RUNNERS = ("local", "dask", "ray")

RAY_MISSING = "--runner ray needs prefect-ray and ray, an optional extra: pip install -e '.[ray]'"
DASK_MISSING = "--runner dask needs prefect-dask: pip install -e . (it is a dependency of replearn)"


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
