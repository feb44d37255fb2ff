"""Which spare a command takes (infra/warm_client.py): a ready one, or one still importing only when waiting pays."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from replearn.infra import warm_client
from replearn.infra.warm_state import SpareState


@pytest.fixture
def fake_spare(tmp_path):
    """A live process whose command line names the spare module (what ``_is_spare`` checks), and an env."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "replearn.cli.spare"])
    yield proc.pid, {"PREFECT_HOME": str(tmp_path), "REPLEARN_WARM": "1"}
    proc.kill()
    proc.wait()


def test_a_spare_that_just_started_importing_is_not_waited_for(fake_spare):
    pid, env = fake_spare
    warm_client._write_state(env, SpareState(pid, "", "fp", ready=False, started=time.time(), expected_s=20.0))
    t = time.monotonic()
    assert warm_client._ready_spare(env, "fp") is None
    assert time.monotonic() - t < 0.5


def test_a_spare_nearly_ready_or_of_unknown_speed_is_waited_for(fake_spare):
    pid, env = fake_spare
    for expected in (5.0, None):
        warm_client._write_state(env, SpareState(pid, "", "fp", ready=False, started=time.time() - 3.0,
                                                 expected_s=expected))
        ready = SpareState(pid, "/x.sock", "fp", ready=True)
        threading.Timer(0.3, warm_client._write_state, (env, ready)).start()
        assert warm_client._ready_spare(env, "fp") == ready


def test_a_spare_of_another_fingerprint_or_gone_is_not_taken(fake_spare):
    pid, env = fake_spare
    warm_client._write_state(env, SpareState(pid, "/x.sock", "other", ready=True))
    assert warm_client._ready_spare(env, "fp") is None
    warm_client._write_state(env, SpareState(999_999_999, "/x.sock", "fp", ready=True))
    assert warm_client._ready_spare(env, "fp") is None
