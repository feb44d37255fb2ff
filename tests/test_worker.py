"""deployments/worker.py (what `make deploy` ends with): one Ctrl-C stops the worker and its flow runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# a stand-in for `prefect worker start`: ignores SIGINT (as Prefect 3.9's worker in effect does) and has a
# "flow run" in a session of its own, as Prefect starts them
FAKE_WORKER = ("import signal, subprocess, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True); "
               "time.sleep(600)")


def _worker_module():
    spec = importlib.util.spec_from_file_location("replearn_worker", REPO / "deployments" / "worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stop_ends_a_stubborn_worker_and_its_flow_runs_within_seconds():
    worker = _worker_module()
    fake = subprocess.Popen([sys.executable, "-c", FAKE_WORKER], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (runs := worker.descendants(fake.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runs, "the stand-in worker started no flow run"
        t0 = time.monotonic()
        worker.stop(fake, grace=20.0)
        assert time.monotonic() - t0 < 10
        assert fake.poll() is not None
        assert not [pid for pid in runs if worker._alive(pid)]
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait()


def test_quiet_environment_is_the_clis():
    from replearn.infra.quiet import apply_quiet_env, quiet_env

    env = apply_quiet_env({"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "true"})
    assert env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"  # what the user set wins
    assert {k: v for k, v in env.items() if k != "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"} == {
        k: v for k, v in quiet_env().items() if k != "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"}
