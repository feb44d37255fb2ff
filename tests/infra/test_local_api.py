"""The local Prefect API kept alive between commands: started once, reused, leased, stopped, idle-stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from replearn.infra import local_api as la

pytestmark = pytest.mark.slow  # each test starts a real Prefect web server (seconds)


def _wait_dead(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # reap it if it is our child (it is not: start_new_session, but the Popen object is gone)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.2)
    return False


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "prefect-home"
    yield f
    la.stop_api(f)


def test_start_reuse_stop(folder):
    api = la.start_api(folder)
    assert json.loads((folder / "replearn-api.json").read_text())["pid"] == api.pid
    with urllib.request.urlopen(api.url + "/health", timeout=5) as r:
        assert r.status == 200
    with urllib.request.urlopen(api.ui, timeout=10) as r:  # the UI is served too
        assert r.status == 200
    again = la.start_api(folder)
    assert again == api, "a second command must reuse the running server, not start another"
    assert la.running_api(folder) == api
    stopped = la.stop_api(folder)
    assert stopped == api
    assert _wait_dead(api.pid)
    assert la.running_api(folder) is None
    assert not (folder / "replearn-api.json").exists()
    assert la.stop_api(folder) is None  # nothing left to stop


def test_stale_state_starts_a_new_server(folder):
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / "replearn-api.json").write_text(json.dumps({"url": "http://127.0.0.1:9/api", "pid": dead.pid,
                                                          "port": 9}))
    assert la.running_api(folder) is None
    api = la.start_api(folder)
    assert api.pid != dead.pid and la.running_api(folder) == api


def test_idle_server_stops_by_itself_and_leases_keep_it(folder):
    lease = folder / "replearn-api.clients" / str(os.getpid())
    lease.parent.mkdir(parents=True)
    lease.touch()  # this test process holds a lease: the server must stay
    api = la.start_api(folder, idle_s=1.0)
    time.sleep(5)
    assert la.running_api(folder) == api
    lease.unlink()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (lease.parent / str(dead.pid)).touch()  # the lease of a killed command does not count
    assert _wait_dead(api.pid, timeout=60)
    assert not (folder / "replearn-api.json").exists()


def test_configured_api_or_temporary_mode_is_left_alone(folder, monkeypatch):
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    with temporary_settings({PREFECT_HOME: str(folder), PREFECT_API_URL: "http://127.0.0.1:1/api"}):
        with la.local_api() as api:
            assert api is None
        assert la.prestart() is None
    monkeypatch.setenv("REPLEARN_PREFECT_API", "temporary")
    with temporary_settings({PREFECT_HOME: str(folder)}):
        with la.local_api() as api:
            assert api is None
    assert not folder.exists()


def test_flow_runs_report_to_the_local_api(folder):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from replearn.infra.runners import process_local_prefect

    @flow(name="local-api-probe")
    def probe() -> int:
        return 7

    with temporary_settings({PREFECT_HOME: str(folder), PREFECT_API_URL: None}):
        with process_local_prefect():
            url = PREFECT_API_URL.value()
            assert probe() == 7
            with get_client(sync_client=True) as c:
                names = [r.name for r in c.read_flow_runs()]
        api = la.running_api(folder)
    assert api is not None and url == api.url, "the flow must run against the kept-alive server"
    assert names, "the flow run must be recorded there"
    assert not any((folder / "replearn-api.clients").iterdir()), "the command's lease is released at the end"
