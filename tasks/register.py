"""Prefect task: register a model in the MLflow model registry and promote it to ``champion`` if it is better."""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from pathlib import Path

import mlflow.pyfunc
from mlflow.entities import LoggedModelOutput, LoggedModelStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger

from replearn.infra.stage_outputs import Registered
from replearn.infra.tracking import LOCAL_MLFLOW_UI, client, ui_run_url
from replearn.serving import clip_model, image_model, multisense_model, word_vectors_model

CHAMPION = "champion"
#: Version tag: what the model is made of (:func:`artifacts_key`); a run whose artifacts have a key already
#: registered under the model's name registers no new version.
ARTIFACTS_KEY = "artifacts_key"
#: family -> (pyfunc class, its module: SIGNATURE and INPUT_EXAMPLE)
MODELS = {"word2vec": (word_vectors_model.WordVectorsModel, word_vectors_model),
          "metric": (image_model.ImageNeighboursModel, image_model),
          "clip": (clip_model.ClipSearchModel, clip_model),
          "multisense": (multisense_model.MultiSenseModel, multisense_model)}
PIP_REQUIREMENTS = ["replearn", "faiss-cpu", "pyarrow", "pandas", "numpy", "torch"]


def _champion_version(uri: str, name: str):
    """The version record the ``champion`` alias of ``name`` points to, or None."""
    try:
        return client(uri).get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _champion(uri: str, name: str, metric: str):
    """(champion version record or None, its value of ``metric`` or None)."""
    mv = _champion_version(uri, name)
    if mv is None:
        return None, None
    value = client(uri).get_run(mv.run_id).data.metrics.get(metric) if mv.run_id else None
    return mv, value


def _score(value: float) -> str:
    """A score with 4 decimals, or with 3 significant digits below 0.01 (0.000102 and 0.0000510 differ)."""
    if not math.isfinite(value) or value == 0 or abs(value) >= 0.01:
        return f"{value:.4f}"
    return f"{value:.{2 - math.floor(math.log10(abs(value)))}f}"


def promote(uri: str, name: str, version: str, metric: str, value: float, eval_data: str | None = None) -> dict:
    """Move alias ``champion`` to ``version`` when there is no champion yet, or when ``value`` beats the champion's
    ``metric`` measured on the same evaluation data (``eval_data``, e.g. the dataset and protocol).

    Otherwise the version is tagged ``role=challenger`` with a ``comparison`` saying why: a lower or equal score,
    a champion without this metric, or a champion evaluated on other data (scores on different data do not
    compare; give the model its own ``--model-name``). Higher is better. NaN never wins, and a champion scored NaN
    (e.g. on a corpus too small for the metric) gives way to the first version with a score.
    Returns ``{"champion": bool, "previous_champion", "previous_value", "reason"}``.
    """
    c = client(uri)
    prev, prev_value = _champion(uri, name, metric)
    prev_data = prev.tags.get("eval_data") if prev is not None else None
    if prev is None:
        better, reason = True, "first version"
    elif prev_data != eval_data:
        better, reason = False, (f"champion v{prev.version} was evaluated on {prev_data!r}, this version on "
                                 f"{eval_data!r}: not comparable; use another --model-name for this data")
    elif prev_value is None:
        better, reason = False, f"champion v{prev.version} has no {metric}; promote by hand if this one is better"
    elif prev_value != prev_value and value == value:  # a champion scored nan (a corpus too small) must not stay
        better, reason = True, (f"{metric}={_score(value)}; champion v{prev.version} has no score "
                                f"({metric}=nan)")
    elif value != value:
        better, reason = False, (f"{metric}=nan: this version has no score; champion v{prev.version} "
                                 f"{metric}={_score(prev_value)} stays")
    elif value > prev_value:
        better, reason = True, f"{metric}={_score(value)} > champion v{prev.version} {metric}={_score(prev_value)}"
    else:
        better, reason = False, f"{metric}={_score(value)} <= champion v{prev.version} {metric}={_score(prev_value)}"
    if better:
        if prev is not None:
            c.set_model_version_tag(name, prev.version, "role", "former champion")
        c.set_registered_model_alias(name, CHAMPION, version)
        c.set_model_version_tag(name, version, "role", CHAMPION)
    else:
        c.set_model_version_tag(name, version, "role", "challenger")
    c.set_model_version_tag(name, version, "comparison", reason)
    return {"champion": better, "previous_champion": prev.version if prev is not None else None,
            "previous_value": prev_value, "reason": reason}


def artifacts_key(artifacts: dict[str, str]) -> str:
    """SHA-256 (hex) of a model's artifacts: their names and resolved paths.

    The paths are outputs in the content-addressed stage store (``<home>/stages/<task>/<cache key>/<run id>/``),
    so equal paths hold equal files: two runs whose stages were all reused give the same key.
    """
    pairs = sorted((name, str(Path(path).resolve())) for name, path in artifacts.items())
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def _same_model(uri: str, name: str, key: str):
    """The newest registered version of ``name`` made of the artifacts with ``key``, or None."""
    try:
        versions = client(uri).search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    same = [mv for mv in versions if mv.tags.get(ARTIFACTS_KEY) == key]
    return max(same, key=lambda mv: int(mv.version)) if same else None


def _unchanged(uri: str, run_id: str, name: str, mv, what: str = "nothing changed",
               why: str = "every stage was reused") -> Registered:
    """Record on ``run_id`` (MLflow tags and note, a Prefect artifact) that version ``mv`` of ``name`` still stands
    (``what`` since it, because ``why``), and register nothing."""
    c = client(uri)
    standing = _champion_version(uri, name)
    champion = standing is not None and str(standing.version) == str(mv.version)
    reason = (f"{what} since version {mv.version} (MLflow run {mv.run_id}): no new version registered"
              + ("" if champion or standing is None else
                 f"; version {mv.version} is a challenger, the champion (which search answers from) is version "
                 f"{standing.version}"))
    experiment = c.get_run(mv.run_id).info.experiment_id

    def note(ui: str) -> str:  # the run that made the model, linked on the MLflow UI at ``ui``
        return (f"{what[:1].upper()}{what[1:]}: {why}, so the model of [run {mv.run_id}]"
                f"({ui_run_url(ui, experiment, mv.run_id)}), version {mv.version} of `{name}`"
                f"{' (champion)' if champion else ''}, still stands. No new version was registered."
                + ("" if champion or standing is None else
                   f" Version {mv.version} is a challenger: search answers from the champion, version "
                   f"{standing.version}."))

    c.log_batch(run_id, tags=[RunTag(k, v) for k, v in {
        "replearn.registry": "unchanged", "replearn.model_version": str(mv.version),
        "replearn.model_run_id": mv.run_id, "mlflow.note.content": note("")}.items()])
    remote = uri.startswith(("http://", "https://"))
    create_markdown_artifact(markdown=note(uri if remote else LOCAL_MLFLOW_UI), key="model-unchanged",
                             description=f"{name}: no new version")
    get_run_logger().info("%s: %s", name, reason)
    return Registered(name=name, version=mv.version, source=mv.source, champion=champion, previous_champion=None,
                      previous_value=None, reason=reason, new_version=False)


@task(name="no-new-data")
def no_new_data_task(tracking_uri: str, run_id: str, model_name: str, version: str, corpus: str) -> Registered:
    """A warm start found no file in ``corpus`` that version ``version`` of ``model_name`` was not trained on:
    register nothing, and say so on the MLflow run (tags, a note linking the run whose model stands) and the flow
    run (a Prefect artifact), as for a run whose stages were all reused."""
    mv = client(tracking_uri).get_model_version(model_name, version)
    return _unchanged(tracking_uri, run_id, model_name, mv, what="no new files",
                      why=f"every file of {corpus} was already in its training data")


def _model_code(model_class: type, folder: Path) -> Path:
    """A models-from-code file (MLflow 3) that builds ``model_class``: MLflow stores code, not a pickle."""
    code = folder / "model_code.py"
    code.write_text(f'"""replearn pyfunc: built from code when MLflow loads the model."""\n'
                    f"from mlflow.models import set_model\n"
                    f"from {model_class.__module__} import {model_class.__name__}\n\n"
                    f"set_model({model_class.__name__}())\n")
    return code


def log_pyfunc(tracking_uri: str, run_id: str, family: str, artifacts: dict[str, str]) -> tuple[str, str]:
    """Log the pyfunc of ``family`` with ``artifacts`` as an MLflow 3 LoggedModel named ``model``, output of the run.

    The model carries its signature and input example (``serving/*_model.py``) and is stored as code
    (models from code), so MLflow warns about neither; the run page lists it under "Logged models".
    Returns ``(artifact location, model id)``. A model whose upload fails is marked FAILED and the error raised.
    """
    c = client(tracking_uri)
    run = c.get_run(run_id)
    model_class, spec = MODELS[family]
    logged = c.create_logged_model(run.info.experiment_id, name="model", source_run_id=run_id,
                                   params={k: str(v) for k, v in run.data.params.items()}, model_type=family)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "model"
            meta = Model(artifact_path=logged.artifact_location, model_uuid=logged.model_id, run_id=run_id,
                         model_id=logged.model_id)
            mlflow.pyfunc.save_model(str(local), python_model=str(_model_code(model_class, Path(tmp))),
                                     artifacts=artifacts, signature=spec.SIGNATURE, input_example=spec.INPUT_EXAMPLE,
                                     pip_requirements=PIP_REQUIREMENTS, mlflow_model=meta)
            c.log_model_artifacts(logged.model_id, str(local))
    except BaseException:
        c.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    c.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    c.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    return logged.artifact_location, logged.model_id


@task(name="register-model")
def register_task(tracking_uri: str, run_id: str, model_name: str, family: str, artifacts: dict[str, str],
                  metric: str, value: float, eval_data: str | None = None) -> Registered:
    """Log the pyfunc of ``family`` with ``artifacts`` as the run's LoggedModel, register a new version of it,
    maybe promote it.

    When a version of ``model_name`` made of the same artifacts is already registered (every stage was reused:
    :func:`artifacts_key`), nothing is registered: the run is tagged ``replearn.registry=unchanged`` with the
    version and the run that made it (a link in its note), and the flow run gets a Prefect artifact saying so.

    Returns the version (new, or the one that still stands) and the champion gate's decision.
    """
    c = client(tracking_uri)
    c.log_metric(run_id, metric, float(value))  # also when the evaluation was reused from the stage cache
    key = artifacts_key(artifacts)
    if (same := _same_model(tracking_uri, model_name, key)) is not None:
        return _unchanged(tracking_uri, run_id, model_name, same)
    source, model_id = log_pyfunc(tracking_uri, run_id, family, artifacts)
    try:
        c.create_registered_model(model_name, description="replearn model (pyfunc: nearest-neighbour queries)")
    except MlflowException:
        pass  # already registered
    tags = {metric: f"{value:.6f}", ARTIFACTS_KEY: key, **({"eval_data": eval_data} if eval_data else {})}
    mv = c.create_model_version(model_name, source, run_id=run_id, tags=tags, model_id=model_id)
    # the link MLflow 3's UI follows from the logged model to its registered version (as mlflow.register_model)
    c.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([{"name": model_name,
                                                                           "version": str(mv.version)}])})
    outcome = promote(tracking_uri, model_name, mv.version, metric, value, eval_data)
    get_run_logger().info("registered %s version %s (%s=%.4f); champion: %s", model_name, mv.version, metric, value,
                          outcome["champion"])
    c.set_tag(run_id, "replearn.registry", "new version")
    return Registered(name=model_name, version=mv.version, source=source, **outcome)
