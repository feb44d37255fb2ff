"""Tests for replearn.lib.text.partitions: cuts at line starts, one partition per file, gz whole, and the gathered
result equal to tokenize_corpus (rows, order, statistics)."""

from __future__ import annotations

import bz2
import gzip
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from replearn.lib.errors import CorpusError
from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.partitions import Partition, gather_partitions, plan_partitions, tokenize_partition
from replearn.lib.text.token_shards import read_tokens
from replearn.lib.text.tokenize import tokenize_corpus

MIXED = [
    "The quick brown Fox jumps over the lazy dog.",
    "",
    "123 456 -- !!",
    "\ufeffCafé déjà vu, naïve façade: ﬁne ÆSIR straße",
    "Numbers like 42abc and x7y are split; a I o are too short.",
    "windows line\r",
    "Supercalifragilisticexpialidocious is too long, but fifteenletters ok.",
]


def _text_bytes(n_lines: int, seed: int = 0) -> bytes:
    """Lines of ASCII and non-ASCII words, blank lines, BOMs and a few invalid UTF-8 bytes."""
    rng = random.Random(seed)
    out = []
    for i in range(n_lines):
        line = " ".join(rng.choice(MIXED).split()[: rng.randint(0, 12)]).encode()
        if i % 17 == 5:
            line += b" bad\xff\xfe bytes \xe2\x82"  # invalid and truncated sequences, just before the newline
        if i % 29 == 3:
            line = "\ufeff".encode() + line
        out.append(line)
    return b"\n".join(out) + b"\n"


def _gather(src: Path, tmp: Path, partition_bytes: int, config: TokenizerConfig = TokenizerConfig()):
    plan = plan_partitions(src, partition_bytes)
    parts = [(tmp / "parts" / f"{i:05d}", tokenize_partition(p, tmp / "parts" / f"{i:05d}", config))
             for i, p in enumerate(plan)]
    return plan, gather_partitions(src, parts, tmp / "gathered", config)


def _same_as_tokenize_corpus(src: Path, tmp: Path, partition_bytes: int) -> list[Partition]:
    ref = tokenize_corpus(src, tmp / "ref")
    plan, got = _gather(src, tmp, partition_bytes)
    assert (got.files, got.documents, got.tokens, got.invalid_utf8, got.boms_removed) == (
        ref.files, ref.documents, ref.tokens, ref.invalid_utf8, ref.boms_removed)
    assert pq.read_table(tmp / "gathered").equals(pq.read_table(tmp / "ref"))
    assert read_tokens(tmp / "gathered") == read_tokens(tmp / "ref")
    assert sorted(p.name for p in (tmp / "gathered").iterdir()) == list(got.shards)
    assert ref.invalid_utf8 > 0 and ref.boms_removed > 0 and ref.documents > 50  # the data has all the hard cases
    assert not (tmp / "parts").exists() or not any((tmp / "parts").iterdir())  # partition folders removed
    return plan


# --------------------------------------------------------------------------- planning


@pytest.mark.parametrize("partition_bytes", [1, 7, 64, 1000])
def test_byte_ranges_are_cut_at_line_starts_and_cover_the_file(tmp_path, partition_bytes):
    data = _text_bytes(300)
    src = tmp_path / "c.txt"
    src.write_bytes(data)
    plan = plan_partitions(src, partition_bytes)
    assert len(plan) > 1 and all(p.path == str(src) for p in plan)
    assert plan[0].start == 0 and plan[-1].end == len(data)
    for a, b in zip(plan, plan[1:]):
        assert a.end == b.start                                   # contiguous, no overlap
        assert data[b.start - 1: b.start] == b"\n"                # every cut just after a line break
    for p in plan:
        assert p.end > p.start
        # a range is whole lines, and at least partition_bytes long unless it is the last one
        assert p is plan[-1] or p.end - p.start >= partition_bytes


def test_a_line_longer_than_a_partition_stays_whole(tmp_path):
    src = tmp_path / "c.txt"
    src.write_bytes(b"short\n" + b"x" * 500 + b" long line\nafter\nend without newline")
    plan = plan_partitions(src, 10)
    cuts = [p.start for p in plan]
    assert cuts == [0, 517] and plan[-1].end == src.stat().st_size  # "short\n" + the long line, then the rest


def test_small_files_compressed_files_and_parquet_are_one_partition_each(tmp_path):
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    big = _text_bytes(200)
    (root / "a.txt").write_bytes(big)
    with gzip.open(root / "b.txt.gz", "wb") as f:
        f.write(big)
    (root / "c.bz2").write_bytes(bz2.compress(big))
    pq.write_table(pa.table({"text": ["one two three", "four five"]}), root / "sub" / "d.parquet")
    (root / "sub" / "e.txt").write_text("tiny file\n")
    (root / ".hidden.txt").write_text("never read\n")
    plan = plan_partitions(root, 10**9)
    assert [Path(p.path).name for p in plan] == ["a.txt", "b.txt.gz", "c.bz2", "d.parquet", "e.txt"]
    assert all(p.start == 0 and p.end is None for p in plan)

    plan = plan_partitions(root, 100)  # only the uncompressed text files are cut; gz, bz2, Parquet stay whole
    by_file: dict[str, list[Partition]] = {}
    for p in plan:
        by_file.setdefault(Path(p.path).name, []).append(p)
    assert len(by_file["a.txt"]) > 5
    assert [len(by_file[n]) for n in ("b.txt.gz", "c.bz2", "d.parquet")] == [1, 1, 1]
    assert by_file["b.txt.gz"][0].end is None and by_file["d.parquet"][0].end is None


def test_partition_round_trips_as_a_dict():
    p = Partition("/data/a.txt", 10, 20)
    assert Partition.from_dict(p.to_dict()) == p
    assert Partition.from_dict(Partition("/data/b.gz").to_dict()) == Partition("/data/b.gz")


def test_planning_errors(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        plan_partitions(tmp_path / "nope.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no readable files"):
        plan_partitions(tmp_path / "empty")
    (tmp_path / "a.txt").write_text("a b\n")
    with pytest.raises(ValueError, match="partition_bytes"):
        plan_partitions(tmp_path / "a.txt", 0)


# --------------------------------------------------------------------------- the gathered result


@pytest.mark.parametrize("partition_bytes", [1, 13, 500, 10**9])
def test_one_file_in_byte_ranges_equals_tokenize_corpus(tmp_path, partition_bytes):
    src = tmp_path / "c.txt"
    src.write_bytes(_text_bytes(400, seed=partition_bytes))
    plan = _same_as_tokenize_corpus(src, tmp_path, partition_bytes)
    assert (len(plan) == 1) == (partition_bytes == 10**9)


def test_one_partition_gives_exactly_the_shards_of_tokenize_corpus(tmp_path, monkeypatch):
    src = tmp_path / "c.txt"
    src.write_bytes(_text_bytes(3000))
    ref = tokenize_corpus(src, tmp_path / "ref", shard_rows=700)
    plan = plan_partitions(src)
    got = gather_partitions(src, [(tmp_path / "p", tokenize_partition(plan[0], tmp_path / "p", shard_rows=700))],
                            tmp_path / "got")
    assert got == ref
    for name in ref.shards:
        a, b = pq.ParquetFile(tmp_path / "ref" / name), pq.ParquetFile(tmp_path / "got" / name)
        assert a.metadata.num_rows == b.metadata.num_rows and a.metadata.num_row_groups == b.metadata.num_row_groups
        assert a.read().equals(b.read())


def test_folder_of_mixed_files_equals_tokenize_corpus(tmp_path):
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(_text_bytes(300, seed=1))
    with gzip.open(root / "b.gz", "wb") as f:
        f.write(_text_bytes(200, seed=2))
    (root / "c.bz2").write_bytes(bz2.compress(_text_bytes(100, seed=3)))
    (root / "sub" / "digits.txt").write_text("123 456\n7 8 9\n")  # a file without a single token
    pq.write_table(pa.table({"text": ["Parquet rows are documents", None, "\ufeffwith a BOM\nand a newline"]}),
                   root / "sub" / "d.parquet")
    (root / "sub" / "z.txt").write_bytes(_text_bytes(250, seed=4))
    plan = _same_as_tokenize_corpus(root, tmp_path, 300)
    assert len(plan) > 6


def test_empty_partitions_are_fine_an_empty_corpus_is_not(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.txt").write_text("1 2 3\n--\n")
    (root / "b.txt").write_text("!!\n")
    plan = plan_partitions(root)
    parts = [(tmp_path / f"p{i}", tokenize_partition(p, tmp_path / f"p{i}")) for i, p in enumerate(plan)]
    assert [st.tokens for _, st in parts] == [0, 0] and all(st.shards == () for _, st in parts)
    with pytest.raises(CorpusError, match=r"empty corpus: .* \(2 file\(s\)"):
        gather_partitions(root, parts, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(CorpusError, match=r"empty corpus: .* \(2 file\(s\)"):
        tokenize_corpus(root, tmp_path / "out")  # the same message


def test_gather_replaces_the_previous_output_or_leaves_it_untouched(tmp_path):
    src = tmp_path / "c.txt"
    src.write_bytes(_text_bytes(100))
    out = tmp_path / "tokens"
    out.mkdir()
    (out / "part-00000.parquet").write_bytes(b"old")
    plan = plan_partitions(src, 200)
    parts = [(tmp_path / f"p{i}", tokenize_partition(p, tmp_path / f"p{i}")) for i, p in enumerate(plan)]
    broken = parts[:1] + [(tmp_path / "nowhere", parts[1][1])] + parts[2:]
    with pytest.raises(CorpusError, match="is missing"):
        gather_partitions(src, broken, out)
    assert (out / "part-00000.parquet").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name) == []
    parts = [(tmp_path / f"q{i}", tokenize_partition(p, tmp_path / f"q{i}")) for i, p in enumerate(plan)]
    st = gather_partitions(src, parts, out)
    tokenize_corpus(src, tmp_path / "ref")
    assert read_tokens(out) == read_tokens(tmp_path / "ref")
    assert len(st.shards) == sum(len(s.shards) for _, s in parts)


def test_a_partition_read_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    (plan,) = plan_partitions(bad)
    with pytest.raises(CorpusError, match="bad.gz"):
        tokenize_partition(plan, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_select_files_keeps_the_read_order_and_refuses_strangers(tmp_path):
    from replearn.lib.text.partitions import select_files

    for name in ("b.txt", "a.txt", "c.txt"):
        (tmp_path / name).write_text("x\n")
    assert [p.name for p in select_files(tmp_path)] == ["a.txt", "b.txt", "c.txt"]
    assert [p.name for p in select_files(tmp_path, [str(tmp_path / "c.txt"), str(tmp_path / "a.txt")])] == [
        "a.txt", "c.txt"]
    with pytest.raises(ValueError, match="not files of the corpus"):
        select_files(tmp_path, [str(tmp_path / "nope.txt")])


def test_gather_can_link_and_keep_the_partitions(tmp_path):
    """keep_parts: the token folder's shards are hard links of the partitions' shards, which stay for a later run."""
    src = tmp_path / "c.txt"
    src.write_text("the cat sat\non the mat\n" * 50)
    part = tmp_path / "p"
    st = tokenize_partition(plan_partitions(src)[0], part)
    got = gather_partitions(src, [(part, st)], tmp_path / "out", keep_parts=True)
    kept, linked = part / st.shards[0], tmp_path / "out" / got.shards[0]
    assert kept.is_file() and linked.is_file() and kept.stat().st_ino == linked.stat().st_ino
