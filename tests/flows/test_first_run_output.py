"""What a new user sees: a real `replearn run word2vec` then `replearn search`, as subprocesses with no server
configured. Their output carries no third-party warnings and no raw ANSI codes; the second command reuses the
local Prefect API the first one started; `replearn prefect stop` stops it."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
from _cli_runs import cli_env, replearn_exe

pytestmark = pytest.mark.slow

WARNING = re.compile(r"\b[A-Z]\w*Warning\b|\bwarnings\.warn\b|UserWarning|FutureWarning|DeprecationWarning")
ANSI = re.compile(r"\x1b\[")


def _run(args: list[str], env: dict[str, str]) -> str:
    p = subprocess.run([replearn_exe(), *args], env=env, capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    return out


def _clean(out: str) -> None:
    assert not WARNING.findall(out), [line for line in out.splitlines() if WARNING.search(line)][:5]
    assert not ANSI.search(out), "raw ANSI escape codes in output that is not a terminal"


def test_run_then_search_is_quiet_and_reuses_the_local_api(tmp_path, lee_corpus):
    env = cli_env(tmp_path / "prefect")
    home = tmp_path / "home"
    first = _run(["run", "word2vec", "--corpus", str(lee_corpus), "--home", str(home), "--epochs", "1",
                  "--dim", "16"], env)
    _clean(first)
    assert "MLflow UI" in first and "workflowType=machine_learning" in first
    state = (tmp_path / "prefect" / "replearn-api.json").read_text()
    url = re.search(r'"url": "([^"]+)"', state).group(1)
    assert url.removesuffix("/api") in first, "the flow run's 'View at' link points at the local API's UI"

    second = _run(["run", "word2vec", "--corpus", str(lee_corpus), "--home", str(home), "--epochs", "1",
                   "--dim", "16"], env)
    _clean(second)
    assert (tmp_path / "prefect" / "replearn-api.json").read_text() == state, "the second command reused it"
    assert "Starting temporary server" not in first + second

    _clean(_run(["search", "word2vec", "--home", str(home), "--word", "government"], env))

    # its UI finds its own API (not port 4200), and a flow run there shows its task runs
    import json
    import urllib.request

    with urllib.request.urlopen(url.removesuffix("/api") + "/ui-settings", timeout=10) as r:
        assert json.loads(r.read())["api_url"] == url
    req = urllib.request.Request(url + "/task_runs/count", data=b"{}", headers={"Content-Type": "application/json"})
    deadline = time.monotonic() + 20
    while (count := json.loads(urllib.request.urlopen(req, timeout=10).read())) < 12 and time.monotonic() < deadline:
        time.sleep(0.5)  # the task-run recorder works from events, a moment after the flow run
    assert count >= 12, count

    pid = int(re.search(r'"pid": (\d+)', state).group(1))
    assert "stopped the local Prefect API" in _run(["prefect", "stop"], env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"local API pid {pid} still alive after `replearn prefect stop`")
    assert "no local Prefect API running" in _run(["prefect", "status"], env)
