"""Stage caching: re-running a flow with the same inputs skips the stages that already completed; where stage outputs
live.

Prefect's cache (Prefect docs, "Caching"): a task's cache key is the hash of
its source code (``TASK_SOURCE``) and of its inputs (``Inputs``), and its
return value is persisted, so a later call with the same key returns the
stored value without running. Inputs are content, not names: the corpus
enters as its content hash (``source_hash``), later stages as the paths of
earlier stages' outputs (equal exactly when those were reused), settings as
values; the tracking URI is an input too, so caches never cross data homes.
Per-run values (``out_dir``, ``out_path``, ``run_id``, ``checkpoint_dir``,
``index_path``, ``png_path``) are excluded. So are ``parallel`` (how many
shards run at once) and ``progress`` (whether a progress bar is drawn), which
do not change what a stage makes: a run on a Dask
cluster reuses the stages a local run made from the same inputs, and the other
way round.

Stage outputs are content-addressed and owned by no run: a flow names them
with :meth:`RunContext.stage_out <replearn.infra.run_context.RunContext.stage_out>`
(a :class:`StageOut`), and :func:`place_outputs` puts them at
``<home>/stages/<stage>/<cache key>/<run id>/<name>``: the folder of the
stage's inputs, then the run that made them, so two identical runs at once
never write into each other's files. Deleting a run's folder or its MLflow run
breaks no other run that reused its stages.

A cached value is a typed stage output (:mod:`replearn.infra.stage_outputs`)
naming those files; :func:`reuse_or_rerun` runs the stage again
(``refresh_cache``) when one of them is gone.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prefect import Task
from prefect.cache_policies import TASK_SOURCE, Inputs
from prefect.utilities.callables import get_call_parameters

from replearn.infra.home import inside_home
from replearn.infra.stage_outputs import StageOutput

__all__ = ["EXECUTION", "OUTPUTS", "PER_RUN", "STAGE_CACHE", "StageOut", "clear_unfinished", "place_outputs",
           "reuse_or_rerun", "stage_key"]

#: The parameters that name where a stage writes (a :class:`StageOut` may be passed only to these).
OUTPUTS = ("out_dir", "out_path", "index_path", "png_path")
PER_RUN = [*OUTPUTS, "run_id", "checkpoint_dir"]
#: How a stage runs, not what it makes: the same outputs whatever the value (shards in flight at once).
EXECUTION = ["parallel", "progress"]
STAGE_CACHE = TASK_SOURCE + Inputs(exclude=PER_RUN + EXECUTION)


@dataclass(frozen=True)
class StageOut:
    """An output a flow names for a stage (``run.stage_out("vectors.npz")``); :func:`place_outputs` turns it
    into ``<home>/stages/<stage>/<key>/<run_id>/<parts...>``. Not a path: a task given one unplaced fails."""

    home: str
    run_id: str
    parts: tuple[str, ...] = ()


def stage_key(stage: Task, params: dict[str, Any]) -> str:
    """The cache key calling ``stage`` with the bound ``params`` computes: the task's own cache policy (the task's
    source and the inputs, :data:`STAGE_CACHE`), as the task engine computes it.

    Raises:
        ValueError: ``stage`` has no cache policy that yields a key for these inputs (it is not a cached stage).
    """
    key = stage.cache_policy.compute_key(task_ctx=SimpleNamespace(task=stage), inputs=params, flow_parameters={}) \
        if stage.cache_policy else None
    if not key:
        raise ValueError(f"task {stage.name!r} has no cache key for these inputs: it is not a cached stage")
    return key


def place_outputs(stage: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The call's arguments bound to ``stage``'s parameters (defaults included), each :class:`StageOut` replaced by
    its path in the stage's content-addressed folder (the module's description).

    Raises:
        ValueError: a :class:`StageOut` given to a parameter that names no output (:data:`OUTPUTS`), or ``stage``
            is not a cached stage.
        TypeError: the arguments do not fit the task's signature.
    """
    params = get_call_parameters(stage.fn, args, kwargs)
    outs = {name: v for name, v in params.items() if isinstance(v, StageOut)}
    if not outs:
        return params
    if wrong := sorted(set(outs) - set(OUTPUTS)):
        raise ValueError(f"task {stage.name!r}: {', '.join(wrong)} is not an output parameter ({', '.join(OUTPUTS)})")
    key = stage_key(stage, params)[:24]
    return {**params, **{name: str(inside_home(o.home, "stages", stage.name, key, o.run_id, *o.parts))
                         for name, o in outs.items()}}


def clear_unfinished(home: str | Path, run_id: str) -> list[Path]:
    """Remove what run ``run_id`` left half-written in the stage store (the hidden ``.<name>.tmp-<id>``
    temporaries of lib/store/atomic.py, left by a SIGKILL), then its attempt folders left empty; returns the
    temporaries removed. Complete outputs stay: the stage cache may name them."""
    removed: list[Path] = []
    for attempt in Path(home).glob(f"stages/*/*/{run_id}"):
        for tmp in sorted(attempt.rglob(".*.tmp-*"), key=lambda p: len(p.parts), reverse=True):
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
                removed.append(tmp)
        for folder in sorted((p for p in attempt.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                             reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
        if not any(attempt.iterdir()):
            attempt.rmdir()
    return removed


def reuse_or_rerun(stage: Task, *args: Any, **kwargs: Any) -> StageOutput:
    """Call the Prefect task ``stage`` (its outputs placed by :func:`place_outputs`); if its (possibly cached)
    :class:`StageOutput` names files that no longer exist, run it again with ``refresh_cache=True`` so the cache is
    rewritten with fresh outputs.

    Raises:
        TypeError: the stage returned something other than a :class:`StageOutput` (every cached stage must).
    """
    params = place_outputs(stage, *args, **kwargs)
    out = stage(**params)
    if not isinstance(out, StageOutput):
        raise TypeError(f"stage {stage.name!r} returned {type(out).__name__}, not a StageOutput")
    if any(not Path(p).exists() for p in out.output_files()):
        out = stage.with_options(refresh_cache=True)(**params)
    return out
