"""lib/store/file_digests.py: a file's SHA-256, remembered while the file is unchanged."""

from __future__ import annotations

import hashlib
import os

import pytest

from replearn.lib.store import file_digests
from replearn.lib.store.embeddings_table import content_hash
from replearn.lib.store.file_digests import RACY_NS, file_digest


@pytest.fixture
def reads(monkeypatch):
    """The files actually read (hashed), in order."""
    seen: list[str] = []
    real = file_digests._sha256

    def counting(path, *a, **kw):
        seen.append(path.name)
        return real(path, *a, **kw)

    monkeypatch.setattr(file_digests, "_sha256", counting)
    return seen


def _age(path, seconds: float) -> None:
    """Set the modification time ``seconds`` in the past (a file that has been still that long)."""
    t = path.stat().st_mtime_ns - int(seconds * 1e9)
    os.utime(path, ns=(t, t))


def test_equals_sha256_and_reads_a_still_file_once(tmp_path, reads):
    f = tmp_path / "a.txt"
    f.write_bytes(b"the cat sat\n" * 100)
    _age(f, 10)
    memo = tmp_path / "memo"
    assert file_digest(f) == hashlib.sha256(f.read_bytes()).digest()
    assert file_digest(f, memo) == file_digest(f, memo) == hashlib.sha256(f.read_bytes()).digest()
    assert reads == ["a.txt", "a.txt"]  # once without a memo, once to fill it; the third call read nothing
    assert len(list(memo.glob("*.json"))) == 1


def test_a_changed_file_is_read_again(tmp_path, reads):
    f, memo = tmp_path / "a.txt", tmp_path / "memo"
    f.write_bytes(b"one\n")
    _age(f, 10)
    before = file_digest(f, memo)
    f.write_bytes(b"two\n")  # same size, new content, a new modification time
    _age(f, 5)
    assert file_digest(f, memo) == hashlib.sha256(b"two\n").digest() != before
    assert reads == ["a.txt", "a.txt"]


def test_a_racily_new_file_is_never_trusted(tmp_path, reads):
    """Modified less than RACY_NS before it was hashed: an edit within the clock's granularity could keep the
    modification time, so the memo is not used."""
    assert RACY_NS >= 1_000_000_000
    f, memo = tmp_path / "a.txt", tmp_path / "memo"
    f.write_bytes(b"fresh\n")
    file_digest(f, memo)
    file_digest(f, memo)
    assert reads == ["a.txt", "a.txt"]


def test_a_broken_memo_is_ignored(tmp_path, reads):
    f, memo = tmp_path / "a.txt", tmp_path / "memo"
    f.write_bytes(b"x\n")
    _age(f, 10)
    file_digest(f, memo)
    for m in memo.glob("*.json"):
        m.write_text("{not json")
    assert file_digest(f, memo) == hashlib.sha256(b"x\n").digest()


def test_content_hash_with_a_memo_reads_only_new_files(tmp_path, reads):
    folder, memo = tmp_path / "corpus", tmp_path / "memo"
    folder.mkdir()
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text(f"{name}\n")
        _age(folder / name, 10)
    first = content_hash(folder, memo)
    assert first == content_hash(folder)  # the memo changes nothing but the reading
    (folder / "c.txt").write_text("c\n")
    reads.clear()
    grown = content_hash(folder, memo)
    assert reads == ["c.txt"]  # a and b answered from the memo
    assert grown != first and grown == content_hash(folder)
