"""Tests for replearn.lib.text.tokenize: sources, bad bytes, word rules, atomic output, errors."""

from __future__ import annotations

import bz2
import gzip
import random
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gensim.utils import simple_preprocess

import replearn.lib.text.tokenize as tok
from replearn.lib.errors import CorpusError
from replearn.lib.text.tokenize import (
    TOKENS_SCHEMA,
    TokenizerConfig,
    TokenizeStats,
    default_corpus,
    iter_token_shards,
    read_tokens,
    tokenize_corpus,
)

REPO = Path(__file__).resolve().parents[2]
BOOKS = REPO.parent / "shared" / "data" / "corpus" / "books.txt.gz"

LINES = [
    "The quick brown Fox jumps over the lazy dog.",
    "",
    "123 456 -- !!",
    "Numbers like 42abc and x7y are split; a I o are too short.",
    "Supercalifragilisticexpialidocious is too long, but fifteenletters ok.",
]
EXPECTED = [simple_preprocess(line) for line in LINES if simple_preprocess(line)]


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def _random_ascii_lines(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    seps = [" ", "  ", ", ", ". ", "-", "'", "\t", " 123 ", "9", "(", ") ", "!", "/", ":", '"']
    lines = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 30)):
            parts.append("".join(rng.choice(letters) for _ in range(rng.choice([1, 1, 2, 3, 5, 8, 14, 15, 16, 20]))))
            parts.append(rng.choice(seps))
        lines.append("".join(parts))
    return lines


# --------------------------------------------------------------------------- config


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


# --------------------------------------------------------------------------- sources


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
    lines = _random_ascii_lines(3000, seed=1)
    src = tmp_path / "c.txt"
    src.write_text("\n".join(lines), encoding="utf-8")  # no final newline
    monkeypatch.setattr(tok, "BLOCK_BYTES", 4096)  # many blocks, lines cut across reads
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig(), shard_rows=700)
    expected = [t for t in (simple_preprocess(line) for line in lines) if t]
    assert read_tokens(tmp_path / "out") == expected
    assert stats.documents == len(expected)
    assert stats.tokens == sum(map(len, expected))
    assert len(stats.shards) == -(-len(expected) // 700)


@pytest.mark.parametrize("opener,suffix", [(gzip.open, ".gz"), (bz2.open, ".bz2")])
def test_compressed_inputs(tmp_path, opener, suffix):
    src = tmp_path / f"c.txt{suffix}"
    with opener(src, "wb") as f:
        f.write(("\n".join(LINES) + "\n").encode())
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert read_tokens(tmp_path / "out") == EXPECTED
    assert stats.files == 1


def test_folder_recursive_sorted_skips_hidden(tmp_path):
    root = tmp_path / "corpus"
    (root / "b_sub").mkdir(parents=True)
    (root / ".hidden_dir").mkdir()
    (root / "a.txt").write_text("alpha one\n")
    with gzip.open(root / "b_sub" / "c.txt.gz", "wt") as f:
        f.write("gamma three\n")
    with bz2.open(root / "b_sub" / "d.bz2", "wt") as f:
        f.write("delta four\n")
    (root / "b.txt").write_text("beta two\n")
    (root / ".secret.txt").write_text("hidden file\n")
    (root / ".hidden_dir" / "e.txt").write_text("hidden dir\n")
    stats = tokenize_corpus(root, tmp_path / "out", TokenizerConfig())
    assert read_tokens(tmp_path / "out") == [
        ["alpha", "one"], ["beta", "two"], ["gamma", "three"], ["delta", "four"],
    ]
    assert stats.files == 4


def test_parquet_rows_are_documents(tmp_path):
    src = tmp_path / "docs.parquet"
    pq.write_table(
        pa.table({
            "id": [1, 2, 3, 4],
            "body": ["First line\nsecond line of doc one", None, "\ufeffdoc three", "42"],
        }),
        src,
    )
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig(text_column="body"))
    assert read_tokens(tmp_path / "out") == [
        ["first", "line", "second", "line", "of", "doc", "one"], ["doc", "three"],
    ]
    assert (stats.documents, stats.boms_removed, stats.invalid_utf8) == (2, 1, 0)


# --------------------------------------------------------------------------- numpy fast path == polars


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
@pytest.mark.parametrize("non_ascii", [0.0, 0.05, 0.6])  # 0.6: above _MAX_SLOW_SHARE, the block goes to polars whole
def test_ascii_fast_path_equals_polars(config, non_ascii):
    expr = tok._token_expr(config)
    for seed in range(4):
        raw = _random_bytes_lines(400, non_ascii, seed)
        fast = tok._tokenize_text_block(raw, config, expr)
        ref = tok._block_from_lists(*tok._polars_text_block(raw, config, expr))
        assert fast.table.schema == ref.table.schema == TOKENS_SCHEMA
        assert fast.table.column("tokens").to_pylist() == ref.table.column("tokens").to_pylist()
        assert (fast.tokens, fast.invalid_utf8, fast.boms) == (ref.tokens, ref.invalid_utf8, ref.boms)


def test_fast_path_mixed_file_matches_polars(tmp_path, monkeypatch):
    raw = _random_bytes_lines(3000, 0.05, seed=7)
    src = tmp_path / "mixed.txt.gz"
    src.write_bytes(gzip.compress(raw))
    monkeypatch.setattr(tok, "BLOCK_BYTES", 2048)  # many blocks, lines cut across reads
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig(), shard_rows=500)
    lists, invalid, boms = tok._polars_text_block(raw, TokenizerConfig(), tok._token_expr(TokenizerConfig()))
    expected = [t for t in lists.to_list() if t]
    assert read_tokens(tmp_path / "out") == expected
    assert (stats.documents, stats.tokens) == (len(expected), sum(map(len, expected)))
    assert (stats.invalid_utf8, stats.boms_removed) == (invalid, boms) and invalid > 0 and boms > 0
    # rows are buffered into whole row groups, whatever the block size
    groups = [pq.ParquetFile(tmp_path / "out" / s).metadata.num_row_groups for s in stats.shards]
    assert groups == [1] * len(stats.shards)


def test_gzip_members_padding_and_garbage(tmp_path):
    src = tmp_path / "multi.gz"
    src.write_bytes(gzip.compress(b"first member\n") + gzip.compress(b"") + b"\0" * 7 + gzip.compress(b"second one\n"))
    tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert read_tokens(tmp_path / "out") == [["first", "member"], ["second", "one"]]
    bad = tmp_path / "garbage.gz"
    bad.write_bytes(gzip.compress(b"some words\n") + b"not gzip")
    with pytest.raises(CorpusError, match="cannot read"):
        tokenize_corpus(bad, tmp_path / "out2", TokenizerConfig())
    crc = tmp_path / "crc.gz"
    data = gzip.compress(b"some words\n" * 100)
    crc.write_bytes(data[:-8] + bytes(4) + data[-4:])  # wrong CRC-32
    with pytest.raises(CorpusError, match="cannot read"):
        tokenize_corpus(crc, tmp_path / "out3", TokenizerConfig())
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- bad bytes


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


def test_nfkc_and_unicode_lowercase(tmp_path):
    src = tmp_path / "u.txt"
    src.write_text("ﬁne ÉCOLE Straße\n", encoding="utf-8")
    tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert read_tokens(tmp_path / "out") == [["fine", "école", "straße"]]
    tokenize_corpus(src, tmp_path / "raw", TokenizerConfig(normalization=None, lowercase=False))
    assert read_tokens(tmp_path / "raw") == [["ﬁne", "ÉCOLE", "Straße"]]


# --------------------------------------------------------------------------- long documents, shards


def test_long_document_kept_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(tok, "BLOCK_BYTES", 1024)  # the line spans ~100 reads
    words = [f"w{chr(97 + i % 26)}{chr(97 + (i // 26) % 26)}" for i in range(20_000)]
    src = tmp_path / "long.txt"
    src.write_text("short line\n" + " ".join(words) + "\nlast line\n")
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    docs = read_tokens(tmp_path / "out")
    assert [len(d) for d in docs] == [2, 20_000, 2]
    assert docs[1] == words
    assert stats.tokens == 20_004


def test_shards_and_row_groups_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(tok, "ROW_GROUP_ROWS", 2)
    src = tmp_path / "c.txt"
    src.write_text("".join(f"doc number {chr(97 + i)}{chr(97 + i)}\n" for i in range(10)))
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig(), shard_rows=3)
    assert stats.shards == tuple(f"part-{i:05d}.parquet" for i in range(4))
    sizes = [pq.ParquetFile(tmp_path / "out" / s).metadata for s in stats.shards]
    assert [m.num_rows for m in sizes] == [3, 3, 3, 1]
    assert [[m.row_group(i).num_rows for i in range(m.num_row_groups)] for m in sizes] == [[2, 1]] * 3 + [[1]]
    assert [d[2] for d in read_tokens(tmp_path / "out")] == [f"{chr(97 + i)}{chr(97 + i)}" for i in range(10)]


def test_existing_output_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "part-00099.parquet").write_text("stale")
    src = tmp_path / "c.txt"
    src.write_text("fresh tokens\n")
    tokenize_corpus(src, out, TokenizerConfig())
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet"]
    assert read_tokens(out) == [["fresh", "tokens"]]
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- errors


def test_missing_path(tmp_path):
    src = tmp_path / "nope.txt"
    with pytest.raises(CorpusError, match="not found") as e:
        tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert str(src) in str(e.value)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_empty_folder(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / ".hidden").write_text("only hidden\n")
    with pytest.raises(CorpusError, match="no readable files") as e:
        tokenize_corpus(tmp_path / "corpus", tmp_path / "out", TokenizerConfig())
    assert str(tmp_path / "corpus") in str(e.value)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("content", [b"", b"\n\n", b"123 456\n-- 7 --\na b c\n"])
def test_empty_corpus(tmp_path, content):
    src = tmp_path / "empty.txt"
    src.write_bytes(content)
    with pytest.raises(CorpusError, match="empty corpus") as e:
        tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert str(src) in str(e.value)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_failure_keeps_previous_output(tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("kept words\n")
    bad.write_text("1 2 3\n")
    tokenize_corpus(good, tmp_path / "out", TokenizerConfig())
    with pytest.raises(CorpusError):
        tokenize_corpus(bad, tmp_path / "out", TokenizerConfig())
    assert read_tokens(tmp_path / "out") == [["kept", "words"]]
    assert _leftovers(tmp_path) == []


def test_parquet_without_column(tmp_path):
    src = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"body": ["some text"], "id": [1]}), src)
    with pytest.raises(CorpusError) as e:
        tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    msg = str(e.value)
    assert str(src) in msg and "'text'" in msg and "body" in msg and "--text-column" in msg
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_corrupt_gzip(tmp_path):
    src = tmp_path / "broken.txt.gz"
    data = gzip.compress("\n".join(_random_ascii_lines(500)).encode())
    src.write_bytes(data[: len(data) // 2])  # truncated stream
    with pytest.raises(CorpusError, match="cannot read") as e:
        tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert str(src) in str(e.value)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_read_missing_token_dir(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        list(iter_token_shards(tmp_path / "nothing"))


# --------------------------------------------------------------------------- real corpora


def test_default_corpus(tmp_path):
    dest = tmp_path / "data" / "default.txt"
    path = default_corpus(dest)
    assert path == dest and dest.is_file()
    assert _leftovers(dest.parent) == []
    mtime = dest.stat().st_mtime_ns
    assert default_corpus(dest) == dest and dest.stat().st_mtime_ns == mtime  # not rebuilt
    stats = tokenize_corpus(dest, tmp_path / "tokens", TokenizerConfig())
    assert stats.tokens > 100_000
    assert stats.invalid_utf8 == 0


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
