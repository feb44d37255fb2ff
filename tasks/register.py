"""Prefect task: register a model in the MLflow model registry and promote it to ``champion`` if it is better."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from prefect import task
from prefect.logging import get_run_logger

from replearn.tasks.clip_model import SIGNATURE as CLIP_SIGNATURE
from replearn.tasks.clip_model import ClipSearchModel
from replearn.tasks.image_model import SIGNATURE as IMAGE_SIGNATURE
from replearn.tasks.multisense_model import SIGNATURE as MULTISENSE_SIGNATURE
from replearn.tasks.multisense_model import MultiSenseModel
from replearn.tasks.image_model import ImageNeighboursModel
from replearn.tasks.tracking import client
from replearn.tasks.word_vectors_model import SIGNATURE as WORD_VECTORS_SIGNATURE
from replearn.tasks.word_vectors_model import WordVectorsModel

CHAMPION = "champion"
MODELS = {"word2vec": (WordVectorsModel, WORD_VECTORS_SIGNATURE), "metric": (ImageNeighboursModel, IMAGE_SIGNATURE),
          "clip": (ClipSearchModel, CLIP_SIGNATURE), "multisense": (MultiSenseModel, MULTISENSE_SIGNATURE)}


def _champion_metric(uri: str, name: str, metric: str) -> tuple[str | None, float | None]:
    c = client(uri)
    try:
        mv = c.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    value = c.get_run(mv.run_id).data.metrics.get(metric) if mv.run_id else None
    return mv.version, value


def promote(uri: str, name: str, version: str, metric: str, value: float) -> dict:
    """Set alias ``champion`` on ``version`` if there is none yet or ``value`` beats the champion's ``metric``.

    Otherwise the version is tagged ``challenger`` with the comparison. Higher is better.
    Returns ``{"champion": bool, "previous_champion": version or None, "previous_value": float or None}``.
    """
    c = client(uri)
    prev_version, prev_value = _champion_metric(uri, name, metric)
    better = prev_version is None or prev_value is None or value > prev_value
    if better:
        c.set_registered_model_alias(name, CHAMPION, version)
        c.set_model_version_tag(name, version, "role", CHAMPION)
    else:
        c.set_model_version_tag(name, version, "role", "challenger")
        c.set_model_version_tag(name, version, "comparison",
                                f"{metric}={value:.4f} <= champion v{prev_version} {metric}={prev_value:.4f}")
    return {"champion": better, "previous_champion": prev_version, "previous_value": prev_value}


@task(name="register-model")
def register_task(tracking_uri: str, run_id: str, model_name: str, family: str, artifacts: dict[str, str],
                  metric: str, value: float) -> dict:
    """Log the pyfunc of ``family`` with ``artifacts`` to the run, register a new version, maybe promote it.

    Returns ``{"name", "version", "champion", "source", ...}``.
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
    mv = c.create_model_version(model_name, source, run_id=run_id, tags={metric: f"{value:.6f}"})
    outcome = promote(tracking_uri, model_name, mv.version, metric, value)
    get_run_logger().info("registered %s version %s (%s=%.4f); champion: %s", model_name, mv.version, metric, value,
                          outcome["champion"])
    return {"name": model_name, "version": mv.version, "source": source, **outcome}
