"""FastExit (cli/fast_exit.py): every atexit handler runs, output is flushed, the status is the command's."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import atexit, sys
from replearn.cli.fast_exit import FastExit
exit_ = FastExit.install()
exit_.reporters.append(lambda code: open(sys.argv[1], "a").write(f"reported {code}\\n"))
atexit.register(lambda: open(sys.argv[1], "a").write("later handler ran\\n"))
sys.stdout.write("buffered, no newline")
{body}
"""


def _run(tmp_path, body: str) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "log.txt"
    p = subprocess.run([sys.executable, "-c", SCRIPT.replace("{body}", body), str(log)], capture_output=True, text=True,
                       timeout=60)
    return p, log.read_text()


def test_status_set_and_every_handler_run_before_it(tmp_path):
    p, log = _run(tmp_path, "raise SystemExit(exit_.set(3))")
    assert p.returncode == 3 and p.stdout == "buffered, no newline"
    assert log == "later handler ran\nreported 3\n"  # the others first, the reporters last


def test_a_message_exit_prints_it_and_is_1(tmp_path):
    p, log = _run(tmp_path, "raise SystemExit(exit_.set('error: bad input'))")
    assert p.returncode == 1 and "error: bad input" in p.stderr and log.endswith("reported 1\n")


def test_an_uncaught_exception_keeps_its_traceback_and_status_1(tmp_path):
    p, log = _run(tmp_path, "raise RuntimeError('a bug')")
    assert p.returncode == 1 and "RuntimeError: a bug" in p.stderr and log.endswith("reported 1\n")
