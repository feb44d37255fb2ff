"""Helpers for tests that start the real ``replearn`` command as a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def replearn_exe() -> str:
    """The ``replearn`` console script of this interpreter's environment."""
    exe = Path(sys.executable).parent / "replearn"
    assert exe.exists(), f"{exe} not found: install the project (pip install -e .)"
    return str(exe)


def cli_env(prefect_home: Path) -> dict[str, str]:
    """The environment of a user with no server configured: ephemeral Prefect API, SQLite MLflow store in the home."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "REPLEARN_HOME", "PREFECT_API_URL", "PREFECT_PROFILE")}
    env["PREFECT_HOME"] = str(prefect_home)
    env["OMP_NUM_THREADS"] = "1"
    env["REPLEARN_PREFECT_API_IDLE_S"] = "20"  # the local Prefect API a command starts stops soon after the test
    return env


def run_cmd(family: str, home: Path, *extra: str) -> list[str]:
    """``replearn run <family> --home <home> <extra...>``."""
    return [replearn_exe(), "run", family, "--home", str(home), *extra]


def word2vec_cmd(corpus: Path, home: Path, json_out: Path, *extra: str) -> list[str]:
    return run_cmd("word2vec", home, "--corpus", str(corpus), "--json", str(json_out), *extra)


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (so the group can be killed: the CLI and its Prefect server)."""
    f = open(log, "w")
    return subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    rc = proc.wait(timeout=timeout)
    assert rc == 0, f"exit {rc}:\n{log.read_text()[-4000:]}"


def stage_output(summary: dict, name: str) -> Path:
    """Where the ``--json`` summary says stage output ``name`` is (``tokens``, ``vocabulary``, ``vectors``...)."""
    return Path(summary["stage_outputs"][name])


def vectors(summary: dict) -> tuple[np.ndarray, np.ndarray]:
    """(input, context) matrices the run saved."""
    with np.load(stage_output(summary, "vectors")) as z:
        return z["input"].copy(), z["context"].copy()


def summary(path: Path) -> dict:
    return json.loads(path.read_text())


CHECKPOINT = re.compile(r"epoch-(\d+)\.(pt|npz)")
"""A finished epoch checkpoint's file name (temporary names of one being written do not match)."""


def checkpoint_epochs(folder: Path) -> list[int]:
    """The epochs of the finished checkpoints in ``folder``, ascending."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := CHECKPOINT.fullmatch(p.name)))


def wait_for_checkpoint(checkpoints: Path, proc: subprocess.Popen, timeout: float = 240.0) -> Path:
    """Poll every 5 ms until a folder ``<checkpoints>/<key>/`` holds a finished epoch checkpoint; return it.

    Raises:
        AssertionError: ``proc`` ended first, or nothing came within ``timeout`` seconds.
    """
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        for folder in (checkpoints.iterdir() if checkpoints.is_dir() else ()):
            if checkpoint_epochs(folder):
                return folder
        assert proc.poll() is None, "the run ended before writing its first checkpoint"
        time.sleep(0.005)
    raise AssertionError(f"no epoch checkpoint under {checkpoints} after {timeout} s")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group (the CLI and its temporary Prefect server) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def finished_runs(home: Path, family: str) -> list:
    """The FINISHED MLflow runs of ``family`` in the SQLite store of ``home``, newest first."""
    from replearn.infra.tracking import client

    c = client(f"sqlite:///{(home / 'mlflow.db').resolve()}")
    exp = c.get_experiment_by_name(family)
    runs = c.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"]) if exp else []
    return [r for r in runs if r.info.status == "FINISHED"]
