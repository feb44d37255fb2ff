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

A cached value is a typed stage output (:mod:`replearn.infra.stage_outputs`)
naming files of an earlier run; :func:`reuse_or_rerun` runs the stage again
(``refresh_cache``) when one of them is gone.
"""

from __future__ import annotations

from pathlib import Path

from prefect.cache_policies import TASK_SOURCE, Inputs

from replearn.infra.stage_outputs import StageOutput

PER_RUN = ["out_dir", "out_path", "run_id", "checkpoint_dir", "index_path", "png_path"]
#: How a stage runs, not what it makes: the same outputs whatever the value (shards in flight at once).
EXECUTION = ["parallel"]
STAGE_CACHE = TASK_SOURCE + Inputs(exclude=PER_RUN + EXECUTION)


def reuse_or_rerun(stage, *args, **kwargs):
    """Call the Prefect task ``stage``; if its (possibly cached) :class:`StageOutput` names files that no longer
    exist, run it again with ``refresh_cache=True`` so the cache is rewritten with fresh outputs.

    Raises:
        TypeError: the stage returned something other than a :class:`StageOutput` (every cached stage must).
    """
    out = stage(*args, **kwargs)
    if not isinstance(out, StageOutput):
        raise TypeError(f"stage {stage.name!r} returned {type(out).__name__}, not a StageOutput")
    if any(not Path(p).exists() for p in out.output_files()):
        out = stage.with_options(refresh_cache=True)(*args, **kwargs)
    return out
