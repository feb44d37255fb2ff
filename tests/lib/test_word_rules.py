"""Tests for replearn.lib.text.word_rules: gensim simple_preprocess word rules, NFKC and Unicode lower-casing."""

from __future__ import annotations

import pytest
from _text_samples import EXPECTED, LINES, random_ascii_lines
from gensim.utils import simple_preprocess

import replearn.lib.text.corpus_files as corpus_files
from replearn.lib.text.config import TokenizerConfig, TokenizeStats
from replearn.lib.text.token_shards import TOKENS_SCHEMA, iter_token_shards, read_tokens
from replearn.lib.text.tokenize import tokenize_corpus


def test_plain_text_matches_simple_preprocess(tmp_path):
    src = tmp_path / "c.txt"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert read_tokens(tmp_path / "out") == EXPECTED
    assert stats == TokenizeStats(
        files=1, documents=len(EXPECTED), tokens=sum(map(len, EXPECTED)),
        invalid_utf8=0, boms_removed=0, shards=("part-00000.parquet",),
    )
    assert stats.to_dict()["shards"] == ["part-00000.parquet"]
    table = next(iter_token_shards(tmp_path / "out"))
    assert table.schema == TOKENS_SCHEMA


def test_random_ascii_sample_equals_simple_preprocess(tmp_path, monkeypatch):
    lines = random_ascii_lines(3000, seed=1)
    src = tmp_path / "c.txt"
    src.write_text("\n".join(lines), encoding="utf-8")  # no final newline
    monkeypatch.setattr(corpus_files, "BLOCK_BYTES", 4096)  # many blocks, lines cut across reads
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig(), shard_rows=700)
    expected = [t for t in (simple_preprocess(line) for line in lines) if t]
    assert read_tokens(tmp_path / "out") == expected
    assert stats.documents == len(expected)
    assert stats.tokens == sum(map(len, expected))
    assert len(stats.shards) == -(-len(expected) // 700)


def test_nfkc_and_unicode_lowercase(tmp_path):
    src = tmp_path / "u.txt"
    src.write_text("ﬁne ÉCOLE Straße\n", encoding="utf-8")
    tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert read_tokens(tmp_path / "out") == [["fine", "école", "straße"]]
    tokenize_corpus(src, tmp_path / "raw", TokenizerConfig(normalization=None, lowercase=False))
    assert read_tokens(tmp_path / "raw") == [["ﬁne", "ÉCOLE", "Straße"]]


@pytest.mark.parametrize("text,expected", [
    ("foo_bar", ["foo", "bar"]),          # "_" separates tokens (simple_preprocess keeps "foo_bar")
    ("a bc " + "x" * 16, ["bc"]),         # 2..15 characters; longer tokens dropped, not truncated
    ("abc123def", ["abc", "def"]),        # digits are not letters
])
def test_word_rule_edges(tmp_path, text, expected):
    src = tmp_path / "e.txt"
    src.write_text(text + "\n", encoding="utf-8")
    tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert read_tokens(tmp_path / "out") == [expected]
