"""Run a Prefect process worker for replearn's work pool; one Ctrl-C stops it and the flow runs it started.

    python deployments/worker.py --pool replearn-process      # what `make deploy` ends with
    python deployments/worker.py --pool replearn-process --limit 2   # further `prefect worker start` options

Why a wrapper: on Ctrl-C, ``prefect worker start`` stops polling but then waits for its flow-run
processes to finish (they run in sessions of their own, so the terminal's Ctrl-C never reaches
them), and a second Ctrl-C SIGKILLs the worker (make: "Error 137"), orphaning those runs. Here the
worker runs in a session of its own; on the first SIGINT or SIGTERM this script SIGTERMs every flow
run the worker started (Prefect marks them crashed; replearn's run context ends the MLflow run FAILED),
asks the worker to stop (SIGINT), and SIGKILLs whatever is left once the runs have ended (at most
``--grace`` seconds) and the worker has had 3 s more. Exit
status: the worker's own when it exits by itself, 130 after SIGINT, 143 after SIGTERM.

The worker and its flow runs get replearn's quiet environment (``replearn.infra.quiet``), the same
as the ``replearn`` command.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from replearn.infra.quiet import apply_quiet_env

BIN = Path(sys.executable).parent


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, whatever its session (Linux ``/proc``; [] elsewhere), parents first."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(0), [])
        out += children
        todo += children
    return out


def _signal_all(pids: list[int], sig: int, groups: bool = False) -> None:
    for pid in pids:
        for kill in ((os.killpg, os.kill) if groups else (os.kill,)):
            try:
                kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def stop(worker: subprocess.Popen, grace: float, settle: float = 3.0) -> None:
    """SIGTERM the worker's flow runs and SIGINT the worker; SIGKILL what is left once the runs have ended
    (at most ``grace`` s) and the worker has had ``settle`` s more.

    The worker is not waited for longer: it holds no state that a SIGKILL loses (the server marks it offline),
    and once seen, a Prefect 3.9 worker stayed up over 90 s after SIGINT with no flow run in flight.
    """
    runs = descendants(worker.pid)
    _signal_all(runs, signal.SIGTERM)
    _signal_all([worker.pid], signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in runs):
        time.sleep(0.2)
    deadline = min(deadline, time.monotonic() + settle)
    while time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.2)
    _signal_all([*runs, *descendants(worker.pid), worker.pid], signal.SIGKILL, groups=True)
    try:
        worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", default=os.environ.get("REPLEARN_WORK_POOL") or "replearn-process")
    ap.add_argument("--grace", type=float, default=20.0,
                    help="seconds the worker and its flow runs get to stop before SIGKILL (default 20)")
    args, extra = ap.parse_known_args(argv)
    env = apply_quiet_env(dict(os.environ))
    received: list[int] = []

    def on_signal(signum, frame):  # noqa: ARG001
        received.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # a session of its own: the terminal's Ctrl-C reaches this script only, which then stops the worker
    worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", args.pool, "--type", "process",
                               *extra], env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        while not received and worker.poll() is None:
            time.sleep(0.2)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if worker.poll() is None:
            print("stopping the worker and its flow runs", file=sys.stderr, flush=True)
            stop(worker, args.grace)
    if received:
        return 128 + received[0]
    return worker.returncode


if __name__ == "__main__":
    sys.exit(main())
