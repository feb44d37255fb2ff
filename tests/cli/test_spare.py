"""The spare process end to end (cli/spare.py, infra/warm_client.py, the console script): it takes one
command with the caller's terminal, environment and folder, reports its status, hands over to a successor,
ends a command whose client was killed, and goes when stopped or idle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replearn.infra import warm_client, warm_state
from replearn.infra.local_api import process_alive

pytestmark = pytest.mark.slow
REPLEARN = str(Path(sys.executable).with_name("replearn"))


@pytest.fixture
def env(tmp_path):
    """A user's environment with spares on, its own PREFECT_HOME, no server configured."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "REPLEARN_HOME", "PREFECT_PROFILE")}
    e.update({"REPLEARN_WARM": "1", "PREFECT_HOME": str(tmp_path / "prefect"), "OMP_NUM_THREADS": "1",
              "REPLEARN_PREFECT_API_IDLE_S": "30"})
    yield e
    warm_client.stop_spare(e)
    subprocess.run([REPLEARN, "prefect", "stop"], env=e, capture_output=True)


def _ready(env, timeout=180.0) -> warm_state.SpareState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = warm_client.running_spare(env)
        if s is not None and s.ready:
            return s
        time.sleep(0.1)
    raise AssertionError(f"no spare became ready:\n{(Path(env['PREFECT_HOME']) / 'replearn-spare.log').read_text()}")


def _gone(pid: int, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_spare_takes_one_command_then_hands_over_and_stops(env, tmp_path):
    cwd = str(tmp_path)
    warm_client.start_spare(env, cwd)
    first = _ready(env)
    assert Path(first.socket).stat().st_mode & 0o077 == 0  # its user only
    missing = tmp_path / "no-such-corpus.txt"
    t = time.perf_counter()
    p = subprocess.run([REPLEARN, "run", "word2vec", "--corpus", missing.name, "--home", "h"], env=env, cwd=cwd,
                       capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - t
    # the spare's output reached this caller's pipes, the relative path was resolved in the caller's folder,
    # and the status is the command's
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"corpus not found: {missing.name} (resolved from {tmp_path})" in p.stdout + p.stderr
    assert took < 3.0  # no imports of Prefect or MLflow in the command's own process
    assert _gone(first.pid)  # one command per spare
    second = _ready(env)  # its successor, for the next command
    assert second.pid != first.pid and second.fingerprint == first.fingerprint
    # a command from another environment is not taken (the spare imported under other settings)
    assert warm_client.run_in_spare(["run", "word2vec"], env={**env, "PREFECT_LOGGING_LEVEL": "DEBUG"},
                                    cwd=cwd) is None
    assert warm_client.stop_spare(env).pid == second.pid
    assert _gone(second.pid)
    assert warm_client.running_spare(env) is None and not Path(second.socket).exists()


def test_a_command_whose_client_is_killed_ends(env, tmp_path, lee_corpus):
    cwd = str(tmp_path)
    warm_client.start_spare(env, cwd)
    spare = _ready(env)
    log = tmp_path / "out.log"
    with open(log, "w") as out:
        client = subprocess.Popen([REPLEARN, "run", "word2vec", "--corpus", str(lee_corpus), "--home", "h",
                                   "--epochs", "50"], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "Beginning flow run" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "Beginning flow run" in log.read_text(), log.read_text()
    assert process_alive(spare.pid)  # it runs the command
    client.send_signal(signal.SIGKILL)
    client.wait()
    assert _gone(spare.pid, timeout=60), log.read_text()[-3000:]  # SIGTERM from its watcher: the run ended
    assert "Crash detected" in log.read_text() or "termination signal" in log.read_text()


def test_an_idle_spare_goes_by_itself(env, tmp_path):
    env["REPLEARN_PREFECT_API_IDLE_S"] = "1"
    warm_client.start_spare(env, str(tmp_path))
    spare = _ready(env)
    assert _gone(spare.pid, timeout=30)
    assert warm_client.running_spare(env) is None and not Path(spare.socket).exists()
