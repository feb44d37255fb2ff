"""The spare process: imports Prefect, MLflow and the flows ahead of time, then runs one ``replearn run`` command.

Started in the background (``python -P -m replearn.cli.spare``, its
own session) by a command that ran without one (:func:`replearn.infra.
warm_client.ensure_spare`). It:

1. imports :data:`WARM_MODULES` (about 4 s of a cold command on 2 cores) and runs :data:`WARM_CALLS`;
2. listens on a Unix socket usable by its user only (no group or other permission, and the
   peer's uid checked), names itself in the state file as ready, and waits up
   to the idle time (``REPLEARN_PREFECT_API_IDLE_S``, as the local Prefect API);
3. on a command: stops listening, starts its successor (so the next command
   finds a spare too; its imports take about 5 s of one core, overlapping
   this command, which a command arriving meanwhile waits for rather than
   importing itself), says its PID to the client, takes the client's
   terminal (stdin, stdout, stderr passed as file descriptors), working
   folder, environment and arguments, and runs ``replearn`` there;
4. reports the exit status to the client as its very last act
   (:class:`~replearn.cli.fast_exit.FastExit`, registered before any import,
   so it runs after every other ``atexit`` handler) and leaves without the
   interpreter's teardown.

If the client goes away (killed), the command gets SIGTERM, as ``kill`` of a
command in its own process would: the run ends as failed and keeps its
completed outputs. It is never forked from a process that ran anything: each
spare serves one command and exits, so no thread pool or database connection
is shared.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

from replearn.cli.fast_exit import FastExit

#: Imported before a command arrives: what a ``replearn run`` of any family imports (not the CLI modules:
#: they create rich consoles, which read the terminal when created).
WARM_MODULES = ("replearn.flows.word2vec", "replearn.flows.multisense", "replearn.flows.metric",
                "replearn.flows.clip", "replearn.flows.pipeline", "mlflow.store.tracking.sqlalchemy_store",
                "mlflow.store.model_registry.sqlalchemy_store", "mlflow.pyfunc", "prefect.utilities.visualization",
                "typer", "rich.console")
#: Work done once, ahead of time, whose result the libraries keep for the process: MLflow's map of installed
#: distributions (read when a model is logged, about 0.9 s; private API, so only tried).
WARM_CALLS = (("mlflow.utils.requirements_utils", "_init_modules_to_packages_map"),)
#: Largest request (arguments, environment, folder) a spare reads, in bytes.
MAX_REQUEST = 1 << 20


class _Client:
    """The client connection of the command this spare serves."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.done = False

    def report(self, code: int) -> None:
        """``exit N`` to the client (a :class:`FastExit` reporter: after every ``atexit`` handler)."""
        self.done = True
        with contextlib.suppress(OSError):
            self.conn.sendall(f"exit {code}\n".encode())

    def watch(self) -> None:
        """SIGTERM to this command's process group when the client disconnects before the end (it was killed)."""
        with contextlib.suppress(OSError):
            while self.conn.recv(64):
                pass
        if not self.done:
            with contextlib.suppress(OSError):
                os.killpg(os.getpgid(0), signal.SIGTERM)


def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    """The client's request (JSON, length-prefixed) and the three file descriptors it passed."""
    data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
    if len(data) < 4 or len(fds) != 3:
        raise ValueError("bad request")
    size = struct.unpack("!I", data[:4])[0]
    if size > MAX_REQUEST:
        raise ValueError("request too large")
    body = bytearray(data[4:])
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ValueError("truncated request")
        body += chunk
    return json.loads(bytes(body)), fds


def _take_terminal(fds: list[int]) -> None:
    """The client's stdin, stdout and stderr become this process's; Python's streams buffer as for a terminal."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=os.isatty(stream.fileno()) or stream is sys.stderr)


def _listen(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)  # the socket file: this user only
    try:
        listener.bind(str(path))
    finally:
        os.umask(old)
    listener.listen(4)
    return listener


def _same_user(conn: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED"):
        return True  # the socket file's mode (owner only) still keeps other users out
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return uid == os.getuid()


def _wait_for_command(listener: socket.socket, fingerprint: str, idle_s: float) -> tuple[socket.socket, dict,
                                                                                           list[int]] | None:
    """The first valid request within ``idle_s`` seconds, or None (idle: the spare exits)."""
    deadline = time.monotonic() + idle_s
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([listener], [], [], min(left, 60.0))[0]:
            continue
        conn, _ = listener.accept()
        try:
            if not _same_user(conn):
                raise ValueError("another user")
            request, fds = _read_request(conn)
        except (OSError, ValueError):
            conn.close()
            continue
        if request.get("fingerprint") != fingerprint:
            with contextlib.suppress(OSError):
                conn.sendall(b"mismatch\n")
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        return conn, request, fds
    return None


def _run_command(exit_: FastExit, client: _Client, request: dict, fds: list[int],
                 set_by_imports: dict[str, str]) -> None:
    """Become the client's ``replearn`` command; never returns (exits with the command's status).

    ``set_by_imports``: the variables this process's imports added to its environment (polars' allocator
    settings, MLflow's telemetry session), kept where the client's environment lacks them.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until the CLI sets its own
    _take_terminal(fds)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update({**set_by_imports, **request["env"]})  # the client's, plus what the imports set
    os.environ["REPLEARN_WARM_JOB"] = "1"  # this command starts no other spare: its successor is started
    sys.argv = ["replearn", *request["argv"]]
    from prefect.logging.configuration import setup_logging

    setup_logging(incremental=False)  # Prefect's console handler, made again for this terminal
    threading.Thread(target=client.watch, daemon=True, name="replearn-client-watch").start()
    from replearn.cli.main import main as cli_main

    exit_.set(1)  # until the command says otherwise (an exception that escapes it is a failure)
    sys.exit(exit_.run(cli_main))


def main() -> None:
    """The spare process (see the module's description)."""
    exit_ = FastExit.install()  # first registered, last run: reports the status, skips the teardown
    exit_.set(0)  # an idle spare that goes, or one replaced, ends well
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped while waiting: its socket and state go
    from replearn.infra import warm_client, warm_state
    from replearn.infra.processes import idle_seconds
    from replearn.infra.quiet import apply_quiet_env

    env0, cwd0, t0 = dict(os.environ), os.getcwd(), time.monotonic()
    fingerprint = warm_state.fingerprint(env0, cwd0)
    apply_quiet_env(os.environ)
    for name in WARM_MODULES:
        importlib.import_module(name)
    for module, function in WARM_CALLS:
        with contextlib.suppress(Exception):  # a later MLflow without it: the command does the work itself
            getattr(importlib.import_module(module), function)()
    set_by_imports = {k: v for k, v in os.environ.items() if k not in env0}
    import_s = time.monotonic() - t0
    path = warm_state.socket_path(env0, os.getpid())
    listener = _listen(path)
    try:
        if not warm_client.claim_state(env0, os.getpid(), str(path), fingerprint):
            return  # a newer spare was started meanwhile
        idle = idle_seconds(os.environ)
        got = _wait_for_command(listener, fingerprint, idle)
        if got is not None:
            warm_client.start_spare(env0, cwd0, expected_s=import_s, print_=fingerprint)  # takes over the state
    finally:
        listener.close()
        path.unlink(missing_ok=True)
        warm_client.release_state(env0, os.getpid())
    if got is None:
        return
    conn, request, fds = got
    client = _Client(conn)
    exit_.reporters.append(client.report)
    conn.sendall(f"pid {os.getpid()}\n".encode())
    _run_command(exit_, client, request, fds, set_by_imports)


if __name__ == "__main__":
    main()
