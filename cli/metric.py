"""``replearn run metric`` (options generated from :class:`~replearn.flows.params.MetricParams`) and
``replearn search metric``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from replearn.cli import main as cli
from replearn.cli.options import generated_command
from replearn.flows.params import MetricParams

MODEL_NAME = MetricParams.model_fields["model_name"].default  # what `run` registers


def run_metric(json_out: Path | None = None, **options) -> None:
    """Metric learning on images: train an encoder, evaluate on unseen classes, export, index, register."""
    params = cli.params_from_options(MetricParams, options)
    s = cli.run_flow("replearn.flows.metric:metric_flow", params, json_out)
    _metric_tables(s["table"])
    cli.print_outputs(s, s["embeddings"], s["index"])


cli.run_app.command("metric")(generated_command(run_metric, MetricParams))


def _metric_tables(rows: list[dict]) -> None:
    """Two narrow tables (fit in 80 columns): retrieval on unseen classes, classifiers on all classes."""
    def fmt(v) -> str:
        return f"{v:.3f}" if isinstance(v, float) else ""

    t = Table(title="retrieval on unseen classes")
    for head in ("features", "MAP@R", "P@1", "R-Prec"):
        t.add_column(head, no_wrap=True)
    for row in rows:
        if "map_at_r" in row:
            t.add_row(row["features"], fmt(row["map_at_r"]), fmt(row.get("precision_at_1")), fmt(row.get("r_precision")))
    cli.console.print(t)
    t = Table(title="classifiers on all classes (accuracy)")
    for head in ("features", "logreg", "linear SVM", "kNN", "fine-tuned"):
        t.add_column(head, no_wrap=True)
    for row in rows:
        if "map_at_r" not in row or "logreg_accuracy" in row:
            t.add_row(row["features"], fmt(row.get("logreg_accuracy")), fmt(row.get("linear_svm_accuracy")),
                      fmt(row.get("knn_accuracy")), fmt(row.get("accuracy")))
    cli.console.print(t)


@cli.search_app.command("metric")
def search_metric(
    image: Annotated[Optional[Path], typer.Option(help="An image file: its nearest exported images")] = None,
    id: Annotated[Optional[int], typer.Option("--id", help="A row id of the exported embeddings")] = None,
    topn: cli.TopN = 10,
    home: cli.Home = None,
    model_name: cli.ModelName = MODEL_NAME,
    version: cli.Version = None,
) -> None:
    """Nearest images (with labels) from the registered champion's FAISS index."""
    from replearn.infra.tracking import tracking_uri
    from replearn.serving.query import query_registered

    if (image is None) == (id is None):
        cli.fail("give exactly one of --image PATH or --id N")
    cli.check_image_file(image)
    try:
        query = {"image": str(image), "topn": topn} if image is not None else {"id": id, "topn": topn}
        out, mv = query_registered(tracking_uri(home), model_name, "metric", [query], version=version)
    except (LookupError, ValueError, OSError) as e:
        cli.fail(str(e))
    t = Table(title=f"{model_name} v{mv.version}: neighbours of {image or f'id {id}'}")
    for c in ("rank", "id", "label", "cosine", "key"):
        t.add_column(c)
    for r in out:
        t.add_row(str(r["rank"]), str(r["id"]), str(r["label"]), f"{r['similarity']:.4f}", str(r["key"]))
    cli.console.print(t)
