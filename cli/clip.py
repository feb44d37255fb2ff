"""``replearn run clip`` (options generated from :class:`~replearn.flows.params.ClipParams`) and
``replearn search clip``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from replearn.cli import main as cli
from replearn.cli.options import generated_command
from replearn.flows.params import ClipParams

MODEL_NAME = ClipParams.model_fields["model_name"].default  # what `run` registers


def run_clip(json_out: Path | None = None, **options) -> None:
    """CLIP-style image-text model: train both towers, zero-shot + retrieval evaluation, export, index, register."""
    params = cli.params_from_options(ClipParams, options)
    s = cli.run_flow("replearn.flows.clip:clip_flow", params, json_out)
    t = Table(title="held-out pairs: cross-modal retrieval")
    for head in ("direction", "R@1", "R@5", "R@10"):
        t.add_column(head, no_wrap=True)
    for row in s["table"]:
        t.add_row(row["direction"], *(f"{row[k]:.3f}" for k in ("R@1", "R@5", "R@10")))
    cli.console.print(t)
    if s["zero_shot_accuracy"] is not None:
        cli.console.print(f"zero-shot top-1 accuracy: {s['zero_shot_accuracy']:.3f} (chance 0.100)")
    cli.print_outputs(s, s["embeddings"], s["index"])


cli.run_app.command("clip")(generated_command(run_clip, ClipParams))


@cli.search_app.command("clip")
def search_clip(
    text: Annotated[Optional[str], typer.Option(help="A sentence: the nearest images")] = None,
    image: Annotated[Optional[Path], typer.Option(help="An image file: the nearest captions")] = None,
    id: Annotated[Optional[int], typer.Option("--id", help="An exported image's row id: the nearest captions")] = None,
    topn: cli.TopN = 10,
    home: cli.Home = None,
    model_name: cli.ModelName = MODEL_NAME,
    version: cli.Version = None,
) -> None:
    """Cross-modal search with the registered two-tower model: text -> images, image -> captions."""
    from replearn.infra.tracking import tracking_uri
    from replearn.serving.query import query_registered

    if sum(x is not None for x in (text, image, id)) != 1:
        cli.fail("give exactly one of --text SENTENCE, --image PATH or --id N")
    cli.check_image_file(image)
    query = {"text": text} if text is not None else {"image": str(image)} if image is not None else {"id": id}
    try:
        out, mv = query_registered(tracking_uri(home), model_name, "clip", [{**query, "topn": topn}],
                                   version=version)
    except (LookupError, ValueError, OSError) as e:
        cli.fail(str(e))
    shown = text if text is not None else image if image is not None else f"id {id}"
    t = Table(title=f"{model_name} v{mv.version}: nearest to {shown!s}")
    for c in ("rank", "id", "label", "cosine", "key"):
        t.add_column(c)
    for r in out:
        t.add_row(str(r["rank"]), str(r["id"]), str(r["label"] or ""), f"{r['similarity']:.4f}", str(r["key"]))
    cli.console.print(t)
