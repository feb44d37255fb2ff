"""Stages that fan out (tokenize partitions, export shards), composed at flow level on a task runner, make what one
process makes; the stage cache ignores how many shards ran at once, and on a hit no shard runs."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from prefect import flow, task

from replearn.flows.text_stages import export_word_vectors_stage, tokenize_stage
from replearn.infra.cache_lookup import cached_output
from replearn.infra.fanout import fan_out
from replearn.infra.runners import ShardRunner
from replearn.infra.tracking import client, experiment_id, tracking_uri
from replearn.lib.store.embeddings_table import read_embeddings, read_vectors
from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.tokenize import tokenize_corpus
from replearn.lib.text.vocab import Vocabulary, write_vocabulary
from replearn.tasks.export import export_word_vectors_task
from replearn.tasks.text import tokenize_task

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
        hit = cached_output(tokenize_task, str(lee_corpus), out, TOKENIZER, uri, run_id, source_hash="h",
                            partition_bytes=50_000)
        tokens = tokenize_stage(str(lee_corpus), out, TOKENIZER, uri, run_id, source_hash="h", partition_bytes=50_000,
                                runner=ShardRunner("local", parallel=parallel))
        return hit, tokens

    hit, d = f(str(home / "a"), None)   # 8 partitions (the file is cut every 50 kB), all in flight at once
    assert hit is None
    assert (d.files, d.documents, d.tokens) == (ref.files, ref.documents, ref.tokens)
    assert len(d.shards) == 8
    assert pq.read_table(home / "a").equals(pq.read_table(tmp_path / "ref"))
    assert not [p.name for p in home.iterdir() if p.name.startswith(".")]  # no partition folders left behind
    hit, again = f(str(home / "b"), 1)  # one at a time: same key, so the first result is reused
    assert hit == d and again == d and again.path == str(home / "a")
    assert not (home / "b").exists() and not [p.name for p in home.iterdir() if p.name.startswith(".")]  # nothing ran
    assert client(uri).get_run(run_id).data.metrics["tokenize.tokens"] == ref.tokens

    shutil.rmtree(home / "a")           # the cached result names a folder that is gone: the stage runs again
    hit, third = f(str(home / "c"), 1)
    assert hit is None and third.path == str(home / "c")
    assert pq.read_table(home / "c").equals(pq.read_table(tmp_path / "ref"))


def test_export_in_shards_reads_back_as_the_single_file(prefect_harness, home, tmp_path):
    rng = np.random.default_rng(0)
    v, u = rng.standard_normal((101, 8)).astype(np.float32), rng.standard_normal((101, 8)).astype(np.float32)
    np.savez(tmp_path / "vectors.npz", input=v, context=u)
    words = [f"w{i}" for i in range(101)]
    write_vocabulary(Vocabulary(tuple(words), np.arange(101, 0, -1, dtype=np.int64)), tmp_path / "vocab.parquet")

    @flow
    def f(out: str, shards):
        return export_word_vectors_stage(str(tmp_path / "vectors.npz"), str(tmp_path / "vocab.parquet"), out,
                                         ["input", "mean"], {"k": 1}, "run", "hash", shards=shards).tables

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
    assert f(str(tmp_path / "again"), 4) == many and not (tmp_path / "again").exists()  # cached: no shard ran
    with pytest.raises(ValueError, match="unknown matrix"):
        export_word_vectors_task.fn(str(tmp_path / "vectors.npz"), str(tmp_path / "vocab.parquet"),
                                    str(tmp_path / "x"), ["nope"], {}, "r", None, shards=2)
