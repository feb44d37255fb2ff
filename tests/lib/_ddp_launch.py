"""Shared by the DDP tests: a free localhost port, the torchrun command, one launcher run, one-vs-two processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun() -> list[str]:
    exe = Path(sys.executable).parent / "torchrun"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def launch(cmd: list[str], out: Path) -> dict:
    """Run ``cmd --out out`` (one thread per process) and return the ``history.json`` rank 0 wrote."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd + ["--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "history.json").read_text())


def one_and_two_processes(args: list[str], out: Path) -> tuple[dict, dict, list[float], list[float]]:
    """Run ``python *args`` alone and under ``torchrun --nproc_per_node 2``; (history 1, history 2, loss 1, loss 2)."""
    one = launch([sys.executable, *args], out / "one")
    two = launch([*torchrun(), "--standalone", "--nproc_per_node", "2", *args], out / "two")
    assert one["world_size"] == 1 and two["world_size"] == 2
    return one, two, [h["loss"] for h in one["history"]], [h["loss"] for h in two["history"]]
