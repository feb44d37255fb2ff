"""The ``replearn`` command line (typer)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pydantic import ValidationError

from replearn.flows.params import ClipParams, MetricParams, MultisenseParams, Word2VecParams
from replearn.lib.errors import ReplearnInputError

app = typer.Typer(help="replearn: learn representations and make them useful (Prefect flows, MLflow tracking).",
                  no_args_is_help=True, pretty_exceptions_enable=False)
run_app = typer.Typer(help="Run a training flow (a Prefect flow run, tracked in MLflow).", no_args_is_help=True)
search_app = typer.Typer(help="Query a registered model (MLflow registry alias 'champion' by default).",
                         no_args_is_help=True)
app.add_typer(run_app, name="run")
app.add_typer(search_app, name="search")
console = Console()

Home = Annotated[Optional[str], typer.Option(help="Data home (runs, checkpoints, MLflow store); default $REPLEARN_HOME or ./.replearn")]


@run_app.command("word2vec")
def run_word2vec(
    corpus: Annotated[Optional[Path], typer.Option(help="Text file, .gz/.bz2, folder of them, or Parquet. Default: the embedded corpus")] = None,
    text_column: Annotated[str, typer.Option(help="Text column of a Parquet corpus")] = "text",
    home: Home = None,
    min_count: Annotated[int, typer.Option(help="Drop words seen fewer times")] = 5,
    max_vocab: Annotated[Optional[int], typer.Option(help="Keep at most this many words")] = None,
    dim: Annotated[int, typer.Option(help="Embedding dimension")] = 100,
    window: Annotated[int, typer.Option(help="Maximum context window")] = 5,
    negative: Annotated[int, typer.Option(help="Noise words per positive pair")] = 5,
    sample: Annotated[float, typer.Option(help="Subsampling threshold (0 = off)")] = 1e-3,
    epochs: Annotated[int, typer.Option(help="Passes over the corpus")] = 5,
    alpha: Annotated[float, typer.Option(help="Initial learning rate")] = 0.025,
    objective: Annotated[str, typer.Option(help="negative_sampling or softmax (small vocabularies)")] = "negative_sampling",
    threads: Annotated[int, typer.Option(help="Training threads")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    export: Annotated[list[str], typer.Option(help="Matrices to export: input, context, mean (repeatable)")] = ["input"],
    model_name: Annotated[str, typer.Option(help="Registered model name")] = "replearn-word2vec",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the summary as JSON here")] = None,
    runner: Annotated[str, typer.Option(help="Where tokenization and export shards run: local (thread pool), dask "
                                             "or ray (pip install -e '.[ray]'); same outputs")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Existing cluster: tcp://host:8786 (Dask) or ray://host:10001 "
                                                        "(Ray); default: a local cluster for this run")] = None,
    workers: Annotated[int, typer.Option(help="Processes of the local Dask / Ray cluster; export shards")] = 2,
) -> None:
    """Train skip-gram word vectors: tokenize, vocabulary, train, evaluate, export Parquet, FAISS index, register."""
    from replearn.infra.runners import api_for_workers, check_cluster, task_runner

    try:
        params = Word2VecParams(corpus=str(corpus) if corpus else None, text_column=text_column, home=home,
                                min_count=min_count, max_vocab=max_vocab, dim=dim, window=window, negative=negative,
                                sample=sample, epochs=epochs, alpha=alpha, objective=objective, threads=threads,
                                seed=seed, export_matrices=export, model_name=model_name, runner=runner,
                                address=address, workers=workers)
        if corpus is not None:
            from replearn.lib.text.corpus_files import list_corpus_files

            list_corpus_files(corpus)  # fail in a second, before the Prefect API starts
        flow_runner = task_runner(params.runner, params.address, params.workers)  # says what to install if missing
        check_cluster(params.runner, params.address)  # an existing cluster: reachable, with workers, a Prefect server
    except ValidationError as e:
        _fail(_validation_message(e))
    except ReplearnInputError as e:
        _fail(str(e))
    from replearn.flows.word2vec import word2vec_flow

    _before_flow()
    try:
        with api_for_workers() if params.runner != "local" else contextlib.nullcontext():
            summary = word2vec_flow.with_options(task_runner=flow_runner)(params)
    except ValueError as e:  # bad input found inside the flow: one clear line, no traceback
        _fail(str(e))
    _print_summary(summary)
    if json_out:
        json_out.write_text(json.dumps(summary, indent=2, default=str))


def _validation_message(e: ValidationError) -> str:
    def msg(err: dict) -> str:
        if err["type"] == "string_pattern_mismatch":  # the SafeName pattern, in words
            return (f"{err['input']!r} is not a safe name: use letters, digits, '_', '-' and single dots between "
                    "them, starting with a letter or digit (no '/', no '..')")
        if err["type"] == "value_error" and "error" in err.get("ctx", {}):  # our own validators' words, no prefix
            return str(err["ctx"]["error"])
        return err["msg"]

    return "; ".join(f"--{'-'.join(str(x) for x in err['loc']).replace('_', '-')}: {msg(err)}" for err in e.errors())


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)  # "[ray]" is no style
    raise typer.Exit(2)


class _QuietInputErrors(logging.Filter):
    """Bad user input found inside a flow: the CLI prints it once as ``error: ...``; Prefect's repeats go.

    Prefect logs a failed task run with its traceback, then the failed states
    of the task, of every task that waited on it and of the flow, each
    repeating the message (ERROR and INFO). The first record carrying a
    :class:`ReplearnInputError` is dropped and its text remembered; later
    records that repeat the text are dropped too. Real bugs (any other
    exception) keep their records and tracebacks. One instance per CLI call.
    """

    def __init__(self) -> None:
        super().__init__()
        self._texts: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ReplearnInputError):
            # the start of the message, up to any character that repr() would escape
            self._texts.append(re.split(r"[\\\n]", str(record.exc_info[1]))[0][:60])
            return False
        if record.levelno >= logging.INFO and self._texts:  # e.g. "Finished in state Failed(...)"
            message = record.getMessage()
            return not any(t and t in message for t in self._texts)
        return True


def _before_flow() -> None:
    """A configured Prefect API that does not answer: one error line now, not a traceback from inside Prefect."""
    from replearn.infra.runners import check_prefect_api

    try:
        check_prefect_api()
    except ReplearnInputError as e:
        _fail(str(e))
    _quiet_input_errors()


def _quiet_input_errors() -> None:
    quiet = _QuietInputErrors()
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logging.getLogger(name).addFilter(quiet)


def _print_summary(s: dict) -> None:
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
    console.print(t)
    nb = Table(title="nearest neighbours")
    for col in ("probe", "neighbours"):
        nb.add_column(col)
    probes: dict[str, list[str]] = {}
    for r in s["neighbours"]:
        probes.setdefault(r["probe"], []).append(f"{r['neighbour']} ({r['similarity']:.2f})")
    for p, ns in probes.items():
        nb.add_row(p, ", ".join(ns))
    console.print(nb)
    _print_outputs(s, s["embeddings"], f"{s['index']} (recall@10 {s['recall_at_10']:.3f})")


def _print_outputs(s: dict, embeddings: str, index: str) -> None:
    """Where a flow run put its outputs: Parquet, FAISS index, MLflow run, registered version."""
    model = s["model"]
    for name, value in (("embeddings", embeddings), ("index", index),
                        ("MLflow run", f"{s['mlflow_run_id']} ({s['tracking_uri']})"),
                        ("registered", f"{model['name']} version {model['version']}"
                                       f"{' -> champion' if model['champion'] else ' (challenger: ' + model.get('reason', 'champion kept') + ')'}")):
        console.print(f"{name:<11}: {value}", soft_wrap=True, highlight=False)


@search_app.command("word2vec")
def search_word2vec(
    word: Annotated[Optional[str], typer.Option(help="Nearest neighbours of this word")] = None,
    positive: Annotated[Optional[list[str]], typer.Option(help="Words added to the query (e.g. --positive king woman)")] = None,
    negative: Annotated[Optional[list[str]], typer.Option(help="Words subtracted (e.g. --negative man)")] = None,
    topn: Annotated[int, typer.Option(min=1, help="Results to show")] = 10,
    home: Home = None,
    model_name: Annotated[str, typer.Option(help="Registered model name")] = "replearn-word2vec",
    version: Annotated[Optional[str], typer.Option(help="Model version (default: the 'champion' alias)")] = None,
) -> None:
    """Nearest words (cosine) from the registered champion's FAISS index, gensim most_similar semantics."""
    import pandas as pd

    from replearn.serving.registry import load_registered
    from replearn.infra.tracking import tracking_uri

    pos = ([word] if word else []) + list(positive or [])
    if not pos and not negative:
        _fail("give --word WORD or --positive WORD... [--negative WORD...]")
    try:
        model, mv = load_registered(tracking_uri(home), model_name, version=version)
        out = model.predict(pd.DataFrame([{"positive": " ".join(pos), "negative": " ".join(negative or []),
                                           "topn": topn}]))
    except (LookupError, ValueError) as e:
        _fail(str(e))
    t = Table(title=f"{model_name} v{mv.version}: +{' +'.join(pos)}" + (f" -{' -'.join(negative)}" if negative else ""))
    t.add_column("rank", justify="right")
    t.add_column("word")
    t.add_column("cosine", justify="right")
    for r in out.itertuples():
        t.add_row(str(r.rank), r.word, f"{r.similarity:.4f}")
    console.print(t)


@run_app.command("metric")
def run_metric(
    data: Annotated[str, typer.Option(help="'digits' (sklearn 8x8), 'mnist:<folder>', a folder of class sub-folders, or Parquet")] = "digits",
    image_column: Annotated[str, typer.Option(help="Parquet column of image bytes or paths")] = "image",
    label_column: Annotated[str, typer.Option(help="Parquet column of labels")] = "label",
    train_classes: Annotated[int, typer.Option(help="The first N classes train; the rest are evaluated (unseen)")] = 5,
    loss: Annotated[str, typer.Option(help="triplet_hinge, triplet_max, triplet_mean, smooth_softplus, smooth_softmax, infonce, supcon")] = "supcon",
    miner: Annotated[str, typer.Option(help="all, batch_hard, semi_hard (triplet losses)")] = "batch_hard",
    encoder: Annotated[str, typer.Option(help="cnn or mlp")] = "cnn",
    dim: Annotated[int, typer.Option(help="Embedding dimension")] = 32,
    epochs: Annotated[int, typer.Option(help="Training epochs")] = 10,
    batch_size: Annotated[int, typer.Option(help="Batch size (P classes x K images)")] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    augment: Annotated[bool, typer.Option(help="Random small rotations, shifts, erasing and noise while training "
                                                "(InfoNCE always augments)")] = True,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    home: Home = None,
    model_name: Annotated[str, typer.Option(help="Registered model name")] = "replearn-metric",
) -> None:
    """Metric learning on images: train an encoder, evaluate on unseen classes, export, index, register."""
    try:
        params = MetricParams(data=data, image_column=image_column, label_column=label_column,
                              train_classes=train_classes, loss=loss, miner=miner, encoder=encoder, dim=dim,
                              epochs=epochs, batch_size=batch_size, lr=lr, augment=augment, seed=seed, home=home,
                              model_name=model_name)
    except ValidationError as e:
        _fail(_validation_message(e))
    from replearn.flows.metric import metric_flow

    _before_flow()
    try:
        s = metric_flow(params)
    except ValueError as e:
        _fail(str(e))
    _metric_tables(s["table"])
    _print_outputs(s, s["embeddings"], s["index"])


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
    console.print(t)
    t = Table(title="classifiers on all classes (accuracy)")
    for head in ("features", "logreg", "linear SVM", "kNN", "fine-tuned"):
        t.add_column(head, no_wrap=True)
    for row in rows:
        if "map_at_r" not in row or "logreg_accuracy" in row:
            t.add_row(row["features"], fmt(row.get("logreg_accuracy")), fmt(row.get("linear_svm_accuracy")),
                      fmt(row.get("knn_accuracy")), fmt(row.get("accuracy")))
    console.print(t)


@search_app.command("metric")
def search_metric(
    image: Annotated[Optional[Path], typer.Option(help="An image file: its nearest exported images")] = None,
    id: Annotated[Optional[int], typer.Option("--id", help="A row id of the exported embeddings")] = None,
    topn: Annotated[int, typer.Option(min=1, help="Results to show")] = 10,
    home: Home = None,
    model_name: Annotated[str, typer.Option(help="Registered model name")] = "replearn-metric",
    version: Annotated[Optional[str], typer.Option(help="Model version (default: the 'champion' alias)")] = None,
) -> None:
    """Nearest images (with labels) from the registered champion's FAISS index."""
    import pandas as pd

    from replearn.serving.registry import load_registered
    from replearn.infra.tracking import tracking_uri

    if (image is None) == (id is None):
        _fail("give exactly one of --image PATH or --id N")
    if image is not None and not image.exists():
        _fail(f"image {image} not found")
    if image is not None and image.is_file() and image.stat().st_size == 0:
        _fail(f"image {image} is empty (0 bytes); pass a PNG, JPEG or other image file")
    try:
        model, mv = load_registered(tracking_uri(home), model_name, version=version)
        query = {"image": str(image), "topn": topn} if image is not None else {"id": id, "topn": topn}
        out = model.predict(pd.DataFrame([query]))
    except (LookupError, ValueError, OSError) as e:
        _fail(str(e))
    t = Table(title=f"{model_name} v{mv.version}: neighbours of {image or f'id {id}'}")
    for c in ("rank", "id", "label", "cosine", "key"):
        t.add_column(c)
    for r in out.itertuples():
        t.add_row(str(r.rank), str(r.id), str(r.label), f"{r.similarity:.4f}", str(r.key))
    console.print(t)


@run_app.command("clip")
def run_clip(
    data: Annotated[str, typer.Option(help="'digits' (sklearn 8x8), 'mnist:<folder>' (captions generated), or "
                                           "Parquet / CSV of (image, caption)")] = "digits",
    image_column: Annotated[str, typer.Option(help="Column of image bytes or paths")] = "image",
    caption_column: Annotated[str, typer.Option(help="Column of captions")] = "caption",
    text_tower: Annotated[str, typer.Option(help="bag, transformer (from scratch) or lit (frozen MiniLM)")] = "bag",
    dim: Annotated[int, typer.Option(help="Shared embedding dimension")] = 64,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs (default 15 on 8x8 digits, else 4)")] = None,
    batch_size: Annotated[int, typer.Option(help="Pairs per batch")] = 256,
    lr: Annotated[float, typer.Option(help="AdamW learning rate")] = 2e-3,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    home: Home = None,
    model_name: Annotated[str, typer.Option(help="Registered model name")] = "replearn-clip",
) -> None:
    """CLIP-style image-text model: train both towers, zero-shot + retrieval evaluation, export, index, register."""
    try:
        params = ClipParams(data=data, image_column=image_column, caption_column=caption_column,
                            text_tower=text_tower, dim=dim, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                            home=home, model_name=model_name)
    except ValidationError as e:
        _fail(_validation_message(e))
    from replearn.flows.clip import clip_flow

    _before_flow()
    try:
        s = clip_flow(params)
    except (ValueError, ImportError) as e:
        _fail(str(e))
    t = Table(title="held-out pairs: cross-modal retrieval")
    for head in ("direction", "R@1", "R@5", "R@10"):
        t.add_column(head, no_wrap=True)
    for row in s["table"]:
        t.add_row(row["direction"], *(f"{row[k]:.3f}" for k in ("R@1", "R@5", "R@10")))
    console.print(t)
    if s["zero_shot_accuracy"] is not None:
        console.print(f"zero-shot top-1 accuracy: {s['zero_shot_accuracy']:.3f} (chance 0.100)")
    _print_outputs(s, s["embeddings"], s["index"])


@search_app.command("clip")
def search_clip(
    text: Annotated[Optional[str], typer.Option(help="A sentence: the nearest images")] = None,
    image: Annotated[Optional[Path], typer.Option(help="An image file: the nearest captions")] = None,
    id: Annotated[Optional[int], typer.Option("--id", help="An exported image's row id: the nearest captions")] = None,
    topn: Annotated[int, typer.Option(min=1, help="Results to show")] = 10,
    home: Home = None,
    model_name: Annotated[str, typer.Option(help="Registered model name")] = "replearn-clip",
    version: Annotated[Optional[str], typer.Option(help="Model version (default: the 'champion' alias)")] = None,
) -> None:
    """Cross-modal search with the registered two-tower model: text -> images, image -> captions."""
    import pandas as pd

    from replearn.serving.registry import load_registered
    from replearn.infra.tracking import tracking_uri

    if sum(x is not None for x in (text, image, id)) != 1:
        _fail("give exactly one of --text SENTENCE, --image PATH or --id N")
    if image is not None and not image.exists():
        _fail(f"image {image} not found")
    if image is not None and image.is_file() and image.stat().st_size == 0:
        _fail(f"image {image} is empty (0 bytes); pass a PNG, JPEG or other image file")
    query = {"text": text} if text is not None else {"image": str(image)} if image is not None else {"id": id}
    try:
        model, mv = load_registered(tracking_uri(home), model_name, version=version)
        out = model.predict(pd.DataFrame([{**query, "topn": topn}]))
    except (LookupError, ValueError, OSError) as e:
        _fail(str(e))
    shown = text if text is not None else image if image is not None else f"id {id}"
    t = Table(title=f"{model_name} v{mv.version}: nearest to {shown!s}")
    for c in ("rank", "id", "label", "cosine", "key"):
        t.add_column(c)
    for r in out.itertuples():
        t.add_row(str(r.rank), str(r.id), str(r.label or ""), f"{r.similarity:.4f}", str(r.key))
    console.print(t)


@search_app.command("graph")
def search_graph(
    a: Annotated[str, typer.Argument(help="First item: a key (word, image path, caption) or a row id")],
    b: Annotated[str, typer.Argument(help="Second item")],
    model_name: Annotated[str, typer.Option(help="Registered model name")] = "replearn-word2vec",
    weighted: Annotated[bool, typer.Option(help="Sum of edge lengths (1 - cosine) instead of hops")] = False,
    home: Home = None,
    version: Annotated[Optional[str], typer.Option(help="Model version (default: the 'champion' alias)")] = None,
) -> None:
    """NN-graph distance: the shortest path between two items over the exported k-nearest-neighbour graph."""
    from replearn.serving.registry import graph_distance
    from replearn.infra.tracking import tracking_uri

    try:
        r = graph_distance(tracking_uri(home), model_name, a, b, version=version, weighted=weighted)
    except (LookupError, ValueError) as e:
        _fail(str(e))
    unit = "summed 1 - cosine" if weighted else "hops"
    console.print(f"{a} -> {b}: {r['distance']:g} {unit} over the {r['k']}-NN graph of {model_name} "
                  f"v{r['version']}", highlight=False)


@app.command("serve")
def serve(
    model_name: Annotated[str, typer.Option(help="Registered model name")] = "replearn-word2vec",
    alias: Annotated[str, typer.Option(help="Registry alias to serve")] = "champion",
    version: Annotated[Optional[str], typer.Option(help="Serve this version instead of the alias")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it on this machine")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 5001,
    home: Home = None,
) -> None:
    """Serve a registered model over HTTP (MLflow scoring server: POST /invocations, GET /ping)."""
    import shutil
    import subprocess

    from replearn.infra.tracking import tracking_uri

    uri = tracking_uri(home)
    model_uri = f"models:/{model_name}/{version}" if version else f"models:/{model_name}@{alias}"
    bindir = str(Path(sys.executable).parent)            # uvicorn lives beside this interpreter
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    mlflow_cli = shutil.which("mlflow", path=env["PATH"]) or "mlflow"
    console.print(f"serving {model_uri} from {uri} on http://{host}:{port}/invocations", highlight=False)
    proc = subprocess.run([mlflow_cli, "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", host,
                           "-p", str(port)], env=env)
    raise typer.Exit(proc.returncode)


@run_app.command("multisense")
def run_multisense(
    corpus: Annotated[Optional[str], typer.Option(help="Text file, .gz/.bz2, folder, or Parquet (default: embedded corpus)")] = None,
    text_column: Annotated[str, typer.Option(help="Text column of a Parquet corpus")] = "text",
    min_count: Annotated[int, typer.Option(help="Drop words seen fewer times")] = 5,
    max_senses: Annotated[int, typer.Option(help="Most senses per word (frequent words get more)")] = 5,
    sense_min_count: Annotated[int, typer.Option(help="Words seen fewer times keep one sense")] = 200,
    prune_threshold: Annotated[float, typer.Option(help="Prune senses whose prior falls below this")] = 0.02,
    dim: Annotated[int, typer.Option(help="Vector dimension")] = 100,
    window: Annotated[int, typer.Option(help="Maximum context window")] = 5,
    epochs: Annotated[int, typer.Option(help="Training epochs (the first is plain skip-gram)")] = 4,
    threads: Annotated[int, typer.Option(help="Training threads")] = 2,
    pseudo_pairs: Annotated[int, typer.Option(help="Pseudo-word pairs to merge and recover (0 = off)")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    home: Home = None,
    model_name: Annotated[str, typer.Option(help="Registered model name")] = "replearn-multisense",
) -> None:
    """Multi-sense word vectors: a latent sense per occurrence with a learned prior, trained by EM."""
    try:
        params = MultisenseParams(corpus=corpus, text_column=text_column, min_count=min_count, max_senses=max_senses,
                                  sense_min_count=sense_min_count, prune_threshold=prune_threshold, dim=dim,
                                  window=window, epochs=epochs, threads=threads, pseudo_pairs=pseudo_pairs,
                                  seed=seed, home=home, model_name=model_name)
    except ValidationError as e:
        _fail(_validation_message(e))
    from replearn.flows.multisense import multisense_flow

    _before_flow()
    try:
        s = multisense_flow(params)
    except ValueError as e:
        _fail(str(e))
    t = Table(title="multi-sense evaluation")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in s["metrics"].items():
        t.add_row(k, f"{v:.3f}")
    t.add_row("senses pruned", str(len(s["pruned"])))
    console.print(t)
    nb = Table(title="neighbours of each sense")
    for col in ("word", "sense", "prior", "neighbours"):
        nb.add_column(col)
    for r in s["neighbours"]:
        nb.add_row(r["word"], str(r["sense"]), f"{r['prior']:.2f}", r["neighbours"])
    console.print(nb)
    if s["pseudowords"]:
        pw = Table(title="pseudo-words: original word recovered from the posterior")
        for col in ("pseudo_word", "senses", "prior", "held_out", "accuracy", "majority"):
            pw.add_column(col)
        for r in s["pseudowords"]:
            pw.add_row(*(str(r[c]) for c in ("pseudo_word", "senses", "prior", "held_out", "accuracy", "majority")))
        console.print(pw)
    _print_outputs(s, s["embeddings"], s["index"])


@app.command("disambiguate")
def disambiguate(
    word: Annotated[str, typer.Option(help="The ambiguous word")],
    context: Annotated[str, typer.Option(help="Words around it")] = "",
    topn: Annotated[int, typer.Option(min=1, help="Neighbours per sense")] = 8,
    home: Home = None,
    model_name: Annotated[str, typer.Option(help="Registered multi-sense model")] = "replearn-multisense",
    version: Annotated[Optional[str], typer.Option(help="Model version (default: the 'champion' alias)")] = None,
) -> None:
    """Posterior over the senses of WORD in CONTEXT, and each sense's nearest words (registered multi-sense model)."""
    import pandas as pd

    from replearn.serving.registry import load_registered
    from replearn.infra.tracking import tracking_uri

    try:
        model, mv = load_registered(tracking_uri(home), model_name, version=version)
        out = model.predict(pd.DataFrame([{"word": word, "context": context, "topn": topn}]))
    except (LookupError, ValueError, OSError) as e:
        _fail(str(e))
    t = Table(title=f"{model_name} v{mv.version}: {word!r} in {context!r}")
    for c in ("sense", "prior", "posterior", "neighbours"):
        t.add_column(c)
    for r in out.itertuples():
        t.add_row(str(r.sense), f"{r.prior:.3f}", f"{r.posterior:.3f}", r.neighbours)
    console.print(t)
    if len(out) and out["note"].iloc[0]:
        console.print(f"note: {out['note'].iloc[0]}", highlight=False)


MULTI_VALUE_OPTIONS = ("--positive", "--negative", "--export")


def expand_multi_value_options(argv: list[str]) -> list[str]:
    """Turn ``--positive king woman --negative man`` into repeated options typer understands."""
    out: list[str] = []
    current: str | None = None
    for arg in argv:
        if arg.startswith("-"):
            current = arg if arg in MULTI_VALUE_OPTIONS else None
            out.append(arg)
        elif current is not None and out and out[-1] != current:
            out.extend([current, arg])
        else:
            out.append(arg)
    return out


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds Prefect's context, so its temporary API server is stopped too


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the temporary local API can take longer than Prefect's 20 s to start on a loaded 2-core machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    signal.signal(signal.SIGTERM, _terminate)
    app(args=expand_multi_value_options(sys.argv[1:]), prog_name="replearn")


if __name__ == "__main__":
    main()
