"""deployments/servers.py builds what `make servers` starts: checked without starting a server."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _servers():
    spec = importlib.util.spec_from_file_location("replearn_servers", REPO / "deployments" / "servers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_server_commands_use_the_chosen_ports(tmp_path):
    commands = _servers().server_commands("127.0.0.1", 4311, 5050, 2, tmp_path)
    prefect, health = commands["prefect"]
    assert prefect[-4:] == ["--host", "127.0.0.1", "--port", "4311"] and health == "http://127.0.0.1:4311/api/health"
    mlflow, health = commands["mlflow"]
    assert mlflow[mlflow.index("--port") + 1] == "5050" and health == "http://127.0.0.1:5050/health"
    assert f"sqlite:///{tmp_path / 'mlflow.db'}" in mlflow


def test_prefect_ui_finds_its_api_on_a_custom_port():
    env = _servers().server_env({"PATH": "/bin", "PREFECT_API_URL": "http://elsewhere/api"}, "http://127.0.0.1:4311")
    assert "PREFECT_API_URL" not in env
    # the installed Prefect reads that name: what its UI's /ui-settings will answer as api_url
    read = subprocess.run([sys.executable, "-c", "import prefect.settings as s; print(s.PREFECT_UI_API_URL.value())"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "http://127.0.0.1:4311/api"


def test_a_ui_api_url_the_user_set_wins():
    servers = _servers()
    for name in ("PREFECT_UI_API_URL", "PREFECT_SERVER_UI_API_URL"):
        env = servers.server_env({name: "https://prefect.example.org/api"}, "http://127.0.0.1:4311")
        assert env.get("PREFECT_SERVER_UI_API_URL", env.get("PREFECT_UI_API_URL")) == "https://prefect.example.org/api"
