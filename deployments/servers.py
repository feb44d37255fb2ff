"""Start the local Prefect server and MLflow server, wait until both answer, print their URLs; Ctrl-C stops both.

    python deployments/servers.py                       # what `make servers` runs
    python deployments/servers.py --prefect-port 4300 --mlflow-port 5050 --home /data/replearn

Both bind to 127.0.0.1 unless ``--host`` says otherwise. The MLflow server keeps its
tracking store and model registry in ``<home>/mlflow.db`` (SQLite, the same file that
``replearn run`` uses when no server is set) and artifacts under ``<home>/mlartifacts``,
so runs made with or without the server land in one place. The Prefect server uses
Prefect's own database (``$PREFECT_HOME/prefect.db``, ``~/.prefect`` by default, or
``$PREFECT_SERVER_DATABASE_CONNECTION_URL``): the history of runs made against Prefect's
temporary local API shows up too. Server logs go to ``<home>/logs/``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

BIN = Path(sys.executable).parent


def _url_host(host: str) -> str:
    """The address a client on this machine uses to reach a server bound to ``host``."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def answers(url: str) -> bool:
    """Whether ``url`` answers HTTP 200 within 5 s (False on any connection or URL error)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _stop(procs: list[subprocess.Popen], grace: float = 15.0) -> None:
    """SIGTERM each server's process group (uvicorn / gunicorn workers included), SIGKILL what is left."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:  # the group may outlive its leader
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def server_env(base: Mapping[str, str], prefect_url: str) -> dict[str, str]:
    """The environment both servers run with: ``base`` plus replearn's defaults (a value in ``base`` wins).

    ``prefect_url`` (e.g. ``http://127.0.0.1:4311``) is where the Prefect server answers; its UI is told
    to find the API at ``<prefect_url>/api`` (``PREFECT_SERVER_UI_API_URL``), else it looks on port 4200
    whatever ``--port`` says. ``PREFECT_API_URL`` is dropped: the server must not talk to another API.
    """
    env = dict(base)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    # MLflow 3's server-side job runner (GenAI evaluation jobs; replearn uses none) starts a pool of
    # busy huey consumer processes: off unless the user turns it on
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # the UI (in the browser) reads its API's address from /ui-settings; Prefect's default is port 4200
    if not env.get("PREFECT_UI_API_URL"):  # the older name of the same setting, if the user set that one
        env.setdefault("PREFECT_SERVER_UI_API_URL", f"{prefect_url}/api")
    # the Prefect server must not try to talk to another API while starting
    env.pop("PREFECT_API_URL", None)
    return env


def server_commands(host: str, prefect_port: int, mlflow_port: int, mlflow_workers: int,
                    home: Path) -> dict[str, tuple[list[str], str]]:
    """``{"prefect" | "mlflow": (argv, health URL)}``: the two server processes and the URL each answers 200 on.

    MLflow keeps its runs and registry in ``<home>/mlflow.db`` and artifacts in ``<home>/mlartifacts``.
    """
    url_host = _url_host(host)
    return {
        "prefect": ([str(BIN / "prefect"), "server", "start", "--host", host, "--port", str(prefect_port)],
                    f"http://{url_host}:{prefect_port}/api/health"),
        "mlflow": ([str(BIN / "mlflow"), "server", "--host", host, "--port", str(mlflow_port),
                    "--workers", str(mlflow_workers),
                    "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
                    "--default-artifact-root", (home / "mlartifacts").as_uri(),
                    "--no-serve-artifacts"],
                   f"http://{url_host}:{mlflow_port}/health"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1",
                    help="interface both servers bind to (default 127.0.0.1: this machine only; "
                         "0.0.0.0 exposes them, unauthenticated, to the network)")
    ap.add_argument("--prefect-port", type=int, default=4200)
    ap.add_argument("--mlflow-port", type=int, default=5000)
    ap.add_argument("--home", default=os.environ.get("REPLEARN_HOME") or ".replearn",
                    help="replearn data home holding mlflow.db and mlartifacts/ "
                         "(default $REPLEARN_HOME or ./.replearn)")
    ap.add_argument("--mlflow-workers", type=int, default=1, help="MLflow server worker processes (default 1)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for both servers to answer")
    args = ap.parse_args(argv)

    home = Path(args.home).expanduser().resolve()
    (home / "mlartifacts").mkdir(parents=True, exist_ok=True)
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    url_host = _url_host(args.host)
    prefect_url = f"http://{url_host}:{args.prefect_port}"
    mlflow_url = f"http://{url_host}:{args.mlflow_port}"
    if not _is_loopback(args.host):
        print(f"warning: binding to {args.host}: anyone who can reach this machine can use both servers "
              "(neither has authentication)", file=sys.stderr)

    env = server_env(os.environ, prefect_url)
    commands = server_commands(args.host, args.prefect_port, args.mlflow_port, args.mlflow_workers, home)
    procs: list[subprocess.Popen] = []
    stopping = False

    def on_signal(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        log_paths = {}
        for name, (cmd, _) in commands.items():
            log_paths[name] = logs / f"{name}-server.log"
            with open(log_paths[name], "ab") as log:
                # a session of its own: Ctrl-C reaches this script only, which then stops each group
                procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              env=env, start_new_session=True))
        pending = {name: health for name, (_, health) in commands.items()}
        deadline = time.monotonic() + args.timeout
        while pending:
            for (name, _), p in zip(commands.items(), procs):
                if p.poll() is not None:
                    print(f"error: the {name} server exited (code {p.returncode}); last lines of "
                          f"{log_paths[name]}:\n{_tail(log_paths[name])}", file=sys.stderr)
                    return 1
            for name, health in list(pending.items()):
                if answers(health):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                print(f"error: no answer from {', '.join(pending)} after {args.timeout:.0f} s; logs in {logs}",
                      file=sys.stderr)
                return 1
            time.sleep(0.5)
        print(f"Prefect UI:  {prefect_url}")
        print(f"MLflow UI:   {mlflow_url}")
        print("In another shell, send runs to these servers:")
        print(f"  export PREFECT_API_URL={prefect_url}/api")
        print(f"  export MLFLOW_TRACKING_URI={mlflow_url}")
        print(f"Logs: {logs}. Ctrl-C stops both servers.", flush=True)
        while True:
            for (name, _), p in zip(commands.items(), procs):
                if p.poll() is not None:
                    print(f"error: the {name} server exited (code {p.returncode}); see {log_paths[name]}",
                          file=sys.stderr)
                    return 1
            time.sleep(1.0)
    except KeyboardInterrupt:
        if stopping:
            print("stopping the servers", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(procs)


if __name__ == "__main__":
    sys.exit(main())
