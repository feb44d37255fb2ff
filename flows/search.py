"""Load the registered champion (or any version) of a model from the MLflow registry, without global MLflow state."""

from __future__ import annotations

from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import load_model

from replearn.tasks.tracking import client


def load_registered(tracking_uri: str, name: str, alias: str = "champion", version: str | None = None):
    """The pyfunc of ``name@alias`` (or ``name`` version ``version``) and its model version record.

    Raises:
        LookupError: no such registered model, alias or version (the message says how to create one).
    """
    c = client(tracking_uri)
    try:
        mv = c.get_model_version(name, version) if version else c.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        hint = ("list versions in the MLflow UI (make ui-mlflow)" if version
                else "train one first with `replearn run word2vec` (or metric, clip, multisense)")
        raise LookupError(f"no model {name} {'version ' + version if version else '@' + alias} in the registry at "
                          f"{tracking_uri}; {hint} ({e.message})") from None
    local = download_artifacts(artifact_uri=mv.source, tracking_uri=tracking_uri)
    return load_model(local), mv
