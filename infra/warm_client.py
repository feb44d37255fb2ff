"""Hand a ``replearn run`` command to the waiting spare process, start one for the next command, stop it.

The console script (:mod:`replearn.cli.entry`) calls :func:`run_in_spare`
first: where a ready spare (:mod:`replearn.cli.spare`) with the same
fingerprint (:func:`replearn.infra.warm_state.fingerprint`) waits, it
passes the command's arguments, environment, working folder and terminal
(file descriptors 0-2) over the spare's Unix socket, forwards Ctrl-C and
``kill`` to it, and exits with its status. Where none waits, the command
runs in its own process as before and :func:`ensure_spare` (from
:func:`replearn.cli.main.run_flow`) starts one in the background, so the
second command onwards skips about 4 s of imports.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping

from replearn.infra.processes import is_process_of
from replearn.infra.warm_state import SpareState, enabled, fingerprint, folder, read_state, state_file
from replearn.lib.store.atomic import atomic_write_json

__all__ = ["run_in_spare", "ensure_spare", "start_spare", "stop_spare", "running_spare",
           "claim_state", "release_state"]

#: Seconds a client waits for a spare to take its command before running it itself.
ACCEPT_TIMEOUT_S = 10.0
#: Seconds a client waits for a starting spare (its imports half done) to be ready, rather than import itself.
START_WAIT_S = 30.0
#: A spare still importing is waited for only if it should be ready within this many seconds (about what a
#: command's own imports take); else the command imports itself and the spare stays for the next one.
WORTH_WAITING_S = 4.0
#: The signals a client passes on to the command's process group (a terminal's Ctrl-C, ``kill``, a hang-up).
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _is_spare(pid: int) -> bool:
    """Whether ``pid`` is alive and a spare, not a process that reused the PID."""
    return is_process_of(pid, b"replearn.cli.spare")


@contextlib.contextmanager
def _locked(env: Mapping[str, str]) -> Iterator[None]:
    from filelock import FileLock

    folder(env).mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder(env) / "replearn-spare.lock")):
        yield


def _write_state(env: Mapping[str, str], state: SpareState) -> None:
    atomic_write_json(state_file(env), {"pid": state.pid, "socket": state.socket, "fingerprint": state.fingerprint,
                                        "ready": state.ready, "started": state.started,
                                        "expected_s": state.expected_s})


def start_spare(env: Mapping[str, str], cwd: str, expected_s: float | None = None, print_: str | None = None) -> int:
    """Start a spare process with ``env`` in ``cwd`` (its own session, output to ``replearn-spare.log``) and
    name it in the state file as starting (``expected_s``: how long its imports should take, from the spare
    that starts it; ``print_``: the fingerprint of ``env`` and ``cwd`` where the caller has it already);
    returns its PID."""
    with _locked(env):
        with open(folder(env) / "replearn-spare.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-P", "-m", "replearn.cli.spare"], env=dict(env),
                                    cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        _write_state(env, SpareState(pid=proc.pid, socket="", fingerprint=print_ or fingerprint(env, cwd), ready=False,
                                     started=time.time(), expected_s=expected_s))
    return proc.pid


def claim_state(env: Mapping[str, str], pid: int, socket_file: str, print_: str) -> bool:
    """Spare ``pid``, now listening on ``socket_file``, names itself ready; False if a newer spare replaced it."""
    with _locked(env):
        s = read_state(env)
        if s is not None and s.pid != pid and _is_spare(s.pid):
            return False
        _write_state(env, SpareState(pid=pid, socket=socket_file, fingerprint=print_, ready=True,
                                     started=s.started if s is not None and s.pid == pid else 0.0))
    return True


def release_state(env: Mapping[str, str], pid: int) -> None:
    """Spare ``pid`` takes a command or exits: the state file stops naming it."""
    with _locked(env):
        s = read_state(env)
        if s is not None and s.pid == pid:
            state_file(env).unlink(missing_ok=True)


def running_spare(env: Mapping[str, str] | None = None) -> SpareState | None:
    """The spare the state file names, if its process is alive (ready or still importing); else None."""
    s = read_state(os.environ if env is None else env)
    return s if s is not None and _is_spare(s.pid) else None


def stop_spare(env: Mapping[str, str] | None = None) -> SpareState | None:
    """Stop the waiting spare (SIGTERM; a command it already runs is not touched); the one stopped, or None."""
    env = os.environ if env is None else env
    s = running_spare(env)
    with contextlib.suppress(OSError):  # a read-only folder: nothing was started there either
        state_file(env).unlink(missing_ok=True)
    if s is None:
        return None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(s.pid, signal.SIGTERM)
    return s


def ensure_spare(env: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
    """Make sure a spare for this environment and code is ready or starting (a stale one is stopped).

    Does nothing where spares are off (:func:`replearn.infra.warm_state.enabled`) or inside a command a
    spare runs (it started its successor already).
    """
    env = os.environ if env is None else env
    if not enabled(env) or env.get("REPLEARN_WARM_JOB"):
        return
    cwd = cwd or os.getcwd()
    with contextlib.suppress(OSError):  # no spare (a read-only PREFECT_HOME): the next command imports itself
        s, print_ = running_spare(env), fingerprint(env, cwd)
        if s is not None and s.fingerprint == print_:
            return
        if s is not None:
            stop_spare(env)
        start_spare(env, cwd, print_=print_)


def _request(argv: list[str], env: Mapping[str, str], cwd: str, print_: str) -> bytes:
    body = json.dumps({"argv": argv, "env": dict(env), "cwd": cwd, "fingerprint": print_}).encode()
    return struct.pack("!I", len(body)) + body


def _forward_signals(pid: int) -> None:
    def forward(signum, _frame) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)


def _ready_spare(env: Mapping[str, str], print_: str) -> SpareState | None:
    """The ready spare with fingerprint ``print_``; one still importing is waited for (up to :data:`START_WAIT_S`)
    when it should be ready within :data:`WORTH_WAITING_S` (or how long it takes is not known); else None."""
    deadline = time.monotonic() + START_WAIT_S
    s = read_state(env)
    if s is not None and not s.ready and s.expected_s is not None \
            and s.expected_s - (time.time() - s.started) > WORTH_WAITING_S:
        return None  # just started: importing here is quicker
    while True:
        if s is None or s.fingerprint != print_ or not _is_spare(s.pid):
            return None
        if s.ready:
            return s
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
        s = read_state(env)


def run_in_spare(argv: list[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> int | None:
    """Run ``replearn ARGV`` in the ready spare and return its exit status; None where no spare took it (none
    ready, another fingerprint, busy, gone): the caller then runs the command itself.

    A spare still importing is waited for (up to :data:`START_WAIT_S`). Once the spare has taken the command
    (it answered with its PID), the command's outcome is the spare's: Ctrl-C, SIGTERM and SIGHUP are passed on
    to it, and a spare that dies without a status gives 1 and one ``error:`` line.
    """
    env = os.environ if env is None else env
    if not enabled(env):
        return None
    cwd = cwd or os.getcwd()
    print_ = fingerprint(env, cwd)
    s = _ready_spare(env, print_)
    if s is None:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(ACCEPT_TIMEOUT_S)
        conn.connect(s.socket)
        socket.send_fds(conn, [_request(argv, env, cwd, print_)], [0, 1, 2])
        reader = conn.makefile("rb")
        first = reader.readline().decode().split()
    except OSError:
        conn.close()
        return None
    if first[:1] != ["pid"]:
        conn.close()
        return None  # a mismatch, or the spare went away before taking the command
    pid = int(first[1])
    _forward_signals(pid)
    conn.settimeout(None)
    for line in reader:
        words = line.decode().split()
        if words[:1] == ["exit"]:
            return int(words[1])
    print(f"error: the run process {pid} ended without an exit status (killed by a signal?); "
          f"its output above says how far it got", file=sys.stderr)
    return 1
