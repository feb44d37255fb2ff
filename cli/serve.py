"""``replearn serve`` (a registered model over HTTP) and ``replearn search graph`` (any family's kNN graph)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from replearn.cli import main as cli
from replearn.flows.params import Word2VecParams

MODEL_NAME = Word2VecParams.model_fields["model_name"].default  # `run word2vec` registers this name


@cli.search_app.command("graph")
def search_graph(
    a: Annotated[str, typer.Argument(help="First item: a key (word, image path, caption) or a row id")],
    b: Annotated[str, typer.Argument(help="Second item")],
    model_name: cli.ModelName = MODEL_NAME,
    weighted: Annotated[bool, typer.Option(help="Sum of edge lengths (1 - cosine) instead of hops")] = False,
    home: cli.Home = None,
    version: cli.Version = None,
) -> None:
    """NN-graph distance: the shortest path between two items over the exported k-nearest-neighbour graph."""
    from replearn.infra.tracking import tracking_uri
    from replearn.serving.graph_query import graph_distance_in
    from replearn.serving.resolve import resolve_version

    try:
        rv = resolve_version(tracking_uri(home), model_name, version=version, hint=False)
        r = graph_distance_in(Path(rv.folder) / "artifacts", model_name, rv.version, a, b, weighted=weighted)
    except (LookupError, ValueError) as e:
        cli.fail(str(e))
    unit = "summed 1 - cosine" if weighted else "hops"
    cli.console.print(f"{a} -> {b}: {r['distance']:g} {unit} over the {r['k']}-NN graph of {model_name} "
                      f"v{r['version']}", highlight=False)


@cli.app.command("serve")
def serve(
    model_name: cli.ModelName = MODEL_NAME,
    alias: Annotated[str, typer.Option(help="Registry alias to serve")] = "champion",
    version: Annotated[Optional[str], typer.Option(help="Serve this version instead of the alias")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it on this machine")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 5001,
    home: cli.Home = None,
) -> None:
    """Serve a registered model over HTTP (MLflow scoring server: POST /invocations, GET /ping), with bounded
    request and error bodies (serving/http_app.py)."""
    import uvicorn
    from mlflow.exceptions import MlflowException

    from replearn.infra.tracking import tracking_uri
    from replearn.serving.http_app import scoring_app

    uri = tracking_uri(home)
    os.environ["MLFLOW_TRACKING_URI"] = uri  # the registry the models:/ URI is resolved in
    model_uri = f"models:/{model_name}/{version}" if version else f"models:/{model_name}@{alias}"
    try:
        app = scoring_app(model_uri)
    except MlflowException as e:
        cli.fail(f"cannot load {model_uri} from {uri}: {e.message}")
    cli.console.print(f"serving {model_uri} from {uri} on http://{host}:{port}/invocations", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")
