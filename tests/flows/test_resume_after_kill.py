"""A run killed with SIGKILL during training, started again with the same command, resumes from its last epoch
checkpoint (checkpoints are keyed on the data and settings, not on the run). word2vec (one thread, fixed seed:
deterministic) and CLIP (seeded) end with the weights of an uninterrupted run; metric learning resumes and finishes."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from _cli_runs import (
    checkpoint_epochs,
    cli_env,
    finish,
    finished_runs,
    kill_group,
    run_cmd,
    stage_output,
    start,
    summary,
    vectors,
    wait_for_checkpoint,
    word2vec_cmd,
)

pytestmark = pytest.mark.slow

ARGS = ("--epochs", "3", "--threads", "1", "--seed", "1")


def _kill_after_first_checkpoint(cmd: list[str], env: dict, home: Path, family: str, log: Path,
                                 epochs: int) -> tuple[Path, list[int]]:
    """Start ``cmd``, SIGKILL its process group once an epoch checkpoint exists; return the checkpoint folder and
    the epochs checkpointed (asserting training was interrupted)."""
    victim = start(cmd, env, log)
    try:
        ckpt = wait_for_checkpoint(home / "checkpoints" / family, victim)
    finally:
        kill_group(victim)
    assert victim.returncode == -signal.SIGKILL
    done = checkpoint_epochs(ckpt)
    assert done and done[-1] < epochs, f"killed too late: {done}"  # training was interrupted
    return ckpt, done


def test_sigkill_during_training_resumes_to_the_uninterrupted_vectors(tmp_path, lee_corpus):
    from replearn.infra.tracking import client

    env = cli_env(tmp_path / "prefect")
    ref_home, home = tmp_path / "ref", tmp_path / "killed"
    # the uninterrupted reference runs meanwhile, into another home
    ref = start(word2vec_cmd(lee_corpus, ref_home, tmp_path / "ref.json", *ARGS), env, tmp_path / "ref.log")
    ckpt, done = _kill_after_first_checkpoint(word2vec_cmd(lee_corpus, home, tmp_path / "killed.json", *ARGS), env,
                                              home, "word2vec", tmp_path / "killed.log", 3)
    assert not (tmp_path / "killed.json").exists()

    again = start(word2vec_cmd(lee_corpus, home, tmp_path / "killed.json", *ARGS), env, tmp_path / "again.log")
    finish(again, tmp_path / "again.log")
    finish(ref, tmp_path / "ref.log")

    s, s_ref = summary(tmp_path / "killed.json"), summary(tmp_path / "ref.json")
    run = client(s["tracking_uri"]).get_run(s["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["train.resumed_from_epoch"] == done[-1]  # resumed from the last checkpoint
    assert not ckpt.exists()  # checkpoints are removed once the vectors are saved
    (v, u), (v_ref, u_ref) = vectors(s), vectors(s_ref)
    assert v.shape == v_ref.shape and v.shape[0] == s_ref["vocab_size"]
    np.testing.assert_allclose(v, v_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(u, u_ref, rtol=0, atol=1e-6)
    assert stage_output(s, "vectors").is_relative_to(home / "stages" / "train-word2vec")
    # the killed run could not end itself: the rerun marked it KILLED (not RUNNING for ever)
    c = client(s["tracking_uri"])
    runs = c.search_runs([run.info.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]


def _resumed_run(home: Path, family: str, ckpt: Path, done: list[int]):
    """The run started again: FINISHED, resumed from the last checkpoint, checkpoints removed."""
    runs = finished_runs(home, family)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    assert runs[0].data.metrics["train.resumed_from_epoch"] == done[-1]
    assert not ckpt.exists()
    return runs[0]


def test_metric_run_killed_during_training_resumes(tmp_path):
    env = cli_env(tmp_path / "prefect")
    home = tmp_path / "killed"
    cmd = run_cmd("metric", home, "--epochs", "8", "--dim", "8", "--batch-size", "64", "--seed", "1")
    ckpt, done = _kill_after_first_checkpoint(cmd, env, home, "metric", tmp_path / "killed.log", 8)
    again = start(cmd, env, tmp_path / "again.log")
    finish(again, tmp_path / "again.log")
    run = _resumed_run(home, "metric", ckpt, done)
    assert list(home.glob(f"stages/train-metric/*/{run.info.run_id}/encoder.pt"))
    assert "map_at_r" in run.data.metrics


def test_clip_run_killed_during_training_resumes_to_the_uninterrupted_model(tmp_path):
    import torch

    env = cli_env(tmp_path / "prefect")
    ref_home, home = tmp_path / "ref", tmp_path / "killed"
    args = ("--epochs", "4", "--dim", "16", "--seed", "1")
    ref = start(run_cmd("clip", ref_home, *args), env, tmp_path / "ref.log")
    ckpt, done = _kill_after_first_checkpoint(run_cmd("clip", home, *args), env, home, "clip",
                                              tmp_path / "killed.log", 4)
    again = start(run_cmd("clip", home, *args), env, tmp_path / "again.log")
    finish(again, tmp_path / "again.log")
    finish(ref, tmp_path / "ref.log")
    run = _resumed_run(home, "clip", ckpt, done)
    (ref_run,) = finished_runs(ref_home, "clip")
    (path,) = home.glob(f"stages/train-clip/*/{run.info.run_id}/model.pt")
    (path_ref,) = ref_home.glob(f"stages/train-clip/*/{ref_run.info.run_id}/model.pt")
    state, state_ref = torch.load(path, weights_only=True), torch.load(path_ref, weights_only=True)
    weights, weights_ref = state["state_dict"], state_ref["state_dict"]
    assert weights.keys() == weights_ref.keys()
    for k in weights:
        torch.testing.assert_close(weights[k], weights_ref[k], rtol=0, atol=1e-5)
