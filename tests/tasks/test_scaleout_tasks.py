"""Stages that fan out (tokenize partitions, export shards) through the flow's task runner make what one process
makes; the stage cache ignores how many shards ran at once."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from prefect import flow, task

from replearn.lib.store.embeddings_table import read_embeddings, read_vectors
from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.tokenize import tokenize_corpus
from replearn.lib.text.vocab import Vocabulary, write_vocabulary
from replearn.tasks.export import export_word_vectors_task
from replearn.infra.fanout import fan_out
from replearn.tasks.text import tokenize_task
from replearn.infra.tracking import client, experiment_id, tracking_uri

pytestmark = pytest.mark.slow

TOKENIZER = {"lowercase": True, "normalization": "NFKC", "min_len": 2, "max_len": 15, "text_column": "text"}


@task
def _square(x: int) -> int:
    return x * x


@task
def _fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"bad input {x}")
    return x


def test_fan_out_keeps_order_bounds_nothing_and_raises_the_first_failure(prefect_harness):
    @flow
    def f(parallel):
        return fan_out(_square, [{"x": i} for i in range(7)], parallel)

    assert f(None) == f(1) == f(3) == [i * i for i in range(7)]
    assert fan_out(_square, [{"x": 3}]) == [9]  # outside a flow: called in turn

    @flow
    def g():
        return fan_out(_fail_on, [{"x": i, "bad": 4} for i in range(6)], 2)

    with pytest.raises(ValueError, match="bad input 4"):
        g()


def test_tokenize_in_partitions_equals_one_process_and_is_cached_whatever_the_parallelism(prefect_harness, home,
                                                                                        lee_corpus, tmp_path):
    uri = tracking_uri(home)
    run_id = client(uri).create_run(experiment_id(uri, "t", home)).info.run_id
    ref = tokenize_corpus(lee_corpus, tmp_path / "ref", TokenizerConfig(**TOKENIZER))

    @flow
    def f(out: str, parallel):
        return tokenize_task.with_options(refresh_cache=parallel is None)(
            str(lee_corpus), out, TOKENIZER, uri, run_id, source_hash="h", partition_bytes=50_000, parallel=parallel,
            return_state=True)

    state = f(str(home / "a"), None)   # 8 partitions (the file is cut every 50 kB), all in flight at once
    d = state.result()
    assert (d["files"], d["documents"], d["tokens"]) == (ref.files, ref.documents, ref.tokens)
    assert len(d["shards"]) == 8
    assert pq.read_table(home / "a").equals(pq.read_table(tmp_path / "ref"))
    assert not [p.name for p in home.iterdir() if p.name.startswith(".")]  # no partition folders left behind
    again = f(str(home / "b"), 1)       # one at a time: same key, so the first result is reused
    assert again.is_completed() and again.name == "Cached" and again.result()["path"] == str(home / "a")
    assert client(uri).get_run(run_id).data.metrics["tokenize.tokens"] == ref.tokens


def test_export_in_shards_reads_back_as_the_single_file(prefect_harness, home, tmp_path):
    rng = np.random.default_rng(0)
    v, u = rng.standard_normal((101, 8)).astype(np.float32), rng.standard_normal((101, 8)).astype(np.float32)
    np.savez(tmp_path / "vectors.npz", input=v, context=u)
    words = [f"w{i}" for i in range(101)]
    write_vocabulary(Vocabulary(tuple(words), np.arange(101, 0, -1, dtype=np.int64)), tmp_path / "vocab.parquet")

    @flow
    def f(out: str, shards):
        return export_word_vectors_task(str(tmp_path / "vectors.npz"), str(tmp_path / "vocab.parquet"), out,
                                        ["input", "mean"], {"k": 1}, "run", "hash", shards=shards)

    one, many = f(str(tmp_path / "one"), None), f(str(tmp_path / "many"), 4)
    for m in ("input", "mean"):
        assert (tmp_path / "one" / f"{m}.parquet").is_file() and (tmp_path / "many" / f"{m}.parquet").is_dir()
        assert len(list((tmp_path / "many" / f"{m}.parquet").iterdir())) == 4
        t1, m1 = read_embeddings(one[m])
        t2, m2 = read_embeddings(many[m])
        assert m1 == m2 and t1.equals(t2)
        k2, ids, x, _ = read_vectors(many[m])
        assert k2 == words and np.array_equal(ids, np.arange(101))
        assert np.array_equal(x, v if m == "input" else (v + u) / 2)
    assert not [p.name for p in (tmp_path / "many").iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError, match="unknown matrix"):
        export_word_vectors_task.fn(str(tmp_path / "vectors.npz"), str(tmp_path / "vocab.parquet"),
                                    str(tmp_path / "x"), ["nope"], {}, "r", None, shards=2)
