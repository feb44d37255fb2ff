"""``replearn run multisense`` (options generated from :class:`~replearn.flows.params.MultisenseParams`) and
``replearn disambiguate``."""

from __future__ import annotations

from pathlib import Path

from typing import Annotated

import typer
from rich.table import Table

from replearn.cli import main as cli
from replearn.cli.options import generated_command
from replearn.flows.params import MultisenseParams

MODEL_NAME = MultisenseParams.model_fields["model_name"].default  # what `run` registers


def run_multisense(json_out: Path | None = None, **options) -> None:
    """Multi-sense word vectors: a latent sense per occurrence with a learned prior, trained by EM."""
    params = cli.params_from_options(MultisenseParams, options)
    s = cli.run_flow("replearn.flows.multisense:multisense_flow", params, json_out)
    if cli.print_nothing_new(s):
        return
    _print_summary(s)
    cli.print_outputs(s, s["embeddings"], s["index"])


cli.run_app.command("multisense")(generated_command(run_multisense, MultisenseParams))


def _print_summary(s: dict) -> None:
    t = Table(title="multi-sense evaluation")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in s["metrics"].items():
        t.add_row(k, f"{v:.3f}")
    t.add_row("senses pruned", str(len(s["pruned"])))
    cli.console.print(t)
    nb = Table(title="neighbours of each sense")
    for col in ("word", "sense", "prior", "neighbours"):
        nb.add_column(col)
    for r in s["neighbours"]:
        nb.add_row(r["word"], str(r["sense"]), f"{r['prior']:.2f}", r["neighbours"])
    cli.console.print(nb)
    if s["pseudowords"]:
        pw = Table(title="pseudo-words: original word recovered from the posterior (senses mapped to words on 80 % of "
                         "the held-out occurrences, scored on the rest)")
        cols = ("pseudo_word", "senses", "prior", "scored_on", "mapped", "one_to_one", "majority")
        for col in cols:
            pw.add_column(col)
        for r in s["pseudowords"]:
            pw.add_row(*(str(r[c]) for c in cols))
        cli.console.print(pw)


@cli.app.command("disambiguate")
def disambiguate(
    word: Annotated[str, typer.Option(help="The ambiguous word")],
    context: Annotated[str, typer.Option(help="Words around it")] = "",
    topn: Annotated[int, typer.Option(min=1, help="Neighbours per sense")] = 8,
    home: cli.Home = None,
    model_name: Annotated[str, typer.Option(help="Registered multi-sense model")] = MODEL_NAME,
    version: cli.Version = None,
) -> None:
    """Posterior over the senses of WORD in CONTEXT, and each sense's nearest words (registered multi-sense model)."""
    from replearn.infra.tracking import tracking_uri
    from replearn.serving.query import query_registered

    try:
        out, mv = query_registered(tracking_uri(home), model_name, "multisense",
                                   [{"word": word, "context": context, "topn": topn}], version=version)
    except (LookupError, ValueError, OSError) as e:
        cli.fail(str(e))
    t = Table(title=f"{model_name} v{mv.version}: {word!r} in {context!r}")
    for c in ("sense", "prior", "posterior", "neighbours"):
        t.add_column(c)
    for r in out:
        t.add_row(str(r["sense"]), f"{r['prior']:.3f}", f"{r['posterior']:.3f}", r["neighbours"])
    cli.console.print(t)
    if out and out[0]["note"]:
        cli.console.print(f"note: {out[0]['note']}", highlight=False)
