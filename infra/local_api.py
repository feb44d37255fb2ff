"""One local Prefect API kept alive between ``replearn`` commands: started on first use, reused, stopped by a command.

Without ``PREFECT_API_URL``, Prefect starts a temporary API server for every
process and stops it at exit: 4-12 s of every ``replearn run`` on a 2-core
machine, before the first task. Instead, the first command starts this one in
the background (its own session, so it outlives the command and a Ctrl-C of
it), and later commands find it through a small state file and reuse it:

* the state file is ``$PREFECT_HOME/replearn-api.json`` (``{"url", "pid",
  "port"}``): one server per Prefect database, the one Prefect's temporary
  server would use too, so the run history is the same;
* the server is Prefect's own web server and UI (``create_app(webserver_only=
  True)``) plus the services Prefect's temporary server runs (the task-run
  recorder, so the UI shows each flow run's task runs; events), but no
  scheduler or other loop service (a deployment's worker needs ``make
  servers``), bound to 127.0.0.1 on a free port;
* a command holds a lease for as long as it runs (a file named by its PID
  under ``replearn-api.clients/``); the server stops by itself after
  :data:`IDLE_S` seconds with no live lease, so nothing lingers for ever, and
  a lease of a killed command (SIGKILL) counts as gone once its PID is;
* ``replearn prefect stop`` stops it now; ``replearn prefect status`` shows it.

``REPLEARN_PREFECT_API=temporary`` keeps Prefect's per-process temporary
server instead (what the tests of this module compare against). A configured
``PREFECT_API_URL`` (``make servers``, a worker) always wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from replearn.infra.processes import IDLE_S, idle_seconds, is_process_of, process_alive
from replearn.lib.store.atomic import atomic_write_json

__all__ = ["IDLE_S", "LocalApi", "LocalApiError", "process_alive", "state_dir", "running_api", "start_api",
           "wait_ready", "prestart", "local_api", "stop_api", "main"]

#: Seconds a command waits for a starting server to answer ``/api/health``.
START_TIMEOUT_S = 180.0


class LocalApiError(RuntimeError):
    """The local API did not start (its log says why)."""


@dataclass(frozen=True)
class LocalApi:
    """A running local API: ``url`` is the API root (``http://127.0.0.1:PORT/api``), ``pid`` its process."""

    url: str
    pid: int
    port: int

    @property
    def ui(self) -> str:
        """The Prefect UI of this server (the runs of every command that used it)."""
        return self.url.removesuffix("/api")


def state_dir() -> Path:
    """``$PREFECT_HOME`` (Prefect's own setting, ``~/.prefect`` by default), where the state file lives."""
    from prefect.settings import PREFECT_HOME

    return Path(PREFECT_HOME.value()).expanduser()


def _state_file(folder: Path) -> Path:
    return folder / "replearn-api.json"


def _clients(folder: Path) -> Path:
    return folder / "replearn-api.clients"


def _answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=timeout_s) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _is_server(pid: int) -> bool:
    """Whether ``pid`` is alive and this module's server, not a process that reused the PID."""
    return is_process_of(pid, b"replearn.infra.local_api")


def _read_state(folder: Path) -> LocalApi | None:
    try:
        s = json.loads(_state_file(folder).read_text())
        return LocalApi(url=str(s["url"]), pid=int(s["pid"]), port=int(s["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_api(folder: Path | None = None) -> LocalApi | None:
    """The server the state file names, if its process is alive and answers; else None."""
    api = _read_state(folder or state_dir())
    return api if api is not None and _is_server(api.pid) and _answers(api.url) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(folder: Path | None = None, idle_s: float | None = None, wait: bool = True) -> LocalApi:
    """Start the background server, or find the one already running or starting; with ``wait``, until it answers.

    Two commands starting at once start one server: the check and the start run
    under a file lock in ``folder``, and the state file names a starting server
    as soon as its process exists (its URL is known before it answers, so a
    caller can import its flow modules meanwhile and :func:`wait_ready` after).

    Raises:
        LocalApiError: with ``wait``, as :func:`wait_ready`.
    """
    from filelock import FileLock

    folder = folder or state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / "replearn-api.lock")):
        api = _read_state(folder)
        if api is None or not _is_server(api.pid):
            port = _free_port()
            idle = idle_s if idle_s is not None else idle_seconds(os.environ)
            with open(folder / "replearn-api.log", "ab") as out:
                proc = subprocess.Popen([sys.executable, "-m", "replearn.infra.local_api", "--port", str(port),
                                         "--idle", str(idle), "--folder", str(folder)],
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True,
                                        # its UI asks its own port, not Prefect's default 4200
                                        env={**os.environ, "PREFECT_API_URL": "",
                                             "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"})
            api = LocalApi(url=f"http://127.0.0.1:{port}/api", pid=proc.pid, port=port)
            atomic_write_json(_state_file(folder), {"url": api.url, "pid": api.pid, "port": api.port})
    if wait:
        wait_ready(api, folder)
    return api


def wait_ready(api: LocalApi, folder: Path | None = None, timeout_s: float = START_TIMEOUT_S) -> LocalApi:
    """Wait until ``api`` answers ``/api/health``; returns it.

    Raises:
        LocalApiError: its process exited, or it did not answer within ``timeout_s`` (the message names the log).
    """
    folder = folder or state_dir()
    deadline = time.monotonic() + timeout_s
    while not _answers(api.url, timeout_s=1.0):
        if not _is_server(api.pid) or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(api.pid, signal.SIGKILL)
            raise LocalApiError(f"the local Prefect API at {api.url} did not start; see {folder / 'replearn-api.log'}"
                               ", or set REPLEARN_PREFECT_API=temporary to use Prefect's temporary server")
        time.sleep(0.05)
    return api


def stop_api(folder: Path | None = None, timeout_s: float = 15.0) -> LocalApi | None:
    """Stop the background server (SIGTERM, then SIGKILL after ``timeout_s``); the one stopped, or None."""
    folder = folder or state_dir()
    api = _read_state(folder)
    if api is None:
        return None
    _state_file(folder).unlink(missing_ok=True)
    pid = api.pid
    if not _is_server(pid):
        return None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return api


def _wanted() -> bool:
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value() and os.environ.get("REPLEARN_PREFECT_API", "").lower() != "temporary"


def prestart() -> LocalApi | None:
    """Start the server now without waiting for it, if :func:`local_api` would use one (e.g. while the CLI
    imports the flow modules); None where it would not."""
    return start_api(wait=False) if _wanted() else None


@contextlib.contextmanager
def local_api() -> Iterator[LocalApi | None]:
    """Run the body against the background local API, holding a lease on it; yields it (None: not used).

    Waits until the server answers (start it earlier with :func:`prestart` to
    overlap its start with other work). Does nothing (yields None) when ``PREFECT_API_URL`` is configured or
    ``REPLEARN_PREFECT_API=temporary``.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if not _wanted():
        yield None
        return
    folder = state_dir()
    lease = _clients(folder) / str(os.getpid())
    lease.parent.mkdir(parents=True, exist_ok=True)
    lease.touch()  # before the start: a new server never sees zero leases while this command waits for it
    try:
        api = start_api(folder)
        with temporary_settings({PREFECT_API_URL: api.url}):
            yield api
    finally:
        lease.unlink(missing_ok=True)


def _live_leases(folder: Path) -> int:
    n = 0
    for f in _clients(folder).glob("*"):
        if f.name.isdigit() and process_alive(int(f.name)):
            n += 1
        else:
            f.unlink(missing_ok=True)  # a command that was killed
    return n


def _watch_idle(server, folder: Path, idle_s: float, poll_s: float = 2.0) -> None:
    """Ask uvicorn to exit once no live lease has existed for ``idle_s`` seconds."""
    last_used = time.monotonic()
    while not server.should_exit:
        time.sleep(poll_s)
        if _live_leases(folder):
            last_used = time.monotonic()
        elif time.monotonic() - last_used > idle_s:
            server.should_exit = True


async def _serve(server) -> None:
    """uvicorn ``server`` with the services Prefect's temporary server runs (``RunInEphemeralServers``: the
    task-run recorder, the event persister and their kin), so flow runs show their task runs in the UI; no
    scheduler or other loop service (a deployment's schedule needs ``make servers``)."""
    from prefect.server.services.base import RunInEphemeralServers

    async with RunInEphemeralServers.running():
        await server.serve()


def main(argv: list[str] | None = None) -> None:
    """The server process: Prefect's web server and UI on 127.0.0.1:PORT until idle or SIGTERM."""
    import argparse

    import uvicorn
    from prefect.server.api.server import create_app

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--idle", type=float, default=IDLE_S)
    ap.add_argument("--folder", type=Path, required=True)
    a = ap.parse_args(argv)
    server = uvicorn.Server(uvicorn.Config(create_app(webserver_only=True), host="127.0.0.1", port=a.port,
                                           log_level="error", lifespan="on"))
    threading.Thread(target=_watch_idle, args=(server, a.folder, a.idle), daemon=True).start()
    try:
        asyncio.run(_serve(server))
    finally:
        state = _state_file(a.folder)
        with contextlib.suppress(OSError, ValueError):
            if json.loads(state.read_text()).get("pid") == os.getpid():
                state.unlink()


if __name__ == "__main__":
    main()
