"""Look a stage up in the stage cache without running it: the gate of a stage that maps over shards.

A sharded stage (tokenize partitions, export shards) is composed by its flow,
not by a task (a task never starts tasks): the flow plans the shards, maps a
shard task over them on its task runner, then calls the stage's own cached
task, which gathers the shards and whose result stands for the whole stage.
Before planning, the flow asks :func:`cached_output` whether that task's
cache already holds a result for the same inputs (the key a call would
compute: the task's cache policy, :data:`~replearn.infra.caching.STAGE_CACHE`,
over its bound arguments). On a hit it calls the task, which Prefect answers
from the cache (state ``Cached``), and no shard task runs, so a second
identical run skips the whole stage as it skips any other stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import Task
from prefect.results import get_result_store
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE
from prefect.utilities.callables import get_call_parameters

from replearn.infra.caching import stage_key
from replearn.infra.stage_outputs import StageOutput

__all__ = ["cached_output"]


def cached_output(stage: Task, *args: Any, **kwargs: Any) -> StageOutput | None:
    """The :class:`StageOutput` that calling ``stage(*args, **kwargs)`` would return from Prefect's cache, or None.

    None when the call would not read the cache (``refresh_cache`` set on the
    task or in Prefect's settings), when the cache holds no result under the
    key the call would compute (:func:`~replearn.infra.caching.stage_key`), when that result is not a
    :class:`StageOutput`,
    or when one of the files it names is gone (the stage must run again, as
    :func:`~replearn.infra.caching.reuse_or_rerun` would decide). Runs nothing
    and creates no task run. The key is computed as the task engine computes
    it, by the task's own cache policy over the bound arguments (defaults
    included); the policy may read the task's source and the call's inputs
    (``TASK_SOURCE + Inputs``, as :data:`~replearn.infra.caching.STAGE_CACHE`),
    not the task run (no ``RUN_ID`` policy). Call it inside a flow run: the
    result store is the flow run's.

    Raises:
        ValueError: ``stage`` has no cache policy that yields a key for these inputs (it is not a cached stage).
        TypeError: the arguments do not fit the task's signature (Prefect's ``ParameterBindError``).
    """
    refresh = stage.refresh_cache if stage.refresh_cache is not None else PREFECT_TASKS_REFRESH_CACHE.value()
    if refresh:
        return None
    key = stage_key(stage, get_call_parameters(stage.fn, args, kwargs))
    store = get_result_store().update_for_task(stage, _sync=True)
    if not store.exists(key):
        return None
    out = store.read(key).result
    if not isinstance(out, StageOutput) or any(not Path(p).exists() for p in out.output_files()):
        return None
    return out
