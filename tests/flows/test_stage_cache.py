"""Re-running a flow with the same inputs reuses its completed stages (Prefect cache on content + task source)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from replearn.flows.params import Word2VecParams
from replearn.infra.tracking import client, tracking_uri

pytestmark = pytest.mark.slow


def test_second_run_reuses_stages_and_a_deleted_output_is_recomputed(prefect_harness, home, lee_corpus, tmp_path):
    from replearn.flows.word2vec import word2vec_flow

    corpus = tmp_path / "lee.txt"
    shutil.copy(lee_corpus, corpus)
    params = Word2VecParams(corpus=str(corpus), home=str(home), dim=16, epochs=1, min_count=3, threads=1)
    first = word2vec_flow(params)
    second = word2vec_flow(params)
    assert second["embeddings"] == first["embeddings"]           # reused, not rewritten
    assert second["index"] == first["index"]
    assert written_by(home, second["mlflow_run_id"]) == set()    # every stage reused: nothing of its own
    assert not (home / "runs").exists()                         # outputs live in the stage store, no run folder
    c = client(tracking_uri(home))
    assert c.get_run(second["mlflow_run_id"]).data.metrics["analogy_score"] == pytest.approx(
        c.get_run(first["mlflow_run_id"]).data.metrics["analogy_score"])

    # the corpus changes (same path): every stage runs again
    corpus.write_text(corpus.read_text() + "\nthe government said the police and the fire service were ready\n")
    third = word2vec_flow(params)
    assert third["embeddings"] != first["embeddings"] and Path(third["embeddings"]).exists()

    # the outputs a cached result names are gone: the stages run again instead of returning dead paths
    for folder in attempt_folders(home, third["mlflow_run_id"]):
        shutil.rmtree(folder)
    fourth = word2vec_flow(params)
    assert Path(fourth["embeddings"]).exists() and Path(fourth["index"]).exists()
    assert fourth["embeddings"] != third["embeddings"]


def attempt_folders(home: Path, run_id: str) -> list[Path]:
    """The folders run ``run_id`` wrote in the stage store: ``<home>/stages/<stage>/<key>/<run id>``."""
    return sorted(home.glob(f"stages/*/*/{run_id}"))


def written_by(home: Path, run_id: str) -> set[str]:
    """The files run ``run_id`` wrote in the stage store, relative to ``<home>/stages``."""
    return {str(p.relative_to(home / "stages")) for f in attempt_folders(home, run_id) for p in f.rglob("*")
            if p.is_file()}


def _second_run_reuses_and_a_deleted_output_is_recomputed(flow, params, family: str, home: Path,
                                                         data_file: str) -> None:
    """Run ``flow`` twice: the second run reuses every stage (same embeddings, nothing written of its own);
    then the first run's outputs go and the third run computes everything again."""
    first = flow(params)
    second = flow(params)
    assert second["embeddings"] == first["embeddings"] and second["index"] == first["index"]
    assert written_by(home, second["mlflow_run_id"]) == set()  # no stage ran in the second run
    assert not list((home / "checkpoints" / family).glob("*/epoch-*"))  # training ended: checkpoints removed
    for folder in attempt_folders(home, first["mlflow_run_id"]):
        shutil.rmtree(folder)
    third = flow(params)
    mine = written_by(home, third["mlflow_run_id"])
    assert Path(third["embeddings"]).exists() and str(Path(third["embeddings"]).relative_to(home / "stages")) in mine
    assert any(f.endswith("/" + data_file) for f in mine), mine


def test_metric_second_run_reuses_every_stage(prefect_harness, home):
    from replearn.flows.metric import metric_flow
    from replearn.flows.params import MetricParams

    params = MetricParams(home=str(home), epochs=1, dim=8, batch_size=64)
    _second_run_reuses_and_a_deleted_output_is_recomputed(metric_flow, params, "metric", home, "images.npz")


def test_clip_second_run_reuses_every_stage(prefect_harness, home):
    from replearn.flows.clip import clip_flow
    from replearn.flows.params import ClipParams

    params = ClipParams(home=str(home), epochs=1, dim=16)
    _second_run_reuses_and_a_deleted_output_is_recomputed(clip_flow, params, "clip", home, "pairs.npz")


def test_an_image_folder_that_changes_is_loaded_again(prefect_harness, home, tmp_path):
    from PIL import Image

    from replearn.flows.metric import metric_flow
    from replearn.flows.params import MetricParams

    rng = np.random.default_rng(0)
    folder = tmp_path / "shapes"
    for c in ("a", "b", "c"):
        (folder / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (10, 10), dtype=np.uint8)).save(folder / c / f"{i}.png")
    params = MetricParams(data=str(folder), home=str(home), epochs=1, dim=8, batch_size=16, train_classes=2)
    first = metric_flow(params)
    Image.fromarray(rng.integers(0, 255, (10, 10), dtype=np.uint8)).save(folder / "c" / "6.png")
    second = metric_flow(params)                                 # same path, other content: every stage again
    assert second["embeddings"] != first["embeddings"] and second["images"] == first["images"] + 1


def test_a_retry_after_a_late_failure_runs_only_the_failed_stage_and_after(prefect_harness, home, lee_corpus,
                                                                           tmp_path, monkeypatch):
    from prefect import task

    import replearn.flows.publish as publish
    from replearn.flows.word2vec import word2vec_flow

    real = publish.register_task

    @task(name="register-model")
    def broken(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(home / "mlartifacts"))

    params = Word2VecParams(corpus=str(lee_corpus), home=str(home), dim=16, epochs=1, min_count=3, threads=1)
    monkeypatch.setattr(publish, "register_task", broken)
    with pytest.raises(PermissionError):
        word2vec_flow(params)
    c = client(tracking_uri(home))
    failed = c.search_runs([c.get_experiment_by_name("word2vec").experiment_id])[0]
    assert failed.info.status == "FAILED"
    kept = written_by(home, failed.info.run_id)
    assert any(f.endswith("/vectors.npz") for f in kept) and any("/tokens/" in f for f in kept)  # completed stages
    assert not [f for f in kept if ".tmp-" in f]                                                  # nothing half-written

    monkeypatch.setattr(publish, "register_task", real)
    retry = word2vec_flow(params)
    assert retry["model"]["version"] in (1, "1")
    assert f"/{failed.info.run_id}/" in retry["embeddings"]  # export, training, tokens: reused, not redone
    assert written_by(home, retry["mlflow_run_id"]) == set()
