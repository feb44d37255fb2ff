"""Tests for replearn.lib.text.utf8_repair: invalid UTF-8 replaced and counted, BOMs removed anywhere and counted."""

from __future__ import annotations

import polars as pl

from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.token_shards import read_tokens
from replearn.lib.text.tokenize import tokenize_corpus
from replearn.lib.text.utf8_repair import decode_lines, decode_utf8, remove_boms


def test_invalid_utf8_replaced_and_counted(tmp_path):
    src = tmp_path / "bad.txt"
    # \xff and \xfe are invalid start bytes (2 replacements); \xc3 is a truncated
    # 2-byte sequence (1); \xef\xbf\xbd is a genuine U+FFFD and must not count.
    src.write_bytes(b"caf\xc3\xa9 ok\nbad\xff\xfebytes here\nreal \xef\xbf\xbd char\ncut \xc3\n")
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert stats.invalid_utf8 == 3
    assert read_tokens(tmp_path / "out") == [
        ["café", "ok"], ["bad", "bytes", "here"], ["real", "char"], ["cut"],
    ]


def test_boms_removed_anywhere_and_counted(tmp_path):
    src = tmp_path / "bom.txt"
    bom = "\ufeff".encode()
    src.write_bytes(bom + b"hello world\nfoo" + bom + b"bar baz\n" + bom + b"\n")
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert stats.boms_removed == 3
    assert read_tokens(tmp_path / "out") == [["hello", "world"], ["foobar", "baz"]]


def test_decode_functions_count_what_they_repair():
    bom = "\ufeff".encode()
    assert decode_utf8(bom + b"a\xffb \xef\xbf\xbd" + bom) == ("a\ufffdb \ufffd", 1, 2)
    lines, invalid, boms = decode_lines(b"one\n\xfetwo\n")
    assert (lines.to_list(), invalid, boms) == (["one", "\ufffdtwo", ""], 1, 0)
    s, boms = remove_boms(pl.Series(["\ufeffx", "y\ufeff\ufeff", None]))
    assert (s.to_list(), boms) == (["x", "y", None], 3)
