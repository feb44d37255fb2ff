"""Tests for replearn.lib.text.token_shards: shard and row-group bounds, the schema, reading back, errors."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import replearn.lib.text.token_shards as token_shards
from replearn.lib.errors import CorpusError
from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.token_shards import (
    TOKENS_SCHEMA,
    ShardWriter,
    check_out_dir,
    check_shard_rows,
    iter_token_shards,
    read_tokens,
)
from replearn.lib.text.tokenize import tokenize_corpus


def test_shards_and_row_groups_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(token_shards, "ROW_GROUP_ROWS", 2)
    src = tmp_path / "c.txt"
    src.write_text("".join(f"doc number {chr(97 + i)}{chr(97 + i)}\n" for i in range(10)))
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig(), shard_rows=3)
    assert stats.shards == tuple(f"part-{i:05d}.parquet" for i in range(4))
    sizes = [pq.ParquetFile(tmp_path / "out" / s).metadata for s in stats.shards]
    assert [m.num_rows for m in sizes] == [3, 3, 3, 1]
    assert [[m.row_group(i).num_rows for i in range(m.num_row_groups)] for m in sizes] == [[2, 1]] * 3 + [[1]]
    assert [d[2] for d in read_tokens(tmp_path / "out")] == [f"{chr(97 + i)}{chr(97 + i)}" for i in range(10)]


def test_writer_buffers_small_tables_into_whole_row_groups(tmp_path):
    writer = ShardWriter(tmp_path, shard_rows=5)
    for i in range(7):
        writer.write(pa.table({"tokens": [[f"w{i}"]]}, schema=TOKENS_SCHEMA))
    writer.write(pa.table({"tokens": []}, schema=TOKENS_SCHEMA))  # empty tables are fine
    writer.close()
    assert writer.names == ["part-00000.parquet", "part-00001.parquet"]
    assert [pq.ParquetFile(tmp_path / n).metadata.num_row_groups for n in writer.names] == [1, 1]
    assert [table.num_rows for table in iter_token_shards(tmp_path)] == [5, 2]
    assert read_tokens(tmp_path) == [[f"w{i}"] for i in range(7)]


def test_read_missing_token_dir(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        list(iter_token_shards(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no token shards"):
        read_tokens(tmp_path / "empty")


def test_checks(tmp_path):
    with pytest.raises(ValueError, match="shard_rows"):
        check_shard_rows(0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CorpusError, match="not a folder"):
        check_out_dir(tmp_path / "file")
    check_out_dir(tmp_path / "absent")
