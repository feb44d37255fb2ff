"""One run context for every flow: the data home, the MLflow run, and what happens on success and on failure.

A flow body is its stages and nothing else::

    with family_run("word2vec", params.home, tags={...}) as run:
        tokens = reuse_or_rerun(tokenize_task, corpus, run.path("tokens"), ..., run.tracking_uri, run.run_id)
        ...

On entry the data home is resolved (:func:`replearn.infra.home.data_home`) and an
MLflow run is created in the experiment named after the family, tagged with the
Prefect flow run. On a normal exit the MLflow run is marked FINISHED. On any
exception (Ctrl-C included) it is marked FAILED and the exception propagates;
in the run's folder ``<home>/runs/<family>/<run id>/`` half-written
temporaries are removed and the completed stages' outputs kept, so a retry
reuses them from the stage cache and runs only the failed stage and those
after it (checkpoints live under ``<home>/checkpoints/`` and survive too, so a
killed run resumes).

A run whose process was killed (SIGKILL, a power cut) cannot mark itself: each
run is tagged with its host and process id, and the next run of the family on
that host marks every RUNNING run whose process is gone KILLED
(:func:`mark_killed_runs`).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import RunStatus
from prefect.runtime import flow_run

from replearn.infra.home import data_home, inside_home
from replearn.infra.local_api import process_alive
from replearn.infra.tracking import client, experiment_id, tracking_uri


@dataclass(frozen=True)
class RunContext:
    """Where one flow run reads and writes.

    Attributes:
        family: ``word2vec``, ``multisense``, ``metric`` or ``clip`` (also the MLflow experiment).
        home: the absolute data home.
        tracking_uri: the MLflow tracking (and registry) URI.
        run_id: the MLflow run id; names the run's output folder.
        run_dir: ``<home>/runs/<family>/<run_id>``, removed if the run fails.
        experiment_id: the MLflow experiment's id (for links to the MLflow UI).
    """

    family: str
    home: str
    tracking_uri: str
    run_id: str
    run_dir: str
    experiment_id: str = ""

    def path(self, *parts: str) -> str:
        """A path inside the run's folder (refusing any part that would leave the data home)."""
        return str(inside_home(self.home, "runs", self.family, self.run_id, *parts))

    def checkpoint_dir(self, key: str) -> str:
        """``<home>/checkpoints/<family>/<key>``: per-epoch checkpoints of one (data, settings) key; outlives runs."""
        return str(inside_home(self.home, "checkpoints", self.family, key))


#: Tags naming the process that owns a run, so that a later run can tell a killed one from a running one.
HOST_TAG, PID_TAG = "replearn.host", "replearn.pid"


def mark_killed_runs(uri: str, experiment: str) -> list[str]:
    """Mark KILLED every RUNNING run of ``experiment`` started on this host by a process that no longer exists.

    Runs of other hosts, runs without the owner tags (made before them) and runs whose process lives (a
    concurrent run) are left alone. Returns the ids marked.
    """
    c = client(uri)
    host, marked = socket.gethostname(), []
    for run in c.search_runs([experiment], filter_string="attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if tags.get(HOST_TAG) != host or not pid.isdigit() or process_alive(int(pid)):
            continue
        c.set_tag(run.info.run_id, "replearn.ended", f"process {pid} on {host} was gone; marked by a later run")
        c.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        marked.append(run.info.run_id)
    return marked


def start_run(family: str, home: str | Path | None = None, tags: dict[str, str] | None = None) -> RunContext:
    """Create the MLflow run of a flow run of ``family`` (tagged with the Prefect flow run id and name, and this
    host and process id), after marking the family's runs whose process was killed (:func:`mark_killed_runs`)."""
    root = data_home(home)
    uri = tracking_uri(root)
    all_tags = {"prefect.flow_run_id": str(flow_run.get_id() or ""),
                "prefect.flow_run_name": str(flow_run.get_name() or ""),
                HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), **(tags or {})}
    experiment = experiment_id(uri, family, root)
    mark_killed_runs(uri, experiment)
    run_id = client(uri).create_run(experiment, tags=all_tags).info.run_id
    return RunContext(family, str(root), uri, run_id, str(inside_home(root, "runs", family, run_id)), experiment)


def keep_completed_outputs(run_dir: str | Path) -> list[str]:
    """After a failure: remove what a stage left half-written, keep what completed stages wrote; the names kept.

    Every output is written to a hidden temporary sibling (``.<name>.tmp-<id>``, lib/store/atomic.py) and
    renamed when complete, so what remains under a visible name is whole. Temporaries (left by a SIGKILL) are
    deleted, then empty folders; a folder left empty is removed. The stage cache still names the kept files, so
    a retry runs only the stage that failed and those after it.
    """
    root = Path(run_dir)
    if not root.exists():
        return []
    for path in sorted(root.rglob(".*.tmp-*"), key=lambda p: len(p.parts), reverse=True):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    kept = sorted(p.name for p in root.iterdir())
    if not kept:
        root.rmdir()
    return kept


def end_run(run: RunContext, failed: bool = False) -> None:
    """Mark the MLflow run FINISHED; or FAILED, keeping the completed stages' outputs for a retry
    (:func:`keep_completed_outputs`; the run is tagged ``replearn.kept_outputs``). Checkpoints stay for resuming."""
    c = client(run.tracking_uri)
    if failed:
        kept = keep_completed_outputs(run.run_dir)
        if kept:
            c.set_tag(run.run_id, "replearn.kept_outputs", f"{run.run_dir}: {', '.join(kept)} (a retry reuses them)")
    c.set_terminated(run.run_id, RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED))


@contextmanager
def family_run(family: str, home: str | Path | None = None, tags: dict[str, str] | None = None
               ) -> Iterator[RunContext]:
    """Context manager around one flow run's stages: yields its :class:`RunContext`; ends the MLflow run
    FINISHED on success, FAILED (completed stages' outputs kept for a retry) on any exception, which propagates."""
    run = start_run(family, home, tags)
    try:
        yield run
    except BaseException:
        end_run(run, failed=True)
        raise
    end_run(run)
