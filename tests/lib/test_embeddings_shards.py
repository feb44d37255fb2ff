"""Embeddings written by several workers (one shard per row range) read back as the table write_embeddings writes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.embeddings_shards import publish_embeddings_shards, shard_ranges, write_embeddings_shard
from replearn.lib.store.embeddings_table import EmbeddingsMetadata, read_embeddings, read_vectors, write_embeddings

D = 5


def _meta(**kw) -> EmbeddingsMetadata:
    return EmbeddingsMetadata(**{"family": "word2vec", "dim": D, "normalized": False, "similarity": "cos",
                                 "mlflow_run_id": "r1", "config": {"window": 5}, "matrix": "input", **kw})


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [f"w{i}" for i in range(n)], rng.standard_normal((n, D)).astype(np.float32)


@pytest.mark.parametrize("n,k", [(0, 3), (1, 4), (5, 5), (10, 3), (1001, 7)])
def test_shard_ranges_cover_the_rows_in_order(n, k):
    ranges = shard_ranges(n, k)
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert len(ranges) == max(1, min(n, k)) and (n == 0 or all(b > a for a, b in ranges))
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        shard_ranges(3, 0)


@pytest.mark.parametrize("shards", [1, 3, 8])
def test_shards_read_back_as_the_single_file(tmp_path, shards):
    keys, x = _data(53)
    label = [None if i % 3 else f"c{i % 4}" for i in range(53)]
    write_embeddings(tmp_path / "one.parquet", keys, x, _meta(), label=label)
    ranges = shard_ranges(53, shards)
    for i, (a, b) in reversed(list(enumerate(ranges))):  # any order, as workers finish
        write_embeddings_shard(tmp_path / "staging", i, keys[a:b], x[a:b], _meta(), ids=np.arange(a, b),
                               label=label[a:b])
    out = publish_embeddings_shards(tmp_path / "staging", tmp_path / "many.parquet", expected=len(ranges))
    assert out.is_dir() and not (tmp_path / "staging").exists()
    assert sorted(p.name for p in out.iterdir()) == [f"part-{i:05d}.parquet" for i in range(len(ranges))]
    t1, m1 = read_embeddings(tmp_path / "one.parquet")
    t2, m2 = read_embeddings(out)
    assert m1 == m2 and t1.equals(t2) and t1.schema.metadata == t2.schema.metadata
    k1, i1, v1, _ = read_vectors(tmp_path / "one.parquet")
    k2, i2, v2, _ = read_vectors(out)
    assert k1 == k2 and np.array_equal(i1, i2) and np.array_equal(v1.view(np.uint32), v2.view(np.uint32))
    assert pq.read_table(out).equals(pq.read_table(tmp_path / "one.parquet"))
    assert pl.read_parquet(f"{out}/*.parquet").equals(pl.read_parquet(tmp_path / "one.parquet"))


def test_a_bad_row_is_refused_by_its_shard_before_writing(tmp_path):
    keys, x = _data(10)
    x[7, 2] = np.nan
    with pytest.raises(EmbeddingsError, match=r"shard .*part-00001.*NaN or Inf.*\b7\b"):
        write_embeddings_shard(tmp_path / "s", 1, keys[5:], x[5:], _meta(), ids=np.arange(5, 10))
    assert not (tmp_path / "s" / "part-00001.parquet").exists()
    with pytest.raises(EmbeddingsError, match="needs ids"):
        write_embeddings_shard(tmp_path / "s", 0, keys, x, _meta(), ids=None)
    with pytest.raises(EmbeddingsError, match="no vectors"):
        write_embeddings_shard(tmp_path / "s", 0, [], np.zeros((0, D), np.float32), _meta(), ids=np.arange(0))


def test_publish_refuses_shards_that_do_not_belong_together(tmp_path):
    keys, x = _data(10)
    final = tmp_path / "e.parquet"
    write_embeddings(final, keys, x, _meta())  # an earlier export stays in place whatever goes wrong
    before = final.read_bytes()

    write_embeddings_shard(tmp_path / "gap", 0, keys[:5], x[:5], _meta(), ids=np.arange(5))
    write_embeddings_shard(tmp_path / "gap", 2, keys[5:], x[5:], _meta(), ids=np.arange(5, 10))
    with pytest.raises(EmbeddingsError, match="expected"):
        publish_embeddings_shards(tmp_path / "gap", final)

    write_embeddings_shard(tmp_path / "short", 0, keys, x, _meta(), ids=np.arange(10))
    with pytest.raises(EmbeddingsError, match="expected"):
        publish_embeddings_shards(tmp_path / "short", final, expected=2)

    write_embeddings_shard(tmp_path / "mixed", 0, keys[:5], x[:5], _meta(), ids=np.arange(5))
    write_embeddings_shard(tmp_path / "mixed", 1, keys[5:], x[5:], _meta(mlflow_run_id="other"), ids=np.arange(5, 10))
    with pytest.raises(EmbeddingsError, match="metadata different"):
        publish_embeddings_shards(tmp_path / "mixed", final)

    write_embeddings_shard(tmp_path / "dup", 0, keys[:5], x[:5], _meta(), ids=np.arange(5))
    write_embeddings_shard(tmp_path / "dup", 1, keys[5:], x[5:], _meta(), ids=np.arange(3, 8))
    with pytest.raises(EmbeddingsError, match=r"more than one shard.*\b3\b"):
        publish_embeddings_shards(tmp_path / "dup", final)

    with pytest.raises(FileNotFoundError):
        publish_embeddings_shards(tmp_path / "nothing", final)
    assert final.read_bytes() == before
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_publish_replaces_a_previous_file_or_folder(tmp_path):
    keys, x = _data(20)
    final = tmp_path / "e.parquet"
    write_embeddings(final, keys, x, _meta())  # a file, replaced by a folder
    for attempt in range(2):                     # then a folder replaced by a folder
        ranges = shard_ranges(20, 3 + attempt)
        for i, (a, b) in enumerate(ranges):
            write_embeddings_shard(tmp_path / "s", i, keys[a:b], x[a:b] + attempt, _meta(), ids=np.arange(a, b))
        publish_embeddings_shards(tmp_path / "s", final)
        _, _, v, _ = read_vectors(final)
        assert final.is_dir() and len(list(final.iterdir())) == len(ranges) and np.allclose(v, x + attempt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.parquet"]
