"""A word2vec run killed with SIGKILL during training, started again with the same command, resumes from its last
epoch checkpoint and ends with the vectors of an uninterrupted run (one thread, fixed seed: deterministic)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from _cli_runs import cli_env, finish, run_dir, start, summary, vectors, word2vec_cmd

pytestmark = pytest.mark.slow

ARGS = ("--epochs", "3", "--threads", "1", "--seed", "1")


def _wait_for(pattern_dir, name: str, proc, timeout: float = 240.0):
    """Poll every 5 ms until ``<pattern_dir>/*/<name>`` exists; return that folder."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        hits = list(pattern_dir.glob(f"*/{name}")) if pattern_dir.is_dir() else []
        if hits:
            return hits[0].parent
        assert proc.poll() is None, "the run ended before writing its first checkpoint"
        time.sleep(0.005)
    raise AssertionError(f"no {name} under {pattern_dir} after {timeout} s")


def test_sigkill_during_training_resumes_to_the_uninterrupted_vectors(tmp_path, lee_corpus):
    from replearn.infra.tracking import client

    env = cli_env(tmp_path / "prefect")
    ref_home, home = tmp_path / "ref", tmp_path / "killed"
    # the uninterrupted reference runs meanwhile, into another home
    ref = start(word2vec_cmd(lee_corpus, ref_home, tmp_path / "ref.json", *ARGS), env, tmp_path / "ref.log")
    victim = start(word2vec_cmd(lee_corpus, home, tmp_path / "killed.json", *ARGS), env, tmp_path / "killed.log")
    try:
        ckpt = _wait_for(home / "checkpoints" / "word2vec", "epoch-0001.npz", victim)
        os.killpg(victim.pid, signal.SIGKILL)  # the CLI and its temporary Prefect server
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    assert victim.returncode == -signal.SIGKILL
    done = sorted(p.name for p in ckpt.glob("epoch-*.npz"))
    assert done and "epoch-0003.npz" not in done, f"killed too late: {done}"  # training was interrupted
    assert not (tmp_path / "killed.json").exists()

    again = start(word2vec_cmd(lee_corpus, home, tmp_path / "killed.json", *ARGS), env, tmp_path / "again.log")
    finish(again, tmp_path / "again.log")
    finish(ref, tmp_path / "ref.log")

    s, s_ref = summary(tmp_path / "killed.json"), summary(tmp_path / "ref.json")
    run = client(s["tracking_uri"]).get_run(s["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["train.resumed_from_epoch"] == int(done[-1][6:10])  # resumed from the last checkpoint
    assert not ckpt.exists()  # checkpoints are removed once the vectors are saved
    (v, u), (v_ref, u_ref) = vectors(s), vectors(s_ref)
    assert v.shape == v_ref.shape and v.shape[0] == s_ref["vocab_size"]
    np.testing.assert_allclose(v, v_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(u, u_ref, rtol=0, atol=1e-6)
    assert run_dir(s).parent == home / "runs" / "word2vec"
