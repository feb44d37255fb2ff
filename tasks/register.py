"""Prefect task: register a model in the MLflow model registry and promote it to ``champion`` if it is better."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from prefect import task
from prefect.logging import get_run_logger

from replearn.serving.clip_model import SIGNATURE as CLIP_SIGNATURE
from replearn.serving.clip_model import ClipSearchModel
from replearn.serving.image_model import SIGNATURE as IMAGE_SIGNATURE
from replearn.serving.multisense_model import SIGNATURE as MULTISENSE_SIGNATURE
from replearn.serving.multisense_model import MultiSenseModel
from replearn.serving.image_model import ImageNeighboursModel
from replearn.infra.stage_outputs import Registered
from replearn.infra.tracking import client
from replearn.serving.word_vectors_model import SIGNATURE as WORD_VECTORS_SIGNATURE
from replearn.serving.word_vectors_model import WordVectorsModel

CHAMPION = "champion"
MODELS = {"word2vec": (WordVectorsModel, WORD_VECTORS_SIGNATURE), "metric": (ImageNeighboursModel, IMAGE_SIGNATURE),
          "clip": (ClipSearchModel, CLIP_SIGNATURE), "multisense": (MultiSenseModel, MULTISENSE_SIGNATURE)}


def _champion(uri: str, name: str, metric: str):
    """(champion version record or None, its value of ``metric`` or None)."""
    c = client(uri)
    try:
        mv = c.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    value = c.get_run(mv.run_id).data.metrics.get(metric) if mv.run_id else None
    return mv, value


def promote(uri: str, name: str, version: str, metric: str, value: float, eval_data: str | None = None) -> dict:
    """Move alias ``champion`` to ``version`` when there is no champion yet, or when ``value`` beats the champion's
    ``metric`` measured on the same evaluation data (``eval_data``, e.g. the dataset and protocol).

    Otherwise the version is tagged ``role=challenger`` with a ``comparison`` saying why: a lower or equal score,
    a champion without this metric, or a champion evaluated on other data (scores on different data do not
    compare; give the model its own ``--model-name``). Higher is better. NaN never wins.
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
    elif value == value and value > prev_value:
        better, reason = True, f"{metric}={value:.4f} > champion v{prev.version} {metric}={prev_value:.4f}"
    else:
        better, reason = False, f"{metric}={value:.4f} <= champion v{prev.version} {metric}={prev_value:.4f}"
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


@task(name="register-model")
def register_task(tracking_uri: str, run_id: str, model_name: str, family: str, artifacts: dict[str, str],
                  metric: str, value: float, eval_data: str | None = None) -> Registered:
    """Log the pyfunc of ``family`` with ``artifacts`` to the run, register a new version, maybe promote it.

    Returns the version and the champion gate's decision.
    """
    c = client(tracking_uri)
    c.log_metric(run_id, metric, float(value))  # also when the evaluation was reused from the stage cache
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "model"
        model_class, signature = MODELS[family]
        mlflow.pyfunc.save_model(str(local), python_model=model_class(), artifacts=artifacts, signature=signature,
                                 pip_requirements=["replearn", "faiss-cpu", "pyarrow", "pandas", "numpy", "torch"])
        c.log_artifacts(run_id, str(local), "model")
    source = f"{c.get_run(run_id).info.artifact_uri}/model"
    try:
        c.create_registered_model(model_name, description="replearn model (pyfunc: nearest-neighbour queries)")
    except MlflowException:
        pass  # already registered
    tags = {metric: f"{value:.6f}", **({"eval_data": eval_data} if eval_data else {})}
    mv = c.create_model_version(model_name, source, run_id=run_id, tags=tags)
    outcome = promote(tracking_uri, model_name, mv.version, metric, value, eval_data)
    get_run_logger().info("registered %s version %s (%s=%.4f); champion: %s", model_name, mv.version, metric, value,
                          outcome["champion"])
    return Registered(name=model_name, version=mv.version, source=source, **outcome)
