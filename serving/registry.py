"""Look up a registered version (the champion alias, or any version) in the MLflow registry, without global MLflow
state: as the pyfunc (:func:`load_registered`), as files (:func:`registered_version`, :func:`registered_artifacts`),
or to measure a graph distance. The query commands go through :mod:`replearn.serving.resolve`, which answers from a
small cache when the store has not changed and falls back to these functions otherwise.
"""

from __future__ import annotations

from pathlib import Path

from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import load_model

from replearn.infra.tracking import client
from replearn.serving.registered import RegisteredVersion

FAMILIES = ("word2vec", "metric", "clip", "multisense")


def version_record(tracking_uri: str, name: str, alias: str, version: str | None, *, hint: bool = True):
    """The MLflow model version record of ``name@alias`` (or ``name`` version ``version``).

    Raises:
        LookupError: no such model, alias or version; with ``hint`` the message says how to create one, else it
            carries MLflow's own message.
    """
    c = client(tracking_uri)
    try:
        return c.get_model_version(name, version) if version else c.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        where = f"no model {name} {'version ' + version if version else '@' + alias} in the registry at {tracking_uri}"
        if not hint:
            raise LookupError(f"{where} ({e.message})") from None
        family = next((f for f in FAMILIES if f in name), None)
        how = ("list versions in the MLflow UI (make ui-mlflow)" if version
               else f"train one first with `replearn run {family or '<family>'}`"
                    + ("" if name.startswith("replearn-") else f" --model-name {name}"))
        raise LookupError(f"{where}; {how}") from None


def load_registered(tracking_uri: str, name: str, alias: str = "champion", version: str | None = None):
    """The pyfunc of ``name@alias`` (or ``name`` version ``version``) and its model version record.

    Raises:
        LookupError: no such registered model, alias or version (the message says how to create one).
    """
    mv = version_record(tracking_uri, name, alias, version)
    local = download_artifacts(artifact_uri=mv.source, tracking_uri=tracking_uri)
    # no pip-requirement comparison against this environment: it is the one that registered the model, and the
    # check walks every installed distribution (0.8 s of a 4 s `replearn search`, measured)
    return load_model(local, suppress_warnings=True), mv


def registered_version(tracking_uri: str, name: str, alias: str = "champion", version: str | None = None, *,
                       hint: bool = True) -> RegisteredVersion:
    """``name@alias`` (or version ``version``) as local files: its folder, its pyfunc artifacts and its family.

    The artifacts are those the pyfunc's ``context.artifacts`` would hold (the
    ``python_function`` flavour of the version's ``MLmodel``); the family is the
    one recorded in the embeddings table's metadata.

    Raises:
        LookupError: no such registered model, alias or version (see :func:`version_record` for ``hint``).
    """
    from mlflow.models import Model

    from replearn.lib.store.embeddings_table import read_metadata

    mv = version_record(tracking_uri, name, alias, version, hint=hint)
    local = Path(download_artifacts(artifact_uri=mv.source, tracking_uri=tracking_uri))
    flavour = Model.load(str(local / "MLmodel")).flavors.get("python_function", {})
    artifacts = {k: str(local / v["path"]) for k, v in (flavour.get("artifacts") or {}).items()}
    family = read_metadata(artifacts["embeddings"]).family if "embeddings" in artifacts else ""
    return RegisteredVersion(name=name, version=str(mv.version), source=mv.source, folder=str(local),
                             artifacts=artifacts, family=family or "")


def registered_artifacts(tracking_uri: str, name: str, alias: str = "champion", version: str | None = None
                         ) -> tuple[Path, object]:
    """Local folder of a registered version's artifacts (``embeddings``, ``index``, ``graph``, ...) and the version."""
    mv = version_record(tracking_uri, name, alias, version, hint=False)
    return Path(download_artifacts(artifact_uri=f"{mv.source}/artifacts", tracking_uri=tracking_uri)), mv


def graph_distance(tracking_uri: str, name: str, a: str, b: str, version: str | None = None,
                   weighted: bool = False) -> dict:
    """NN-graph distance between two items of a registered model (see :func:`replearn.serving.graph_query.graph_distance_in`).

    Raises:
        LookupError: unknown model, or a key that is not in the embeddings table.
    """
    from replearn.serving.graph_query import graph_distance_in

    folder, mv = registered_artifacts(tracking_uri, name, version=version)
    return graph_distance_in(folder, name, str(mv.version), a, b, weighted=weighted)
