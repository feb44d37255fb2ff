"""MLflow tracking without global state: every call takes an explicit tracking URI.

The default store is SQLite at an absolute path under the data home
(``<home>/mlflow.db``) with artifacts under ``<home>/mlartifacts``; the
``MLFLOW_TRACKING_URI`` environment variable overrides it (e.g. an MLflow
server with a database backend).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from replearn.infra.home import data_home

if TYPE_CHECKING:  # mlflow is imported where a client is made: tracking_uri() alone stays light (replearn search)
    from mlflow import MlflowClient


def tracking_uri(home: str | Path | None = None) -> str:
    """The MLflow tracking URI: ``$MLFLOW_TRACKING_URI`` or SQLite under the data home."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    db = data_home(home) / "mlflow.db"
    return f"sqlite:///{db.resolve()}"


_READY_STORES: set[str] = set()


def _init_sqlite_store(uri: str) -> None:
    """Create / migrate a SQLite store once per process, under an exclusive lock on ``<db>.lock``.

    Two runs started at once into a fresh data home would otherwise both run
    MLflow's schema migrations on the same file, and one fails ("Online
    migration expected to match one row ... in 'alembic_version'; 0 found").
    """
    if uri in _READY_STORES or not uri.startswith("sqlite:///"):
        return
    from mlflow import MlflowClient

    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        fcntl = None
    db = Path(uri[len("sqlite:///"):])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            c = MlflowClient(tracking_uri=uri, registry_uri=uri)
            c.search_experiments(max_results=1)        # tracking store: creates / migrates the schema
            c.search_registered_models(max_results=1)  # registry store (same file)
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
    _READY_STORES.add(uri)


def client(uri: str) -> MlflowClient:
    """A client bound to ``uri`` for both tracking and the model registry (a SQLite store is initialised safely)."""
    from mlflow import MlflowClient

    _init_sqlite_store(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


#: MLflow 3's experiment-kind tag: its UI opens these experiments as model training ("Training runs", no
#: experiment-type prompt) rather than as GenAI apps.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
#: The query that opens an MLflow UI page in the "Model training" sidebar view (the UI's default is GenAI).
MODEL_TRAINING_VIEW = "workflowType=machine_learning"


#: Where ``make ui-mlflow`` serves the MLflow UI of a local store.
LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"


def ui_run_url(ui: str, experiment: str, run_id: str) -> str:
    """The MLflow UI page of a run, in the "Model training" view: ``ui`` is the UI's root, e.g. http://127.0.0.1:5000."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}?{MODEL_TRAINING_VIEW}"


def experiment_id(uri: str, name: str, home: str | Path | None = None) -> str:
    """Get or create experiment ``name``, tagged as model training (:data:`EXPERIMENT_KIND`); its artifacts go
    under ``<home>/mlartifacts/<name>``."""
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        for key, value in EXPERIMENT_KIND.items():
            if exp.tags.get(key) != value:  # an experiment made before the tag existed
                c.set_experiment_tag(exp.experiment_id, key, value)
        return exp.experiment_id
    location = None
    if uri.startswith("sqlite:") or uri.startswith("file:"):
        location = (data_home(home) / "mlartifacts" / name).resolve().as_uri()
    try:
        return c.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
    except Exception:  # created concurrently by another run
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def log_params(uri: str, run_id: str, params: Mapping[str, object], prefix: str = "") -> None:
    """Log parameters (values stringified, None as 'None') in one batch."""
    from mlflow.entities import Param

    items = [Param(f"{prefix}{k}", str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client(uri).log_batch(run_id, params=items[i : i + 100])


def log_metrics(uri: str, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    """Log finite numeric metrics in one batch at ``step``."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None and v == v]
    for i in range(0, len(items), 500):
        client(uri).log_batch(run_id, metrics=items[i : i + 500])
