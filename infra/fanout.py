"""Run one task over many inputs through a task runner (a thread pool, a Dask or a Ray cluster).

A stage that maps over shards (tokenize partitions, export row ranges) is
composed by its flow (flows/text_stages.py): the flow looks the stage up in
the stage cache (infra/cache_lookup.py; on a hit none of its shards run),
plans the shards, hands them to :func:`fan_out` and gathers the results with
the stage's cached task. :func:`fan_out` submits them to the task runner it
is given (the flow run's :class:`~replearn.infra.runners.ShardRunner`) or to
the flow run's own, so the same code tokenizes on Prefect's thread pool, on a
local Dask cluster or on a remote one (``replearn run word2vec --runner
dask``; infra/runners.py). Tasks never start tasks.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from prefect import Task
from prefect.context import FlowRunContext
from prefect.task_runners import TaskRunner
from prefect.utilities.callables import get_call_parameters

__all__ = ["fan_out"]


def fan_out(task: Task, calls: list[dict[str, Any]], parallel: int | None = None,
            runner: TaskRunner | None = None) -> list[Any]:
    """Run ``task(**kwargs)`` for each dict of ``calls`` on a task runner; return the results in order.

    Args:
        task: a Prefect task whose inputs and result can be pickled (to reach
            other processes or machines) and that reads and writes only paths
            every worker sees.
        calls: keyword arguments of each run.
        parallel: runs in flight at most (>= 1), or None for all at once (a
            Dask or Ray scheduler queues them itself). With 1 they run one
            after another, each still as its own task run.
        runner: a started task runner to submit to (a cluster's: :meth:`ShardRunner.task_runner
            <replearn.infra.runners.ShardRunner.task_runner>`); None: the flow run's own task runner.

    Outside a flow run (a task called on its own, as in unit tests) the task's
    function is called for each, one after another in this thread, with no
    task runs (a task run outside a flow has no flow run to log to).

    Raises:
        The exception of the first failed run (in ``calls`` order), once every
        submitted run has finished, so that no run still writes into a folder
        the caller cleans up.
        ValueError: ``parallel < 1``.
    """
    if parallel is not None and parallel < 1:
        raise ValueError(f"parallel must be >= 1 or None, got {parallel}")
    ctx = FlowRunContext.get()
    if runner is None:
        runner = ctx.task_runner if ctx is not None else None
    if ctx is None or runner is None:
        return [task.fn(**kw) for kw in calls]
    limit = parallel or max(1, len(calls))
    results: list[Any] = [None] * len(calls)
    in_flight: deque = deque()
    try:
        for i, kw in enumerate(calls):
            in_flight.append((i, runner.submit(task, get_call_parameters(task.fn, (), kw))))
            while len(in_flight) >= limit:
                j, fut = in_flight.popleft()
                results[j] = fut.result()
        while in_flight:
            j, fut = in_flight.popleft()
            results[j] = fut.result()
    except BaseException:
        for _, fut in in_flight:
            fut.wait()
        raise
    return results
