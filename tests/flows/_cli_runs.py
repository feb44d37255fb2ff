"""Helpers for tests that start the real ``replearn`` command as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    return env


def word2vec_cmd(corpus: Path, home: Path, json_out: Path, *extra: str) -> list[str]:
    return [replearn_exe(), "run", "word2vec", "--corpus", str(corpus), "--home", str(home), "--json", str(json_out),
            *extra]


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (so the group can be killed: the CLI and its Prefect server)."""
    f = open(log, "w")
    return subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    rc = proc.wait(timeout=timeout)
    assert rc == 0, f"exit {rc}:\n{log.read_text()[-4000:]}"


def run_dir(summary: dict) -> Path:
    """``<home>/runs/word2vec/<run id>`` from the ``--json`` summary."""
    return Path(summary["embeddings"]).parents[1]


def vectors(summary: dict) -> tuple[np.ndarray, np.ndarray]:
    """(input, context) matrices the run saved."""
    with np.load(run_dir(summary) / "vectors.npz") as z:
        return z["input"].copy(), z["context"].copy()


def summary(path: Path) -> dict:
    return json.loads(path.read_text())
