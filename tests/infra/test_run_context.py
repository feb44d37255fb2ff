"""The run context: a run whose process was killed is marked KILLED by the next run of the family on the host."""

from __future__ import annotations

import socket
import subprocess
import sys

from replearn.infra.run_context import HOST_TAG, PID_TAG, mark_killed_runs
from replearn.infra.tracking import client, experiment_id, tracking_uri


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_runs_of_dead_processes_on_this_host_are_marked_killed_others_left(home):
    uri = tracking_uri(home)
    exp = experiment_id(uri, "word2vec", home)
    c = client(uri)
    host = socket.gethostname()
    killed = c.create_run(exp, tags={HOST_TAG: host, PID_TAG: str(_dead_pid())}).info.run_id
    alive = c.create_run(exp, tags={HOST_TAG: host, PID_TAG: "1"}).info.run_id           # pid 1 lives
    elsewhere = c.create_run(exp, tags={HOST_TAG: "another-host", PID_TAG: str(_dead_pid())}).info.run_id
    untagged = c.create_run(exp).info.run_id                                              # made before the tags
    assert mark_killed_runs(uri, exp) == [killed]
    status = {r: c.get_run(r).info.status for r in (killed, alive, elsewhere, untagged)}
    assert status == {killed: "KILLED", alive: "RUNNING", elsewhere: "RUNNING", untagged: "RUNNING"}
    assert "was gone" in c.get_run(killed).data.tags["replearn.ended"]
    assert mark_killed_runs(uri, exp) == []  # nothing left to mark
