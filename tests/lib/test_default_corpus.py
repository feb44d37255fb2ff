"""Tests for replearn.lib.text.default_corpus: the embedded books corpus (found offline) and the gensim text,
built once, atomically, from the wheel."""

from __future__ import annotations

from pathlib import Path

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


def _no_network(monkeypatch):
    import socket

    def refuse(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_books_is_the_default_and_found_offline(tmp_path, monkeypatch):
    import gzip

    from replearn.lib.text.default_corpus import BOOKS, DEFAULT_CORPUS, resolve_corpus

    _no_network(monkeypatch)
    assert DEFAULT_CORPUS == "books"
    path = resolve_corpus(None, tmp_path / "data")
    assert path == resolve_corpus("", tmp_path / "data") == resolve_corpus("books", tmp_path / "data") == BOOKS
    assert path.is_file() and path.stat().st_size > 10_000_000  # the 11 MB corpus itself, not a pointer
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        head = "".join(f.readline() for _ in range(2000))
    assert len(head.split()) > 5_000
    assert not (tmp_path / "data").exists()  # nothing copied or built for the books corpus


def test_gensim_corpus_by_name_and_paths_win(tmp_path, monkeypatch):
    import pytest

    from replearn.lib.errors import CorpusError
    from replearn.lib.text.default_corpus import embedded_corpus, resolve_corpus

    _no_network(monkeypatch)
    built = resolve_corpus("gensim", tmp_path / "data")
    assert built == tmp_path / "data" / "gensim-corpus.txt" and built.is_file()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "books").mkdir()  # a user's own folder named like an embedded corpus is read as the path
    assert resolve_corpus("books", tmp_path / "data") == Path("books")
    assert resolve_corpus("my.txt", tmp_path / "data") == Path("my.txt")
    with pytest.raises(CorpusError, match="embedded corpora: books, gensim"):
        embedded_corpus("wiki", tmp_path / "data")
