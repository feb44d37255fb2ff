"""Tests for replearn.lib.text.tokenize (the entry point): atomic output, empty corpora, a real corpus.

The steps have tests of their own: test_tokenizer_config.py, test_corpus_files.py, test_utf8_repair.py,
test_word_rules.py, test_ascii_fast_path.py, test_token_shards.py, test_default_corpus.py.
"""

from __future__ import annotations

import time

import pytest
from _text_samples import BOOKS, leftovers

from replearn.lib.errors import CorpusError
from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.token_shards import read_tokens
from replearn.lib.text.tokenize import tokenize_corpus


def test_existing_output_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "part-00099.parquet").write_text("stale")
    src = tmp_path / "c.txt"
    src.write_text("fresh tokens\n")
    tokenize_corpus(src, out, TokenizerConfig())
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet"]
    assert read_tokens(out) == [["fresh", "tokens"]]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("content", [b"", b"\n\n", b"123 456\n-- 7 --\na b c\n"])
def test_empty_corpus(tmp_path, content):
    src = tmp_path / "empty.txt"
    src.write_bytes(content)
    with pytest.raises(CorpusError, match="empty corpus") as e:
        tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert str(src) in str(e.value)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_failure_keeps_previous_output(tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("kept words\n")
    bad.write_text("1 2 3\n")
    tokenize_corpus(good, tmp_path / "out", TokenizerConfig())
    with pytest.raises(CorpusError):
        tokenize_corpus(bad, tmp_path / "out", TokenizerConfig())
    assert read_tokens(tmp_path / "out") == [["kept", "words"]]
    assert leftovers(tmp_path) == []


def test_bad_arguments(tmp_path):
    src = tmp_path / "c.txt"
    src.write_text("some words\n")
    with pytest.raises(ValueError, match="shard_rows"):
        tokenize_corpus(src, tmp_path / "out", shard_rows=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CorpusError, match="not a folder"):
        tokenize_corpus(src, tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x" and leftovers(tmp_path) == []


@pytest.mark.slow
def test_books_corpus_stats(tmp_path):
    if not BOOKS.is_file():
        pytest.skip(f"shared corpus {BOOKS} not present")
    t0 = time.perf_counter()
    stats = tokenize_corpus(BOOKS, tmp_path / "out", TokenizerConfig())
    assert time.perf_counter() - t0 < 60
    assert stats.boms_removed == 30
    assert stats.invalid_utf8 > 0
    assert stats.tokens > 1_000_000
