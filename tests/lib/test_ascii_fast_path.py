"""Tests for replearn.lib.text.ascii_fast_path: the numpy path gives exactly the tokens and counts of polars."""

from __future__ import annotations

import gzip
import random

import pyarrow.parquet as pq
import pytest

import replearn.lib.text.corpus_files as corpus_files
from replearn.lib.text.ascii_fast_path import tokenize_text_block
from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.token_shards import TOKENS_SCHEMA, read_tokens
from replearn.lib.text.tokenize import tokenize_corpus
from replearn.lib.text.word_rules import block_from_lists, polars_text_block, token_expr

_PIECES = [
    "word", "Word", "WORD", "a", "I", "ab", "abcdefghijklmno", "abcdefghijklmnop", "x" * 40, "foo_bar", "_lead",
    "42abc", "x7y", "3.14", " ", "  ", "\t", ", ", ". ", "-", "'", "(", ")", "\r",
    "café", "ÉCOLE", "Straße", "naïve", "æsir", "Œuvre", "ﬁne", "Ａｂｃ", "e\u0301t\u0301e", "x\u0338y", "<\u0338",
    "ΣΊΣΥΦΟΣ", "ὈΔΥΣΣΕΎΣ", "İstanbul", "ǅemal", "\u00a0", "’", "“quoted”", "—", "…", "½", "日本語", "🙂", "\ufffd",
    "\ufeff", "foo\ufeffbar",
]


def _random_bytes_lines(n: int, non_ascii: float, seed: int) -> bytes:
    """Lines mixing ASCII words, non-ASCII letters and marks, BOMs, U+FFFD and invalid UTF-8."""
    rng = random.Random(seed)
    ascii_pieces = [p for p in _PIECES if p.isascii()]
    out = []
    for _ in range(n):
        fancy = rng.random() < non_ascii
        pool = _PIECES if fancy else ascii_pieces
        line = "".join(rng.choice(pool) + rng.choice([" ", "", ", ", "-"]) for _ in range(rng.randint(0, 12)))
        b = line.encode("utf-8")
        if fancy and rng.random() < 0.2:
            cut = rng.randint(0, len(b))
            b = b[:cut] + rng.choice([b"\xff", b"\xc3", b"\xe2\x80", b"\xfe\xfe", b"\xc3\xa9"]) + b[cut:]
        out.append(b)
    return b"\n".join(out) + rng.choice([b"", b"\n", b"\n\n", b"\r\n"])


@pytest.mark.parametrize("config", [
    TokenizerConfig(),
    TokenizerConfig(min_len=1, max_len=4),
    TokenizerConfig(min_len=3, max_len=40),
    TokenizerConfig(lowercase=False),
    TokenizerConfig(normalization=None),
    TokenizerConfig(normalization="NFD", lowercase=False, min_len=1, max_len=1),
])
@pytest.mark.parametrize("non_ascii", [0.0, 0.05, 0.6])  # 0.6: above MAX_SLOW_SHARE, the block goes to polars whole
def test_ascii_fast_path_equals_polars(config, non_ascii):
    expr = token_expr(config)
    for seed in range(4):
        raw = _random_bytes_lines(400, non_ascii, seed)
        fast = tokenize_text_block(raw, config, expr)
        ref = block_from_lists(*polars_text_block(raw, config, expr))
        assert fast.table.schema == ref.table.schema == TOKENS_SCHEMA
        assert fast.table.column("tokens").to_pylist() == ref.table.column("tokens").to_pylist()
        assert (fast.tokens, fast.invalid_utf8, fast.boms) == (ref.tokens, ref.invalid_utf8, ref.boms)


def test_fast_path_mixed_file_matches_polars(tmp_path, monkeypatch):
    raw = _random_bytes_lines(3000, 0.05, seed=7)
    src = tmp_path / "mixed.txt.gz"
    src.write_bytes(gzip.compress(raw))
    monkeypatch.setattr(corpus_files, "BLOCK_BYTES", 2048)  # many blocks, lines cut across reads
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig(), shard_rows=500)
    lists, invalid, boms = polars_text_block(raw, TokenizerConfig(), token_expr(TokenizerConfig()))
    expected = [t for t in lists.to_list() if t]
    assert read_tokens(tmp_path / "out") == expected
    assert (stats.documents, stats.tokens) == (len(expected), sum(map(len, expected)))
    assert (stats.invalid_utf8, stats.boms_removed) == (invalid, boms) and invalid > 0 and boms > 0
    # rows are buffered into whole row groups, whatever the block size
    groups = [pq.ParquetFile(tmp_path / "out" / s).metadata.num_row_groups for s in stats.shards]
    assert groups == [1] * len(stats.shards)
