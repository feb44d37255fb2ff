"""Where the warm ``replearn run`` process lives and which commands it may serve (no heavy imports here).

A ``replearn run`` spends about 4 s importing Prefect, MLflow, pandas, numba
and the flow modules before its first task. A *spare* process (see
:mod:`replearn.cli.spare`) does those imports ahead of time and waits
for one command; the console script hands it the command (see
:mod:`replearn.infra.warm_client`). This module holds what both sides share,
importing only the standard library, so the console script decides in a few
milliseconds:

* the folder: ``$PREFECT_HOME`` (``~/.prefect`` when unset), beside the local
  Prefect API's state (:mod:`replearn.infra.local_api`);
* the state file ``replearn-spare.json``: ``{"pid", "socket", "fingerprint",
  "ready"}``, written atomically;
* the fingerprint: a spare may serve a command only when it was started
  from the same interpreter, the same code (every ``.py`` file of the
  package: a spare never runs yesterday's code) and the same environment
  (every variable but the shell's bookkeeping and the terminal's size), since
  Prefect and MLflow read settings from the environment when imported.

``REPLEARN_WARM=0`` turns it off (the tests do; each command then runs in its
own process, as before).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from replearn.infra.quiet import apply_quiet_env

__all__ = ["SpareState", "enabled", "folder", "fingerprint", "ignored_env", "read_state", "state_file", "socket_path"]

#: Shell bookkeeping and terminal geometry: they differ between two commands of one user and change no import.
VOLATILE_ENV = frozenset({"_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES", "PS1", "PS2", "PROMPT_COMMAND",
                          "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKE_TERMOUT", "MAKE_TERMERR", "TERM_SESSION_ID",
                          "WINDOWID", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "HISTFILE"})
#: What libraries set in their own process when imported (polars, MLflow, torch): no user's choice.
LIBRARY_ENV = frozenset({"KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK"})
#: The code the spare has imported: the package's layers (a change in any file means a new spare).
LAYERS = ("lib", "tasks", "flows", "infra", "serving", "cli")


@dataclass(frozen=True)
class SpareState:
    """A spare process as its state file names it: ``ready`` once its imports are done and it listens;
    ``started`` (seconds since the epoch) and ``expected_s``, how long its predecessor's imports took (None:
    not known), tell a command whether waiting for one still importing pays."""

    pid: int
    socket: str
    fingerprint: str
    ready: bool
    started: float = 0.0
    expected_s: float | None = None


def enabled(env: Mapping[str, str]) -> bool:
    """Whether commands may use a spare process: POSIX with fd passing, and ``REPLEARN_WARM`` not ``0``."""
    return (os.name == "posix" and hasattr(socket, "send_fds")
            and env.get("REPLEARN_WARM", "1").strip().lower() not in ("0", "false", "no", "off"))


def folder(env: Mapping[str, str]) -> Path:
    """``$PREFECT_HOME`` (``~/.prefect`` when unset): one spare per Prefect database, like the local API."""
    return Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser()


def state_file(env: Mapping[str, str]) -> Path:
    return folder(env) / "replearn-spare.json"


def socket_path(env: Mapping[str, str], pid: int) -> Path:
    """The spare's Unix socket: in the state folder, or in a private temporary folder where that path would be
    too long for a socket address (108 bytes on Linux)."""
    path = folder(env) / f"replearn-spare-{pid}.sock"
    if len(os.fsencode(path)) < 100:
        return path
    private = Path(os.environ.get("TMPDIR", "/tmp")) / f"replearn-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    return private / f"spare-{pid}.sock"


def _code_stamp(root: Path) -> list[tuple[str, int, int]]:
    stamp = []
    for layer in LAYERS:
        for dirpath, dirnames, filenames in os.walk(root / layer):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if name.endswith(".py"):
                    st = os.stat(os.path.join(dirpath, name))
                    stamp.append((os.path.join(dirpath, name), st.st_mtime_ns, st.st_size))
    return sorted(stamp)


def fingerprint(env: Mapping[str, str], cwd: str) -> str:
    """A hash of what a spare's imports depend on: the interpreter, the package's code, the installed packages
    (site-packages' modification time), the environment (as the CLI completes it;
    ``PYTHONPATH`` included; :func:`ignored_env` excepted) and Prefect's settings files in ``cwd``."""
    full = apply_quiet_env(dict(env))
    root = Path(__file__).resolve().parents[1]
    site = [p for p in sys.path if p.endswith("site-packages")]
    settings_files = [(name, os.stat(Path(cwd) / name).st_mtime_ns)
                      for name in (".env", "prefect.toml") if (Path(cwd) / name).exists()]
    blob = json.dumps({
        "python": os.path.realpath(sys.executable),  # bin/python and bin/python3 of one environment alike
        "code": _code_stamp(root),
        "site": [(p, os.stat(p).st_mtime_ns) for p in site if os.path.isdir(p)],
        "env": sorted((k, v) for k, v in full.items() if not ignored_env(k)),
        "cwd_settings": settings_files,
    })
    return hashlib.sha256(blob.encode()).hexdigest()


def ignored_env(name: str) -> bool:
    """Whether the fingerprint ignores variable ``name``: the shell's bookkeeping, the terminal's size, and
    what libraries set themselves (``_RJEM_MALLOC_CONF`` of polars, ``_MLFLOW_TELEMETRY_SESSION_ID``: the
    ``_`` names, and :data:`LIBRARY_ENV`)."""
    return name.startswith("_") or name in VOLATILE_ENV or name in LIBRARY_ENV


def read_state(env: Mapping[str, str]) -> SpareState | None:
    """The spare the state file names, or None (no file, unreadable)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        s = json.loads(state_file(env).read_text())
        expected = s.get("expected_s")
        return SpareState(pid=int(s["pid"]), socket=str(s["socket"]), fingerprint=str(s["fingerprint"]),
                          ready=bool(s["ready"]), started=float(s.get("started", 0.0)),
                          expected_s=None if expected is None else float(expected))
    return None
