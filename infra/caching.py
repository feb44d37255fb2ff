"""Stage caching: re-running a flow with the same inputs skips the stages that already completed.

Prefect's cache (Prefect docs, "Caching"): a task's cache key is the hash of
its source code (``TASK_SOURCE``) and of its inputs (``Inputs``), and its
return value is persisted, so a later call with the same key returns the
stored value without running. Inputs are content, not names: the corpus
enters as its content hash (``source_hash``), later stages as the paths of
earlier stages' outputs (equal exactly when those were reused), settings as
values; the tracking URI is an input too, so caches never cross data homes.
Per-run outputs (``out_dir``, ``out_path``, ``run_id``, ``checkpoint_dir``,
``index_path``, ``png_path``) are excluded: they change with every run. So is
``parallel`` (how many shards run at once), which does not change what a stage
makes: a run on a Dask cluster reuses the stages a local run made from the same
inputs, and the other way round.

A cached value names files of an earlier run; :func:`reuse_or_rerun` runs the
stage again (``refresh_cache``) when those files are gone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.cache_policies import TASK_SOURCE, Inputs

PER_RUN = ["out_dir", "out_path", "run_id", "checkpoint_dir", "index_path", "png_path"]
#: How a stage runs, not what it makes: the same outputs whatever the value (shards in flight at once).
EXECUTION = ["parallel"]
STAGE_CACHE = TASK_SOURCE + Inputs(exclude=PER_RUN + EXECUTION)


def _paths(value: Any) -> list[str]:
    """The output paths a stage returned: a path string, or a dict's ``path`` entries / string values."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        if "path" in value:
            return [value["path"]]
        return [v for v in value.values() if isinstance(v, str) and ("/" in v or "\\\\" in v)]
    return []


def reuse_or_rerun(stage, *args, **kwargs):
    """Call the Prefect task ``stage``; if its (possibly cached) result names files that no longer exist,
    run it again with ``refresh_cache=True`` so the cache is rewritten with fresh outputs."""
    out = stage(*args, **kwargs)
    if any(not Path(p).exists() for p in _paths(out)):
        out = stage.with_options(refresh_cache=True)(*args, **kwargs)
    return out
