"""Tests for replearn.lib.text.default_corpus: built once, atomically, from gensim's bundled text."""

from __future__ import annotations

from _text_samples import leftovers

from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.default_corpus import default_corpus
from replearn.lib.text.tokenize import tokenize_corpus


def test_default_corpus(tmp_path):
    dest = tmp_path / "data" / "default.txt"
    path = default_corpus(dest)
    assert path == dest and dest.is_file()
    assert leftovers(dest.parent) == []
    mtime = dest.stat().st_mtime_ns
    assert default_corpus(dest) == dest and dest.stat().st_mtime_ns == mtime  # not rebuilt
    stats = tokenize_corpus(dest, tmp_path / "tokens", TokenizerConfig())
    assert stats.tokens > 100_000
    assert stats.invalid_utf8 == 0
