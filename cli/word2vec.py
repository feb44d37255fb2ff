"""``replearn run word2vec`` (options generated from :class:`~replearn.flows.params.Word2VecParams`) and
``replearn search word2vec``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from replearn.cli import main as cli
from replearn.cli.options import generated_command
from replearn.flows.params import Word2VecParams

MODEL_NAME = Word2VecParams.model_fields["model_name"].default  # what `run` registers


def run_word2vec(json_out: Path | None = None, **options) -> None:
    """Train skip-gram word vectors: tokenize, vocabulary, train, evaluate, export Parquet, FAISS index, register."""
    params = cli.params_from_options(Word2VecParams, options)
    _print_summary(cli.run_flow("replearn.flows.word2vec:word2vec_flow", params, json_out))


cli.run_app.command("word2vec")(generated_command(run_word2vec, Word2VecParams))


def _print_summary(s: dict) -> None:
    if cli.print_nothing_new(s):
        return
    m = s["metrics"]
    t = Table(title="word2vec evaluation")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("analogy total (3CosAdd, questions in vocab)", f"{m['analogy_total']:.3f}")
    t.add_row("analogy score (all 19,544 questions; registry)", f"{m['analogy_score']:.4f}")
    t.add_row("analogy semantic", f"{m['analogy_semantic']:.3f}")
    t.add_row("analogy syntactic", f"{m['analogy_syntactic']:.3f}")
    t.add_row("analogy questions in vocab / OOV", f"{int(m['analogy_n_questions'])} / {int(m['analogy_n_oov'])}")
    t.add_row("WordSim-353 Spearman", f"{m['wordsim353_spearman']:.3f}")
    t.add_row("SimLex-999 Spearman", f"{m['simlex999_spearman']:.3f}")
    t.add_row("corpus words / s", f"{s['words_per_second']:,.0f}")
    cli.console.print(t)
    nb = Table(title="nearest neighbours")
    for col in ("probe", "neighbours"):
        nb.add_column(col)
    probes: dict[str, list[str]] = {}
    for r in s["neighbours"]:
        probes.setdefault(r["probe"], []).append(f"{r['neighbour']} ({r['similarity']:.2f})")
    for p, ns in probes.items():
        nb.add_row(p, ", ".join(ns))
    cli.console.print(nb)
    cli.print_outputs(s, s["embeddings"], f"{s['index']} (recall@10 {s['recall_at_10']:.3f})")


@cli.search_app.command("word2vec")
def search_word2vec(
    word: Annotated[Optional[str], typer.Option(help="Nearest neighbours of this word")] = None,
    positive: Annotated[Optional[list[str]], typer.Option(help="Words added to the query (e.g. --positive king woman)")] = None,
    negative: Annotated[Optional[list[str]], typer.Option(help="Words subtracted (e.g. --negative man)")] = None,
    topn: cli.TopN = 10,
    home: cli.Home = None,
    model_name: cli.ModelName = MODEL_NAME,
    version: cli.Version = None,
) -> None:
    """Nearest words (cosine) from the registered champion's FAISS index, gensim most_similar semantics."""
    from replearn.infra.tracking import tracking_uri
    from replearn.serving.query import query_registered

    pos = ([word] if word else []) + list(positive or [])
    if not pos and not negative:
        cli.fail("give --word WORD or --positive WORD... [--negative WORD...]")
    try:
        out, mv = query_registered(tracking_uri(home), model_name, "word2vec",
                                   [{"positive": " ".join(pos), "negative": " ".join(negative or []), "topn": topn}],
                                   version=version)
    except (LookupError, ValueError) as e:
        cli.fail(str(e))
    t = Table(title=f"{model_name} v{mv.version}: +{' +'.join(pos)}" + (f" -{' -'.join(negative)}" if negative else ""))
    t.add_column("rank", justify="right")
    t.add_column("word")
    t.add_column("cosine", justify="right")
    for r in out:
        t.add_row(str(r["rank"]), r["word"], f"{r['similarity']:.4f}")
    cli.console.print(t)
