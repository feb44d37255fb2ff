"""Load the registered champion (or any version) of a model from the MLflow registry, without global MLflow state."""

from __future__ import annotations

from pathlib import Path

from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import load_model

from replearn.infra.tracking import client


def load_registered(tracking_uri: str, name: str, alias: str = "champion", version: str | None = None):
    """The pyfunc of ``name@alias`` (or ``name`` version ``version``) and its model version record.

    Raises:
        LookupError: no such registered model, alias or version (the message says how to create one).
    """
    c = client(tracking_uri)
    try:
        mv = c.get_model_version(name, version) if version else c.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        family = next((f for f in ("word2vec", "metric", "clip", "multisense") if f in name), None)
        hint = ("list versions in the MLflow UI (make ui-mlflow)" if version
                else f"train one first with `replearn run {family or '<family>'}`"
                     + ("" if name.startswith("replearn-") else f" --model-name {name}"))
        raise LookupError(f"no model {name} {'version ' + version if version else '@' + alias} in the registry at "
                          f"{tracking_uri}; {hint}") from None
    local = download_artifacts(artifact_uri=mv.source, tracking_uri=tracking_uri)
    # no pip-requirement comparison against this environment: it is the one that registered the model, and the
    # check walks every installed distribution (0.8 s of a 4 s `replearn search`, measured)
    return load_model(local, suppress_warnings=True), mv


def registered_artifacts(tracking_uri: str, name: str, alias: str = "champion", version: str | None = None
                         ) -> tuple[Path, object]:
    """Local folder of a registered version's artifacts (``embeddings``, ``index``, ``graph``, ...) and the version."""
    c = client(tracking_uri)
    try:
        mv = c.get_model_version(name, version) if version else c.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        raise LookupError(f"no model {name} {'version ' + version if version else '@' + alias} in the registry at "
                          f"{tracking_uri} ({e.message})") from None
    return Path(download_artifacts(artifact_uri=f"{mv.source}/artifacts", tracking_uri=tracking_uri)), mv


def graph_distance(tracking_uri: str, name: str, a: str, b: str, version: str | None = None,
                   weighted: bool = False) -> dict:
    """NN-graph distance between two items (by key, or by id when the key is an integer) of a registered model.

    The shortest path over the exported k-nearest-neighbour graph (undirected):
    hops, or the summed edge lengths (1 - cosine) with ``weighted``. ``inf`` when
    the two items are in different components.

    Raises:
        LookupError: unknown model, or a key that is not in the embeddings table.
    """
    from replearn.lib.store.embeddings_table import read_vectors
    from replearn.lib.store.knn_graph import nn_graph_distance, read_knn_graph

    folder, mv = registered_artifacts(tracking_uri, name, version=version)
    graphs = sorted(folder.glob("knn_graph*.parquet"))
    if not graphs:
        raise LookupError(f"{name} version {mv.version} was registered without a kNN graph; retrain it")
    keys, ids, _, _ = read_vectors(next(p for p in folder.iterdir() if p.name.endswith(".parquet")
                                        and not p.name.startswith("knn_graph")))
    id_of = {k: int(i) for k, i in zip(keys, ids)}

    def resolve(x: str) -> int:
        if x in id_of:
            return id_of[x]
        if x.lstrip("-").isdigit() and int(x) in set(int(i) for i in ids):
            return int(x)
        raise LookupError(f"{x!r} is neither a key nor an id of {name} version {mv.version}")

    src, dst, sim, meta = read_knn_graph(graphs[0])
    ia, ib = resolve(a), resolve(b)
    d = nn_graph_distance((src, dst, sim), ia, ib, metric=meta.get("metric", "cos"), weighted=weighted)
    return {"a": a, "b": b, "id_a": ia, "id_b": ib, "distance": float(d), "weighted": weighted,
            "k": meta.get("k"), "version": mv.version}
