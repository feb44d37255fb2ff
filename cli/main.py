"""The ``replearn`` command line (typer): the app, shared helpers (errors, summaries, signals) and the entry point.

The commands live one module per family (:mod:`.word2vec`, :mod:`.metric`,
:mod:`.clip`, :mod:`.multisense`) and :mod:`.serve` (HTTP serving, graph
search); each ``replearn run FAMILY`` takes the options generated from the
family's parameters model (:mod:`.options`). The CLI calls flows, serving and
infrastructure only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape

from replearn.cli.options import field_values, flag, list_flags
from replearn.flows.params import ClipParams, MetricParams, MultisenseParams, Word2VecParams
from replearn.infra.quiet import apply_quiet_env
from replearn.lib.errors import ReplearnInputError, explain_os_error, is_explained_os_error

app = typer.Typer(help="replearn: learn representations and make them useful (Prefect flows, MLflow tracking).",
                  no_args_is_help=True, pretty_exceptions_enable=False)
run_app = typer.Typer(help="Run a training flow (a Prefect flow run, tracked in MLflow).", no_args_is_help=True)
search_app = typer.Typer(help="Query a registered model (MLflow registry alias 'champion' by default).",
                         no_args_is_help=True)
app.add_typer(run_app, name="run")
app.add_typer(search_app, name="search")
console = Console()
#: Error lines go to stderr, so ``replearn ... > out.txt`` still shows them and scripts can tell them apart.
err_console = Console(stderr=True)

Home = Annotated[Optional[str], typer.Option(help="Data home (runs, checkpoints, MLflow store); default $REPLEARN_HOME or ./.replearn")]
#: The options every query command shares (the model name's default is each family's own).
TopN = Annotated[int, typer.Option(min=1, help="Results to show")]
ModelName = Annotated[str, typer.Option(help="Registered model name")]
Version = Annotated[Optional[str], typer.Option(help="Model version (default: the 'champion' alias)")]


def validation_message(e: ValidationError) -> str:
    """One line per invalid option: ``--dim: Input should be greater than or equal to 1; --model-name: ...``."""
    def msg(err: dict) -> str:
        if err["type"] == "string_pattern_mismatch" and err["loc"] and err["loc"][0] == "init_from":
            return (f"{err['input']!r} names no registered version: give NAME@ALIAS (replearn-word2vec@champion, "
                    "@latest) or NAME@VERSION (replearn-word2vec@3)")
        if err["type"] == "string_pattern_mismatch":  # the SafeName pattern, in words
            return (f"{err['input']!r} is not a safe name: use letters, digits, '_', '-' and single dots between "
                    "them, starting with a letter or digit (no '/', no '..')")
        if err["type"] == "value_error" and "error" in err.get("ctx", {}):  # our own validators' words, no prefix
            return str(err["ctx"]["error"])
        return err["msg"]

    def where(err: dict) -> str:  # the option, or nothing for a rule between options (its message names them)
        if not err["loc"]:
            return ""
        return flag(str(err["loc"][0])) + ": "  # a list's item index dropped: the option is repeatable

    return "; ".join(f"{where(err)}{msg(err)}" for err in e.errors())


def print_error(message: str) -> None:
    """Print ``error: message`` (one line, no markup) on stderr."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)  # "[ray]": no style


def fail(message: str) -> None:
    """:func:`print_error`, then exit with status 2 (inside a command)."""
    print_error(message)
    raise typer.Exit(2)


def check_image_file(image: Path | None) -> None:
    """Exit with a clear line for a missing or empty query image (``search metric``, ``search clip``)."""
    if image is not None and not image.exists():
        fail(f"image {image} not found")
    if image is not None and image.is_file() and image.stat().st_size == 0:
        fail(f"image {image} is empty (0 bytes); pass a PNG, JPEG or other image file")


def params_from_options(model: type[BaseModel], options: dict[str, Any]) -> Any:
    """The flow's parameters from the generated options, checked (``check_inputs``) before any flow starts.

    Exits with ``error: ...`` (status 2) on invalid values or inputs that cannot work (a missing corpus).
    """
    try:
        params = model(**field_values(model, options))
        if hasattr(params, "check_inputs"):
            params.check_inputs()  # fail in a second, before the Prefect API starts
        if getattr(params, "runner", "local") != "local":
            from replearn.infra.runners import check_cluster, task_runner

            task_runner(params.runner, params.address, params.workers)  # says what to install if missing
            check_cluster(params.runner, params.address)  # an existing cluster: reachable, with workers, a server
    except ValidationError as e:
        fail(validation_message(e))
    except ReplearnInputError as e:
        fail(str(e))
    return params


class _QuietInputErrors(logging.Filter):
    """Bad user input found inside a flow: the CLI prints it once as ``error: ...``; Prefect's repeats go.

    Prefect logs a failed task run with its traceback, then the failed states
    of the task, of every task that waited on it and of the flow, each
    repeating the message (ERROR and INFO). The first record carrying a
    :class:`ReplearnInputError`, or an ``OSError`` the user can fix (a full
    disk, a permission: ``lib/errors.explain_os_error``), is dropped and its text remembered; later
    records that repeat the text are dropped too. Real bugs (any other
    exception) keep their records and tracebacks. One instance per CLI call.
    """

    def __init__(self) -> None:
        super().__init__()
        self._texts: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and (isinstance(record.exc_info[1], ReplearnInputError)
                                or is_explained_os_error(record.exc_info[1])):
            # the start of the message, up to any character that repr() would escape
            self._texts.append(re.split(r"[\\\n]", str(record.exc_info[1]))[0][:60])
            return False
        if record.levelno >= logging.INFO and self._texts:  # e.g. "Finished in state Failed(...)"
            message = record.getMessage()
            return not any(t and t in message for t in self._texts)
        return True


def before_flow() -> None:
    """A configured Prefect API that does not answer, or a Prefect home that cannot be written: one error line
    now, not tracebacks from inside Prefect (whose temporary server retries for minutes on a read-only home)."""
    from replearn.infra.runners import check_prefect_api

    try:
        check_prefect_api()
        _check_prefect_home()
    except ReplearnInputError as e:
        fail(str(e))
    _quiet_input_errors()


def _check_prefect_home() -> None:
    """Raise :class:`ReplearnInputError` if ``$PREFECT_HOME`` (Prefect's database, the local API's and the spare's
    state) cannot be created or written."""
    import tempfile

    from replearn.infra.local_api import state_dir

    folder = state_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ReplearnInputError(f"Prefect's home {folder} cannot be written ({e.strerror or e}): set PREFECT_HOME "
                                 "to a writable folder (it holds Prefect's database and run history)") from None


def run_flow(flow_ref: str, params: Any, json_out: Path | None = None) -> dict:
    """Run the flow ``flow_ref`` (``"module:attribute"``) with ``params`` in this process and return its summary,
    also written to ``json_out`` as JSON when given; bad input found inside the flow (a ``ValueError``, or an
    ``ImportError`` naming an optional extra) ends the command with one ``error:`` line.

    The local Prefect API (:mod:`replearn.infra.local_api`) is started before the flow's module is imported,
    so a first command's server start overlaps the import of torch, numba and MLflow; so is a spare process
    for the next command (:mod:`replearn.infra.warm_client`), which imports on the other core meanwhile.
    """
    import importlib

    from replearn.infra.local_api import LocalApiError, prestart
    from replearn.infra.runners import process_local_prefect
    from replearn.infra.warm_client import ensure_spare

    before_flow()
    try:
        ensure_spare()  # the next command's process, its imports done by then (cli/spare.py)
        prestart()
        module, _, name = flow_ref.partition(":")
        flow = getattr(importlib.import_module(module), name)
        with process_local_prefect():
            summary = flow(params)
    except (ValueError, ImportError, LocalApiError) as e:
        fail(str(e))
    except OSError as e:  # a full disk, a permission: one line naming the path and the remedy
        if not is_explained_os_error(e):
            raise
        fail(explain_os_error(e))
    if json_out:
        json_out.write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _quiet_input_errors() -> None:
    quiet = _QuietInputErrors()
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logging.getLogger(name).addFilter(quiet)


def print_outputs(s: dict, embeddings: str, index: str) -> None:
    """Where a flow run put its outputs: Parquet, FAISS index, MLflow run (and its page in the MLflow UI, in the
    "Model training" view), registered version; for a warm start, what it continued and the what-changed report;
    with index mining, the mined table and its figures."""
    from replearn.infra.tracking import LOCAL_MLFLOW_UI, ui_run_url

    model = s["model"]
    uri = s["tracking_uri"]
    remote = uri.startswith(("http://", "https://"))
    # make ui-mlflow serves ./.replearn's store; another home's store needs its own URI
    default_store = uri == f"sqlite:///{Path('.replearn').resolve() / 'mlflow.db'}"
    how = "make ui-mlflow" if default_store else f"mlflow ui --port 5000 --backend-store-uri {uri}"
    page = ui_run_url(uri if remote else LOCAL_MLFLOW_UI, s.get("mlflow_experiment_id", ""),
                      s["mlflow_run_id"]) + ("" if remote else f"  (after {how})")
    rows = [("embeddings", embeddings), ("index", index), ("MLflow run", f"{s['mlflow_run_id']} ({uri})"),
            ("MLflow UI", page), ("registered", _registered_line(model))]
    if s.get("init_from"):  # a warm start: from what, on which files
        files = s.get("new_files")
        on = "" if files is None else f" on {len(files)} new file(s): {', '.join(Path(f).name for f in files[:5])}" + (
            ", ..." if len(files) > 5 else "")
        rows.insert(0, ("continued", f"{s['init_from']}{on}"))
    if s.get("what_changed"):
        rows.append(("changes", f"{s['what_changed']} (and report/what_changed.md, .png in the MLflow run)"))
    if m := s.get("mining"):  # --mining index / both: the mine stage's table and figures (metric, CLIP)
        rows.append(("mined", f"{s['stage_outputs']['mined']} ({int(m['triplets']):,} triplets, "
                              f"{100 * m['margin_violations']:.1f} % violate the margin, the guard removed "
                              f"{int(m['guard_removed']):,} same-class candidates; mining/hardness.png in the MLflow "
                              f"run)"))
    for name, value in rows:
        console.print(f"{name:<11}: {value}", soft_wrap=True, highlight=False)


def print_nothing_new(s: dict) -> bool:
    """Print a warm start's "no new files" outcome (the flow trained nothing: its summary has no metrics) and return
    True; False (nothing printed) for any other summary."""
    if "metrics" in s:
        return False
    console.print(f"no new files in {s['corpus']} since {s['init_from']}", highlight=False)
    console.print(f"{'registered':<11}: {_registered_line(s['model'])}", soft_wrap=True, highlight=False)
    return True


def _registered_line(model: dict) -> str:
    """The registry outcome of a run, in one line: a new champion, a challenger and why, or nothing new."""
    if not model.get("new_version", True):
        return f"{model['name']} version {model['version']} still stands: {model['reason']}"
    if model["champion"]:
        return f"{model['name']} version {model['version']} -> champion"
    return f"{model['name']} version {model['version']} (challenger: {model.get('reason', 'champion kept')})"


# --positive/--negative (search word2vec) and every list parameter of a flow (--export, --probes, ...)
MULTI_VALUE_OPTIONS = ("--positive", "--negative",
                       *list_flags((Word2VecParams, MetricParams, ClipParams, MultisenseParams)))


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
    apply_quiet_env(os.environ)  # the same environment the deployment worker runs with
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app(args=expand_multi_value_options(sys.argv[1:]), prog_name="replearn")
    except OSError as e:  # a full disk, a read-only home, in any command: one line naming the path and the remedy
        if not is_explained_os_error(e):
            raise
        print_error(explain_os_error(e))
        raise SystemExit(2) from None


# the commands register themselves on run_app / search_app / app (after the names above exist)
from replearn.cli import word2vec, metric, clip, serve, multisense, prefect_api  # noqa: E402,F401,I001

if __name__ == "__main__":
    main()
