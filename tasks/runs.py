"""Prefect tasks that open and close the MLflow run of a flow, and fingerprint its inputs."""

from __future__ import annotations

import hashlib
import shutil
import json
from pathlib import Path

from mlflow.entities import RunStatus
from prefect import task
from prefect.runtime import flow_run

from replearn.lib.store.embeddings_table import content_hash
from replearn.lib.text.corpus_files import list_corpus_files
from replearn.lib.text.default_corpus import default_corpus
from replearn.infra.tracking import client, experiment_id


@task(name="start-mlflow-run")
def start_run_task(tracking_uri: str, experiment: str, home: str, run_name: str | None = None,
                   tags: dict[str, str] | None = None) -> str:
    """Create an MLflow run in ``experiment`` tagged with the Prefect flow run; returns its run id."""
    exp = experiment_id(tracking_uri, experiment, home)
    all_tags = {"prefect.flow_run_id": str(flow_run.get_id() or ""), "prefect.flow_run_name": str(flow_run.get_name() or ""),
                **(tags or {})}
    run = client(tracking_uri).create_run(exp, run_name=run_name, tags=all_tags)
    return run.info.run_id


@task(name="end-mlflow-run")
def end_run_task(tracking_uri: str, run_id: str, failed: bool = False) -> None:
    """Mark the MLflow run FINISHED (or FAILED)."""
    status = RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
    client(tracking_uri).set_terminated(run_id, status)


@task(name="default-corpus")
def default_corpus_task(home: str) -> str:
    """Materialise the embedded default corpus (text shipped in the gensim wheel) under the data home."""
    return str(default_corpus(Path(home) / "data" / "default-corpus.txt"))


@task(name="fingerprint")
def fingerprint_task(source: str, settings: dict) -> dict:
    """Content hash of the corpus and a key for (corpus, settings): names the resumable checkpoint folder."""
    data_hash = content_hash(list_corpus_files(Path(source)))
    key = hashlib.sha256((data_hash + json.dumps(settings, sort_keys=True)).encode()).hexdigest()[:16]
    return {"source_hash": data_hash, "key": key}


@task(name="discard-outputs")
def discard_outputs_task(run_dir: str) -> None:
    """Remove a failed run's partial outputs (checkpoints, kept elsewhere, survive for resume)."""
    shutil.rmtree(run_dir, ignore_errors=True)
