"""Two ``replearn run word2vec`` started at once into the same (fresh) data home both finish, each with its own
outputs (its attempt folders in the stage store), MLflow run and model version, and neither overwrites the other's
outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from _cli_runs import cli_env, finish, stage_output, start, summary, vectors, word2vec_cmd

pytestmark = pytest.mark.slow

ARGS = ("--epochs", "2", "--dim", "16", "--min-count", "3", "--threads", "1")
SEEDS = {"a": "3", "b": "4"}  # different training runs; tokenize / vocabulary / encode have the same inputs and may be
                              # shared through the stage cache (infra/caching.py), so only training-derived outputs
                              # are checked to be each run's own


def test_two_runs_at_once_into_one_home(tmp_path, lee_corpus):
    from replearn.lib.store.embeddings_table import read_vectors
    from replearn.infra.tracking import client

    env = cli_env(tmp_path / "prefect")
    home = tmp_path / "home"  # does not exist yet: both runs create it and the MLflow store
    procs = [start(word2vec_cmd(lee_corpus, home, tmp_path / f"{n}.json", *ARGS, "--seed", seed), env,
                   tmp_path / f"{n}.log") for n, seed in SEEDS.items()]
    for p, n in zip(procs, ("a", "b")):
        finish(p, tmp_path / f"{n}.log")

    a, b = summary(tmp_path / "a.json"), summary(tmp_path / "b.json")
    assert a["mlflow_run_id"] != b["mlflow_run_id"]
    c = client(a["tracking_uri"])
    for s in (a, b):
        # the training-derived outputs are each run's own: in its attempt folder of the stage store
        for path in (stage_output(s, "vectors"), Path(s["index"]), Path(s["embeddings"])):
            assert path.is_file() and path.is_relative_to(home / "stages") and s["mlflow_run_id"] in path.parts
        words, ids, vecs, meta = read_vectors(s["embeddings"])   # intact, and its own run's
        assert meta.mlflow_run_id == s["mlflow_run_id"] and len(words) == s["vocab_size"] == len(vecs)
        np.testing.assert_array_equal(vecs, vectors(s)[0][ids])
        run = c.get_run(s["mlflow_run_id"])
        assert run.info.status == "FINISHED" and "train.loss" in run.data.metrics
    assert sorted(int(s["model"]["version"]) for s in (a, b)) == [1, 2]
    assert a["vocab_size"] == b["vocab_size"] and not np.allclose(vectors(a)[0], vectors(b)[0])  # its own training


def test_an_identical_run_while_another_trains_checkpoints_apart_and_leaves_the_others_alone(prefect_harness, home,
                                                                                              lee_corpus):
    """The checkpoint folder is keyed on corpus + settings; a second identical run must not share (and, finishing
    first, delete) the folder of one still training: it trains in ``<key>.1``, says so, and removes only that."""
    from replearn.flows.params import Word2VecParams
    from replearn.flows.text_stages import TOKENIZER
    from replearn.flows.word2vec import word2vec_flow
    from replearn.lib.store.folder_lock import locked_folder
    from replearn.tasks.inputs import fingerprint_task

    params = Word2VecParams(corpus=str(lee_corpus), home=str(home), dim=16, epochs=2, min_count=3, threads=1)
    key = fingerprint_task.fn(str(lee_corpus), {"tokenizer": {**TOKENIZER, "text_column": "text"},
                                                **params.train_config()}).key
    shared = home / "checkpoints" / "word2vec" / key
    said: list[str] = []
    listener = logging.Handler()
    listener.emit = lambda record: said.append(record.getMessage())
    logging.getLogger("prefect.task_runs").addHandler(listener)
    try:
        with locked_folder(shared) as other:  # an identical run, mid-training, holds the folder
            (other.path / "epoch-001.npz").write_bytes(b"the other run's checkpoint")
            s = word2vec_flow(params)
            assert (shared / "epoch-001.npz").read_bytes() == b"the other run's checkpoint"
    finally:
        logging.getLogger("prefect.task_runs").removeHandler(listener)
    assert s["model"]["version"] in (1, "1") and vectors(s)[0].shape == (s["vocab_size"], 16)
    assert not (shared.parent / f"{key}.1").exists()  # this run's own checkpoints, removed once its vectors were saved
    assert any("this run checkpoints to" in m and f"{key}.1" in m for m in said)
