"""The spare process's state and fingerprint (infra/warm_state.py): what makes a spare fit a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from replearn.infra import warm_state
from replearn.cli.spare import WARM_MODULES


def test_fingerprint_follows_the_environment_not_the_shells_bookkeeping(tmp_path):
    env = {"PATH": "/usr/bin", "PREFECT_HOME": str(tmp_path)}
    base = warm_state.fingerprint(env, str(tmp_path))
    assert warm_state.fingerprint(dict(env), str(tmp_path)) == base
    for volatile in ({"_": "/usr/bin/replearn"}, {"OLDPWD": "/"}, {"COLUMNS": "120"}, {"_RJEM_MALLOC_CONF": "x"}):
        assert warm_state.fingerprint({**env, **volatile}, str(tmp_path)) == base, volatile
    for setting in ({"PREFECT_API_URL": "http://127.0.0.1:4200/api"}, {"OMP_NUM_THREADS": "1"},
                    {"PYTHONPATH": "/elsewhere"}, {"MLFLOW_TRACKING_URI": "http://x"}):
        assert warm_state.fingerprint({**env, **setting}, str(tmp_path)) != base, setting


def test_fingerprint_equal_for_a_variable_the_cli_sets_itself(tmp_path):
    """The CLI completes the environment (infra/quiet.py) before a spare is started from it: same command."""
    from replearn.infra.quiet import quiet_env

    env = {"PATH": "/usr/bin"}
    assert warm_state.fingerprint(env, str(tmp_path)) == warm_state.fingerprint({**env, **quiet_env()},
                                                                               str(tmp_path))


def test_fingerprint_follows_prefect_settings_files_in_the_working_folder(tmp_path):
    env = {"PATH": "/usr/bin"}
    base = warm_state.fingerprint(env, str(tmp_path))
    (tmp_path / "prefect.toml").write_text("[logging]\nlevel = 'DEBUG'\n")
    assert warm_state.fingerprint(env, str(tmp_path)) != base


def test_code_stamp_changes_with_any_source_file(tmp_path):
    (tmp_path / "lib").mkdir()
    f = tmp_path / "lib" / "a.py"
    f.write_text("x = 1\n")
    (tmp_path / "lib" / "__pycache__").mkdir()
    before = warm_state._code_stamp(tmp_path)
    (tmp_path / "lib" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")  # byte code: no change
    assert warm_state._code_stamp(tmp_path) == before
    f.write_text("x = 22\n")
    assert warm_state._code_stamp(tmp_path) != before


def test_imports_set_no_variable_the_fingerprint_would_see():
    """What the spare's imports add to its environment (polars, MLflow, torch) must not make a command's
    fingerprint differ from the spare's: each such name is ignored."""
    code = ("import os, json, importlib, sys; before = dict(os.environ)\n"
            "for m in sys.argv[1:]: importlib.import_module(m)\n"
            "print(json.dumps(sorted(k for k, v in os.environ.items() if before.get(k) != v)))")
    out = subprocess.run([sys.executable, "-c", code, *WARM_MODULES, "polars", "torch"], capture_output=True,
                         text=True, check=True, env={**os.environ, "REPLEARN_WARM": "0"}).stdout
    added = json.loads(out.strip().splitlines()[-1])
    assert [name for name in added if not warm_state.ignored_env(name)] == []


def test_enabled_and_paths(tmp_path):
    assert warm_state.enabled({}) and warm_state.enabled({"REPLEARN_WARM": "1"})
    assert not warm_state.enabled({"REPLEARN_WARM": "0"}) and not warm_state.enabled({"REPLEARN_WARM": "off"})
    env = {"PREFECT_HOME": str(tmp_path)}
    assert warm_state.state_file(env) == tmp_path / "replearn-spare.json"
    assert warm_state.socket_path(env, 42).parent == tmp_path
    deep = tmp_path / ("d" * 120)
    long_path = warm_state.socket_path({"PREFECT_HOME": str(deep)}, 42)
    assert len(os.fsencode(long_path)) < 108 and oct(long_path.parent.stat().st_mode & 0o777) == "0o700"
    assert warm_state.read_state(env) is None
    warm_state.state_file(env).write_text("{not json")
    assert warm_state.read_state(env) is None
