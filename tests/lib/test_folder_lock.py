"""One holder per checkpoint folder: a second one takes a numbered sibling; a killed holder frees its folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from replearn.lib.store.folder_lock import LOCK_NAME, locked_folder


def test_a_second_holder_gets_a_numbered_sibling_and_the_first_folder_comes_back(tmp_path):
    base = tmp_path / "ckpt" / "key"
    with locked_folder(base) as a:
        assert (a.path, a.slot) == (base, 0) and (base / LOCK_NAME).is_file()
        (a.path / "epoch-001.npz").write_bytes(b"a")
        with locked_folder(base) as b, locked_folder(base) as c:
            assert (b.path, b.slot) == (tmp_path / "ckpt" / "key.1", 1)
            assert (c.path, c.slot) == (tmp_path / "ckpt" / "key.2", 2)
        assert (a.path / "epoch-001.npz").read_bytes() == b"a"  # nobody touched the first holder's files
    with locked_folder(base) as again:  # released on exit: the folder and its checkpoints are there for a resume
        assert again.slot == 0 and (again.path / "epoch-001.npz").exists()


def test_remove_deletes_the_folder_while_holding_it(tmp_path):
    base = tmp_path / "key"
    with locked_folder(base) as held:
        (held.path / "epoch-001.npz").write_bytes(b"x")
        (held.path / "sub").mkdir()
        held.remove()
        assert not base.exists()
    with locked_folder(base) as fresh:
        assert fresh.slot == 0 and sorted(p.name for p in base.iterdir()) == [LOCK_NAME]


def test_an_exception_releases_the_lock_and_keeps_the_folder(tmp_path):
    base = tmp_path / "key"
    with pytest.raises(RuntimeError):
        with locked_folder(base) as held:
            (held.path / "epoch-001.npz").write_bytes(b"x")
            raise RuntimeError("killed mid-training")
    with locked_folder(base) as again:
        assert again.slot == 0 and (base / "epoch-001.npz").exists()


def test_a_holder_killed_with_sigkill_frees_the_folder(tmp_path):
    base = tmp_path / "key"
    code = ("import sys, time; from replearn.lib.store.folder_lock import locked_folder\n"
            f"with locked_folder({str(base)!r}) as f:\n"
            "    print(f.slot, flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "0"
        with locked_folder(base) as other:
            assert other.slot == 1  # held by the other process
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        with locked_folder(base) as mine:
            assert mine.slot == 0  # the operating system dropped the dead holder's lock
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_removal_racing_with_new_holders_never_gives_one_folder_to_two(tmp_path):
    base = tmp_path / "key"
    holders: list[int] = []
    overlaps: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(100):
                with locked_folder(base) as f:
                    if f.slot == 0:
                        with lock:
                            holders.append(threading.get_ident())
                            if len(holders) > 1:
                                overlaps.append("two holders of slot 0")
                        time.sleep(0.0005)
                        with lock:
                            holders.remove(threading.get_ident())
                        f.remove()
                    else:
                        f.remove()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not overlaps


def test_all_slots_taken(tmp_path):
    with locked_folder(tmp_path / "k", slots=2), locked_folder(tmp_path / "k", slots=2):
        with pytest.raises(OSError, match="in use"):
            with locked_folder(tmp_path / "k", slots=2):
                pass
