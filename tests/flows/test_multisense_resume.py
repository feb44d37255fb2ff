"""A multi-sense run killed with SIGKILL during training, started again with the same command, reuses the stages the
killed run finished, resumes from its last epoch checkpoint and ends with the model of an uninterrupted run (one
thread, fixed seed: deterministic)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from _cli_runs import cli_env, finish, replearn_exe, start

pytestmark = pytest.mark.slow

EPOCHS = 4
ARGS = ("--dim", "16", "--epochs", str(EPOCHS), "--min-count", "3", "--sense-min-count", "40", "--max-senses", "3",
        "--threads", "1", "--seed", "1")


def multisense_cmd(corpus: Path, home: Path) -> list[str]:
    return [replearn_exe(), "run", "multisense", "--corpus", str(corpus), "--home", str(home), *ARGS]


def _first_checkpoint(root: Path, proc, timeout: float = 300.0) -> Path:
    """Poll every 5 ms until a checkpoint file (any name, not hidden) appears in a folder under ``root``; return
    that folder."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        hits = [p for p in root.glob("*/*") if p.is_file() and not p.name.startswith(".")] if root.is_dir() else []
        if hits:
            return hits[0].parent
        assert proc.poll() is None, "the run ended before writing its first checkpoint"
        time.sleep(0.005)
    raise AssertionError(f"no checkpoint under {root} after {timeout} s")


def _finished_run(home: Path) -> tuple[str, Path]:
    """(MLflow run id, model path) of the one run under ``home`` that saved its model."""
    models = list(home.glob("stages/train-multisense/*/*/multisense.npz"))
    assert len(models) == 1, models
    return models[0].parent.name, models[0]


def test_sigkill_during_training_resumes_to_the_uninterrupted_model(tmp_path, lee_corpus, monkeypatch):
    from replearn.infra.tracking import client, tracking_uri
    from replearn.lib.multisense.model import MultiSenseVectors

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = cli_env(tmp_path / "prefect")
    ref_home, home = tmp_path / "ref", tmp_path / "killed"
    ref = start(multisense_cmd(lee_corpus, ref_home), env, tmp_path / "ref.log")   # uninterrupted, meanwhile
    victim = start(multisense_cmd(lee_corpus, home), env, tmp_path / "killed.log")
    try:
        ckpt = _first_checkpoint(home / "checkpoints" / "multisense", victim)
        os.killpg(victim.pid, signal.SIGKILL)  # the CLI and its temporary Prefect server
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    assert victim.returncode == -signal.SIGKILL
    assert not list(home.glob("stages/train-multisense/*/*/multisense.npz"))  # killed before the model was saved
    assert ckpt.is_dir()

    again = start(multisense_cmd(lee_corpus, home), env, tmp_path / "again.log")
    finish(again, tmp_path / "again.log", timeout=600)
    finish(ref, tmp_path / "ref.log", timeout=600)

    run_id, model_path = _finished_run(home)
    run = client(tracking_uri(home)).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert 1 <= run.data.metrics["train.resumed_from_epoch"] < EPOCHS   # resumed, and training had been interrupted
    assert "Cached" in (tmp_path / "again.log").read_text()            # the killed run's finished stages reused
    got, want = MultiSenseVectors.load(model_path), MultiSenseVectors.load(_finished_run(ref_home)[1])
    assert got.words == want.words and got.vectors.shape == want.vectors.shape
    np.testing.assert_array_equal(got.sense_start, want.sense_start)
    np.testing.assert_allclose(got.vectors, want.vectors, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.context, want.context, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.prior, want.prior, rtol=0, atol=1e-6)
