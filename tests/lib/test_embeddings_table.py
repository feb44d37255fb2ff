"""The embeddings table: round trip, readability without replearn, refusal of bad input before writing."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.embeddings_table import (
    METADATA_KEY,
    EmbeddingsMetadata,
    content_hash,
    read_embeddings,
    read_metadata,
    read_vectors,
    schema,
    write_embeddings,
)

D = 6


def _meta(dim: int = D, **kw) -> EmbeddingsMetadata:
    base = dict(
        family="word2vec",
        dim=dim,
        normalized=False,
        similarity="cos",
        mlflow_run_id="abc123",
        source_hash="f" * 64,
        config={"window": 5, "lr": 0.025, "nested": {"sizes": [1, 2]}},
        matrix="input",
    )
    base.update(kw)
    return EmbeddingsMetadata(**base)


def _data(n: int = 10, dim: int = D, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [f"w{i}" for i in range(n)], rng.standard_normal((n, dim)).astype(np.float32)


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    same_layout = a.dtype == b.dtype == np.float32 and a.shape == b.shape
    return same_layout and np.array_equal(a.view(np.uint32), b.view(np.uint32))


# --------------------------------------------------------------------------- schema / metadata


def test_schema():
    s = schema(4)
    assert s.names == ["id", "key", "vector", "sense", "modality", "label"]
    assert s.field("id").type == pa.int64() and not s.field("id").nullable
    assert s.field("key").type == pa.string() and not s.field("key").nullable
    t = s.field("vector").type
    assert pa.types.is_fixed_size_list(t) and t.list_size == 4 and t.value_type == pa.float32()
    assert s.field("sense").type == pa.int16() and s.field("sense").nullable
    assert s.field("modality").nullable and s.field("label").nullable
    with pytest.raises(EmbeddingsError):
        schema(0)


def test_metadata_json_round_trip_and_validation():
    m = _meta(config={"n": np.int64(3), "x": np.float32(0.5)})
    assert m.config == {"n": 3, "x": 0.5}  # converted to plain JSON values
    assert EmbeddingsMetadata.from_json(m.to_json()) == m
    d = json.loads(m.to_json())
    d["added_by_a_newer_writer"] = 1
    assert EmbeddingsMetadata.from_dict(d) == m
    with pytest.raises(EmbeddingsError, match="format_version"):
        EmbeddingsMetadata.from_dict({**d, "format_version": 99})
    with pytest.raises(EmbeddingsError, match="similarity"):
        _meta(similarity="dot")
    with pytest.raises(EmbeddingsError, match="dim"):
        _meta(dim=0)
    with pytest.raises(EmbeddingsError, match="JSON"):
        _meta(config={"f": object()})
    with pytest.raises(EmbeddingsError, match="lacks required"):
        EmbeddingsMetadata.from_dict({"family": "x"})


# --------------------------------------------------------------------------- round trip


def test_round_trip_all_columns(tmp_path):
    keys, x = _data(5)
    ids = np.array([10, 3, 7, 100, 0])
    meta = _meta()
    p = write_embeddings(
        tmp_path / "e.parquet",
        keys,
        x,
        meta,
        ids=ids,
        sense=[0, 1, None, 2, 0],
        modality=["text", "image", None, "text", "image"],
        label=["a", None, "b", "c", None],
    )
    assert p == tmp_path / "e.parquet"
    table, meta2 = read_embeddings(p)
    assert meta2 == meta
    assert table.schema.remove_metadata() == schema(D)
    assert table.column("sense").to_pylist() == [0, 1, None, 2, 0]
    assert table.column("modality").to_pylist() == ["text", "image", None, "text", "image"]
    assert table.column("label").to_pylist() == ["a", None, "b", "c", None]

    k2, ids2, x2, meta3 = read_vectors(p)
    assert k2 == keys
    assert ids2.dtype == np.int64 and np.array_equal(ids2, ids)
    assert _bits_equal(x2, x)
    assert x2.flags.c_contiguous and x2.flags.writeable and x2.flags.owndata
    assert meta3 == meta
    assert read_metadata(p) == meta
    assert sorted(f.name for f in tmp_path.iterdir()) == ["e.parquet"]


def test_optional_columns_default_to_null_and_ids_to_positions(tmp_path):
    keys, x = _data(4)
    table, _ = read_embeddings(write_embeddings(tmp_path / "e.parquet", keys, x, _meta()))
    assert table.column("id").to_pylist() == [0, 1, 2, 3]
    for c in ("sense", "modality", "label"):
        assert table.column(c).null_count == 4


def test_many_row_groups_and_overwrite(tmp_path):
    keys, x = _data(1000)
    p = tmp_path / "e.parquet"
    write_embeddings(p, keys[:3], x[:3], _meta())
    write_embeddings(p, keys, x, _meta(), row_group_size=64)  # replaces the old file
    assert pq.ParquetFile(p).num_row_groups == 16
    k2, ids2, x2, _ = read_vectors(p)
    assert k2 == keys and _bits_equal(x2, x) and np.array_equal(ids2, np.arange(1000))


def test_special_keys_survive(tmp_path):
    keys = ["", "naïve", "日本", "a b\tc", "emoji 🙂"]
    _, x = _data(5)
    k2, *_ = read_vectors(write_embeddings(tmp_path / "e.parquet", keys, x, _meta()))
    assert k2 == keys


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.astype(np.float64),
        lambda x: np.asfortranarray(x),
        lambda x: np.repeat(x, 2, axis=1)[:, ::2],  # strided view, not contiguous
        lambda x: x.tolist(),
        lambda x: (x * 0 + 3).astype(np.int32),
    ],
    ids=["float64", "fortran", "strided", "list", "int32"],
)
def test_inputs_are_cast_to_contiguous_float32(tmp_path, make):
    keys, x = _data(7)
    given = make(x)
    if isinstance(given, np.ndarray) and given.dtype != np.float64 and given.dtype.kind == "f":
        assert not given.flags.c_contiguous
    _, _, x2, _ = read_vectors(write_embeddings(tmp_path / "e.parquet", keys, given, _meta()))
    assert _bits_equal(x2, np.asarray(given, dtype=np.float32))


def test_keys_as_numpy_and_arrow(tmp_path):
    keys, x = _data(3)
    for k in (np.array(keys), pa.array(keys), np.array(keys, dtype=object)):
        k2, *_ = read_vectors(write_embeddings(tmp_path / "e.parquet", k, x, _meta()))
        assert k2 == keys


# --------------------------------------------------------------------------- readable without replearn


def test_readable_by_pyarrow_polars_duckdb(tmp_path):
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    keys, x = _data(20)
    p = write_embeddings(tmp_path / "e.parquet", keys, x, _meta(), ids=np.arange(20) * 2, label=["c"] * 20)

    # plain pyarrow: table and footer metadata
    t = pq.read_table(p)
    assert t.num_rows == 20
    flat = t.column("vector").combine_chunks().flatten().to_numpy()
    assert _bits_equal(flat.reshape(20, D), x)
    assert json.loads(pq.read_metadata(p).metadata[METADATA_KEY])["family"] == "word2vec"

    # polars
    df = pl.read_parquet(p)
    assert df.height == 20 and df["key"].to_list() == keys and df["id"].to_list() == list(range(0, 40, 2))
    assert _bits_equal(np.asarray(df["vector"].to_numpy(), dtype=np.float32).reshape(20, D), x)

    # duckdb
    assert duckdb.sql(f"select count(*) from '{p}'").fetchall() == [(20,)]
    [row] = duckdb.sql(f"select key, vector, label from '{p}' where id = 6").fetchall()
    assert row[0] == "w3" and row[2] == "c"
    assert np.allclose(np.asarray(row[1], dtype=np.float32), x[3])


# --------------------------------------------------------------------------- bad input


def _bad_cases():
    keys, x = _data(10)
    nan = x.copy()
    nan[[2, 7], 1] = np.nan
    inf = x.copy()
    inf[4, 0] = -np.inf
    big = x.astype(np.float64)
    big[5, 2] = 1e300  # finite in float64, Inf in float32
    none_keys = list(keys)
    none_keys[3] = None
    none_keys[8] = None
    int_keys = list(keys)
    int_keys[6] = 6
    return {
        "nan": (dict(keys=keys, vectors=nan), ["2 rows", "2, 7", "NaN"]),
        "inf": (dict(keys=keys, vectors=inf), ["1 row ", "ids 4", "Inf"]),
        "overflow": (dict(keys=keys, vectors=big), ["ids 5", "Inf"]),
        "wrong_dim": (dict(keys=keys, vectors=x[:, :4]), ["dimension 4", "metadata.dim=6", "10 rows", "..."]),
        "ragged": (dict(keys=keys[:3], vectors=[[0.0] * 6, [0.0] * 5, [0.0] * 6]), ["dimension", "ids 1)"]),
        "dup_ids": (dict(keys=keys, vectors=x, ids=[0, 1, 2, 3, 3, 5, 6, 9, 8, 9]), ["duplicate", "ids 3, 9"]),
        "neg_ids": (dict(keys=keys, vectors=x, ids=np.arange(10) - 1), [">= 0", "ids -1"]),
        "float_ids": (dict(keys=keys, vectors=x, ids=np.arange(10.0)), ["integers"]),
        "none_key": (dict(keys=none_keys, vectors=x), ["null", "2 rows", "ids 3, 8"]),
        "int_key": (dict(keys=int_keys, vectors=x), ["strings", "ids 6"]),
        "short_keys": (dict(keys=keys[:9], vectors=x), ["keys", "N=10"]),
        "empty": (dict(keys=[], vectors=np.zeros((0, D), np.float32)), ["no vectors"]),
        "bad_modality": (dict(keys=keys, vectors=x, modality=["text"] * 9 + ["audio"]), ["modality", "ids 9"]),
        "bad_sense": (dict(keys=keys, vectors=x, sense=[0] * 9 + [40000]), ["sense"]),
        "not_unit": (dict(keys=keys, vectors=x, metadata=_meta(normalized=True)), ["normalized", "10 rows"]),
        "1d": (dict(keys=keys, vectors=x[0]), ["2-D"]),
        "null_vector": (dict(keys=keys[:4], vectors=[list(x[0]), None, list(x[2]), None]),
                        ["null vectors", "2 rows", "ids 1, 3"]),
        "null_vector_ids": (dict(keys=keys[:3], vectors=[None, list(x[1]), list(x[2])], ids=[7, 8, 9]),
                            ["null vectors", "ids 7)"]),
        "null_vector_arrow": (dict(keys=keys[:3], vectors=pa.array([list(x[0]), None, list(x[2])],
                                                                   pa.list_(pa.float32(), D))),
                              ["null vectors", "ids 1)"]),
        "wrong_dim_arrow": (dict(keys=keys[:2], vectors=pa.array([[0.0] * 6, [0.0] * 4], pa.list_(pa.float32()))),
                            ["dimension", "ids 1)"]),
        "nan_folder": (dict(keys=keys, vectors=nan, shard_rows=3), ["NaN", "ids 2, 7"]),
    }


@pytest.mark.parametrize("case", list(_bad_cases()))
def test_bad_input_raises_and_writes_nothing(tmp_path, case):
    kwargs, fragments = _bad_cases()[case]
    kwargs.setdefault("metadata", _meta())
    p = tmp_path / "out" / "e.parquet"
    with pytest.raises(EmbeddingsError) as ei:
        write_embeddings(p, **kwargs)
    msg = str(ei.value)
    assert str(p) in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)
    assert not p.exists()
    assert not p.parent.exists() or list(p.parent.iterdir()) == []  # no temp file either


def test_bad_input_keeps_existing_file(tmp_path):
    keys, x = _data(3)
    p = write_embeddings(tmp_path / "e.parquet", keys, x, _meta())
    before = p.read_bytes()
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(EmbeddingsError):
        write_embeddings(p, keys, bad, _meta())
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["e.parquet"]


def test_all_problems_reported_at_once(tmp_path):
    keys, x = _data(4)
    keys[1] = None
    x[2, 0] = np.nan
    with pytest.raises(EmbeddingsError) as ei:
        write_embeddings(tmp_path / "e.parquet", keys, x, _meta(), ids=[5, 5, 6, 7])
    msg = str(ei.value)
    assert "null" in msg and "NaN" in msg and "duplicate" in msg


def test_many_bad_rows_are_summarised(tmp_path):
    keys, x = _data(100)
    x[::2, 0] = np.nan
    with pytest.raises(EmbeddingsError, match=r"50 rows \(ids 0, 2, 4, 6, 8, \.\.\.\)"):
        write_embeddings(tmp_path / "e.parquet", keys, x, _meta())


def test_normalized_vectors_accepted(tmp_path):
    keys, x = _data(5)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    write_embeddings(tmp_path / "e.parquet", keys, x, _meta(normalized=True))


def test_metadata_type_checked(tmp_path):
    keys, x = _data(2)
    with pytest.raises(TypeError):
        write_embeddings(tmp_path / "e.parquet", keys, x, {"family": "x"})


def test_reading_foreign_parquet_fails_clearly(tmp_path):
    p = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), p)
    with pytest.raises(EmbeddingsError, match="not a replearn embeddings file"):
        read_embeddings(p)
    with pytest.raises(FileNotFoundError):
        read_vectors(tmp_path / "missing.parquet")


@pytest.mark.slow
def test_million_rows_fast(tmp_path):
    n, d = 1_000_000, 8
    x = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    keys = pa.array(np.char.add("w", np.arange(n).astype(str)))  # built without a Python loop
    t0 = time.perf_counter()
    p = write_embeddings(tmp_path / "e.parquet", keys, x, _meta(dim=d))
    k2, ids2, x2, _ = read_vectors(p)
    elapsed = time.perf_counter() - t0
    assert len(k2) == n and _bits_equal(x2, x) and ids2[-1] == n - 1
    assert elapsed < 30, elapsed  # ~2 s on a 2-core laptop; a per-row Python loop would take minutes


# --------------------------------------------------------------------------- content hash


def test_content_hash(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"hello\n" * 100_000)
    b.write_bytes(b"world")
    assert content_hash(a) == hashlib.sha256(a.read_bytes()).hexdigest()  # == sha256sum
    both = content_hash([a, b])
    assert len(both) == 64
    assert content_hash([b, a]) == both  # argument order does not matter
    assert content_hash(tmp_path) == both  # a directory stands for its files
    b.write_bytes(b"World")
    assert content_hash([a, b]) != both
    with pytest.raises(FileNotFoundError):
        content_hash(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError):
        content_hash(tmp_path / "empty")


# --------------------------------------------------------------------------- Arrow input, folders of shards


def test_arrow_vectors_accepted(tmp_path):
    keys, x = _data(5)
    col = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), D)
    _, _, v, _ = read_vectors(write_embeddings(tmp_path / "e.parquet", keys, pa.chunked_array([col]), _meta()))
    assert _bits_equal(v, x)


def test_folder_of_shards_reads_as_one_table(tmp_path):
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    keys, x = _data(1000)
    ids = np.arange(1000) * 2 + 1
    label = [f"c{i % 7}" for i in range(1000)]
    p = write_embeddings(tmp_path / "emb", keys, x.astype(np.float64), _meta(), ids=ids, label=label,
                         shard_rows=300, row_group_size=128)
    parts = sorted(q.name for q in p.iterdir())
    assert parts == [f"part-{i:05d}.parquet" for i in range(4)]
    assert [q.name for q in tmp_path.iterdir()] == ["emb"]  # no temporary left
    md = pq.read_metadata(p / "part-00000.parquet")
    assert md.num_rows == 300 and md.num_row_groups == 3 and max(md.row_group(i).num_rows for i in range(3)) <= 128
    assert json.loads(md.metadata[METADATA_KEY])["family"] == "word2vec"  # every shard self-describing

    k2, i2, v2, meta = read_vectors(p)
    assert k2 == keys and (i2 == ids).all() and _bits_equal(v2, x) and meta == _meta()
    assert read_metadata(p) == _meta()
    t, _ = read_embeddings(p, columns=["id", "label"])
    assert t.column("label").to_pylist() == label

    # without replearn
    assert pq.read_table(p).num_rows == 1000
    df = pl.read_parquet(f"{p}/*.parquet")
    assert df.height == 1000 and df["id"].to_list() == ids.tolist()
    [(n, s)] = duckdb.sql(f"select count(*), sum(id) from '{p}/*.parquet'").fetchall()
    assert n == 1000 and s == int(ids.sum())
    [row] = duckdb.sql(f"select key, vector from '{p}/*.parquet' where id = 21").fetchall()
    assert row[0] == "w10" and np.allclose(np.asarray(row[1], np.float32), x[10])


def test_folder_layout_by_suffix_and_atomic_replace(tmp_path):
    keys, x = _data(50)
    p = write_embeddings(tmp_path / "emb", keys, x, _meta())  # no .parquet suffix: a folder
    assert p.is_dir() and [q.name for q in p.iterdir()] == ["part-00000.parquet"]
    keys2, x2 = _data(20, seed=1)
    write_embeddings(p, keys2, x2, _meta(), shard_rows=8)
    assert len(list(p.iterdir())) == 3 and read_vectors(p)[0] == keys2
    bad = x2.copy()
    bad[4] = np.nan
    with pytest.raises(EmbeddingsError, match="ids 4"):
        write_embeddings(p, keys2, bad, _meta(), shard_rows=8)
    assert read_vectors(p)[0] == keys2 and sorted(q.name for q in tmp_path.iterdir()) == ["emb"]
    f = write_embeddings(tmp_path / "one.parquet", keys, x, _meta())  # existing callers: one file
    assert f.is_file()


def test_folder_with_mixed_exports_is_refused(tmp_path):
    keys, x = _data(10)
    p = write_embeddings(tmp_path / "emb", keys, x, _meta(), shard_rows=5)
    other = write_embeddings(tmp_path / "o", keys, x, _meta(family="clip"), shard_rows=5)
    (other / "part-00001.parquet").replace(p / "part-00001.parquet")
    with pytest.raises(EmbeddingsError, match=r"shards \['part-00001.parquet'\] carry metadata different"):
        read_vectors(p)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no .parquet shards"):
        read_vectors(empty)
