"""What the background processes replearn starts (the local Prefect API, the spare process) share: whether a
process is alive and is the one meant, and how long they wait idle. Standard library only: the console script
reads it before deciding where a command runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["IDLE_ENV", "IDLE_S", "idle_seconds", "is_process_of", "process_alive"]

#: Seconds the local API and a spare stay up with no command using them (:data:`IDLE_ENV` overrides).
IDLE_S = 1800.0
IDLE_ENV = "REPLEARN_PREFECT_API_IDLE_S"


def idle_seconds(env: Mapping[str, str]) -> float:
    """:data:`IDLE_ENV` from ``env`` as seconds, else :data:`IDLE_S`."""
    return float(env.get(IDLE_ENV, IDLE_S))


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists and has not exited (one of another user counts as alive; a zombie,
    exited but not yet reaped by the process that started it, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # /proc/PID/stat: "PID (name) STATE ...": Z is a zombie
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc: the signal test is all there is


def is_process_of(pid: int, marker: bytes) -> bool:
    """Whether ``pid`` is alive and (where /proc tells) runs ``marker`` (a module name on its command line), not
    a process that reused the PID."""
    if pid <= 0 or not process_alive(pid):
        return False
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the PID
