"""One run context for every flow: the data home, the MLflow run, and what happens on success and on failure.

A flow body is its stages and nothing else::

    with family_run("word2vec", params.home, tags={...}) as run:
        vocab = reuse_or_rerun(vocabulary_task, tokens.path, run.stage_out("vocab.parquet"), ...,
                               run.tracking_uri, run.run_id)
        ...

On entry the data home is resolved (:func:`replearn.infra.home.data_home`) and an
MLflow run is created in the experiment named after the family, tagged with the
Prefect flow run. On a normal exit the MLflow run is marked FINISHED. On any
exception (Ctrl-C included) it is marked FAILED and the exception propagates.
Stage outputs live in the stage store, ``<home>/stages/`` (infra/caching.py),
not in a folder of the run: a failed run's completed stages are reused by a
retry, which runs only the failed stage and those after it, and no run's
outputs depend on another run's folder. Checkpoints live under
``<home>/checkpoints/`` and survive too, so a killed run resumes.

A run whose process was killed (SIGKILL, a power cut) cannot mark itself: each
run is tagged with its host and process id, and the next run of the family on
that host marks every RUNNING run whose process is gone KILLED
(:func:`mark_killed_runs`).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import RunStatus
from prefect.runtime import flow_run

from replearn.infra.caching import StageOut, clear_unfinished
from replearn.infra.home import data_home, inside_home
from replearn.infra.processes import process_alive
from replearn.infra.tracking import client, experiment_id, tracking_uri


@dataclass(frozen=True)
class RunContext:
    """Where one flow run reads and writes.

    Attributes:
        family: ``word2vec``, ``multisense``, ``metric`` or ``clip`` (also the MLflow experiment).
        home: the absolute data home.
        tracking_uri: the MLflow tracking (and registry) URI.
        run_id: the MLflow run id; names this run's attempt folder in each stage folder it writes.
        experiment_id: the MLflow experiment's id (for links to the MLflow UI).
    """

    family: str
    home: str
    tracking_uri: str
    run_id: str
    experiment_id: str = ""

    def stage_out(self, *parts: str) -> StageOut:
        """An output of the stage it is given to, named ``parts`` inside the stage's folder (none: the folder
        itself); placed at ``<home>/stages/<stage>/<cache key>/<run id>/<parts>`` by ``reuse_or_rerun``
        (infra/caching.py). A part that would leave the data home is refused there."""
        return StageOut(self.home, self.run_id, parts)

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
    host and process id), after marking the family's runs whose process was killed (:func:`mark_killed_runs`)
    and removing what they left half-written in the stage store (``clear_unfinished``, infra/caching.py)."""
    root = data_home(home)
    uri = tracking_uri(root)
    all_tags = {"prefect.flow_run_id": str(flow_run.get_id() or ""),
                "prefect.flow_run_name": str(flow_run.get_name() or ""),
                HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), **(tags or {})}
    experiment = experiment_id(uri, family, root)
    for killed in mark_killed_runs(uri, experiment):
        clear_unfinished(root, killed)  # what it was writing when killed
    run_id = client(uri).create_run(experiment, tags=all_tags).info.run_id
    return RunContext(family, str(root), uri, run_id, experiment)


def end_run(run: RunContext, failed: bool = False) -> None:
    """Mark the MLflow run FINISHED, or FAILED. The completed stages' outputs stay where they are, in the stage
    store (infra/caching.py), for a retry; checkpoints stay for resuming."""
    client(run.tracking_uri).set_terminated(run.run_id, RunStatus.to_string(RunStatus.FAILED if failed
                                                                            else RunStatus.FINISHED))


@contextmanager
def family_run(family: str, home: str | Path | None = None, tags: dict[str, str] | None = None
               ) -> Iterator[RunContext]:
    """Context manager around one flow run's stages: yields its :class:`RunContext`; ends the MLflow run
    FINISHED on success, FAILED on any exception, which propagates (the completed stages' outputs stay in the
    stage store for a retry)."""
    run = start_run(family, home, tags)
    try:
        yield run
    except BaseException:
        try:
            end_run(run, failed=True)
        except Exception as e:  # a full disk fails MLflow's store too: the first error is the one to report
            logging.getLogger(__name__).warning("could not mark MLflow run %s FAILED (%s); the next run of %s "
                                                "marks it KILLED", run.run_id, e, family)
        raise
    end_run(run)
