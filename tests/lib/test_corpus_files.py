"""Tests for replearn.lib.text.corpus_files: text, .gz, .bz2, folders and Parquet read as documents, and read errors."""

from __future__ import annotations

import bz2
import gzip

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _text_samples import EXPECTED, LINES, leftovers, random_ascii_lines

import replearn.lib.text.corpus_files as corpus_files
from replearn.lib.errors import CorpusError
from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.corpus_files import file_kind, list_corpus_files, read_blocks
from replearn.lib.text.token_shards import read_tokens
from replearn.lib.text.tokenize import tokenize_corpus

# --------------------------------------------------------------------------- sources


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
    assert [p.relative_to(root).as_posix() for p in list_corpus_files(root)] == [
        "a.txt", "b.txt", "b_sub/c.txt.gz", "b_sub/d.bz2",
    ]
    assert [file_kind(p) for p in list_corpus_files(root)] == ["text", "text", "gzip", "bzip2"]


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
    assert (stats.null_documents, stats.empty_documents) == (1, 1)  # None, and "42" (no token): counted


@pytest.mark.parametrize("kind", ["dictionary", "large_string", "pandas_category"])
def test_parquet_string_column_kinds_are_read_alike(tmp_path, kind):
    docs = ["The river bank", None, "money in the bank", "", "The river bank"]
    src = tmp_path / "docs.parquet"
    if kind == "pandas_category":
        import pandas as pd

        pd.DataFrame({"text": pd.Series(docs, dtype="category")}).to_parquet(src)
    else:
        arr = pa.array(docs, type=pa.large_string()) if kind == "large_string" else pa.array(docs).dictionary_encode()
        pq.write_table(pa.table({"text": arr}), src)
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert read_tokens(tmp_path / "out") == [["the", "river", "bank"], ["money", "in", "the", "bank"],
                                             ["the", "river", "bank"]]
    assert (stats.documents, stats.null_documents, stats.empty_documents) == (3, 1, 1)


def test_a_parquet_column_of_numbers_is_refused(tmp_path):
    src = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), src)
    with pytest.raises(CorpusError, match="not string"):
        tokenize_corpus(src, tmp_path / "out", TokenizerConfig())


def test_read_blocks_cut_at_line_breaks_and_byte_ranges(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_files, "BLOCK_BYTES", 8)
    src = tmp_path / "c.txt"
    data = b"one two\nthree\na much longer line\nend"
    src.write_bytes(data)
    seen: list[int] = []
    blocks = list(read_blocks(src, "text", seen.append))
    assert b"".join(blocks) == data and all(b.endswith(b"\n") for b in blocks[:-1])
    assert b"a much longer line\n" in blocks and sum(seen) == len(data)  # a long line is yielded whole
    assert b"".join(read_blocks(src, "text", seen.append, 8, 14)) == b"three\n"
    gz = tmp_path / "c.gz"
    gz.write_bytes(gzip.compress(data))
    with pytest.raises(ValueError, match="byte range"):
        list(read_blocks(gz, "text", seen.append, 8, 14))


def test_long_document_kept_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_files, "BLOCK_BYTES", 1024)  # the line spans ~100 reads
    words = [f"w{chr(97 + i % 26)}{chr(97 + (i // 26) % 26)}" for i in range(20_000)]
    src = tmp_path / "long.txt"
    src.write_text("short line\n" + " ".join(words) + "\nlast line\n")
    stats = tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    docs = read_tokens(tmp_path / "out")
    assert [len(d) for d in docs] == [2, 20_000, 2]
    assert docs[1] == words
    assert stats.tokens == 20_004


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
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- errors


def test_missing_path(tmp_path):
    src = tmp_path / "nope.txt"
    with pytest.raises(CorpusError, match="not found") as e:
        tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert str(src) in str(e.value)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_empty_folder(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / ".hidden").write_text("only hidden\n")
    with pytest.raises(CorpusError, match="no readable files") as e:
        tokenize_corpus(tmp_path / "corpus", tmp_path / "out", TokenizerConfig())
    assert str(tmp_path / "corpus") in str(e.value)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_parquet_without_column(tmp_path):
    src = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"body": ["some text"], "id": [1]}), src)
    with pytest.raises(CorpusError) as e:
        tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    msg = str(e.value)
    assert str(src) in msg and "'text'" in msg and "body" in msg and "--text-column" in msg
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_corrupt_gzip(tmp_path):
    src = tmp_path / "broken.txt.gz"
    data = gzip.compress("\n".join(random_ascii_lines(500)).encode())
    src.write_bytes(data[: len(data) // 2])  # truncated stream
    with pytest.raises(CorpusError, match="cannot read") as e:
        tokenize_corpus(src, tmp_path / "out", TokenizerConfig())
    assert str(src) in str(e.value)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []
