"""Tests for replearn.lib.text.config: TokenizerConfig defaults and validation, TokenizeStats round trip."""

from __future__ import annotations

import pytest

from replearn.lib.text.config import TokenizerConfig, TokenizeStats


def test_config_defaults_and_validation():
    c = TokenizerConfig()
    assert (c.lowercase, c.normalization, c.pattern, c.min_len, c.max_len, c.text_column) == (
        True, "NFKC", r"[^\W\d_]+", 2, 15, "text",
    )
    with pytest.raises(ValueError, match="min_len"):
        TokenizerConfig(min_len=0)
    with pytest.raises(ValueError, match="max_len"):
        TokenizerConfig(min_len=5, max_len=4)
    with pytest.raises(ValueError, match="pattern"):
        TokenizerConfig(pattern="(unclosed")
    with pytest.raises(ValueError, match="pattern"):
        TokenizerConfig(pattern=r"(?=look)ahead")  # compiles in Python, not in polars
    with pytest.raises(ValueError, match="normalization"):
        TokenizerConfig(normalization="NFX")
    with pytest.raises(ValueError, match="text_column"):
        TokenizerConfig(text_column="")


def test_stats_round_trip_as_a_dict():
    st = TokenizeStats(files=2, documents=3, tokens=9, invalid_utf8=1, boms_removed=0,
                       shards=("part-00000.parquet", "part-00001.parquet"))
    d = st.to_dict()
    assert d["shards"] == ["part-00000.parquet", "part-00001.parquet"]
    assert TokenizeStats.from_dict({**d, "path": "/somewhere"}) == st
