"""Deployments end to end against real servers.

`deployments/servers.py` (what `make servers` runs) starts a real Prefect server and a real
MLflow server on free localhost ports, with every store in a temporary directory (Prefect's
database and home, MLflow's SQLite store and artifact root), so ~/.prefect and ./.replearn
are never touched. `deployments/deploy.sh` (what `make deploy` runs) creates the process work
pool and registers every deployment of `deployments/prefect.yaml`; a worker is started as
`make deploy` starts it (deployments/worker.py). A flow run is then created the way the UI's
"Run" button does (POST /deployments/{id}/create_flow_run), with a tiny word2vec run as
parameters, and the worker executes it. Checked: the run completed, its stages are task runs,
metrics and artifacts are in MLflow, the model is the run's LoggedModel, a model version is
registered from it and became champion, and one Ctrl-C stops the worker within seconds.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POOL = "replearn-process"
DEPLOYMENTS = {"word2vec": "flows/word2vec.py:word2vec_flow", "metric": "flows/metric.py:metric_flow",
               "clip": "flows/clip.py:clip_flow", "multisense": "flows/multisense.py:multisense_flow",
               "pipeline": "flows/pipeline.py:pipeline_flow"}
PARAMS_CLASS = {"word2vec": "Word2VecParams", "metric": "MetricParams", "clip": "ClipParams",
                "multisense": "MultisenseParams", "pipeline": "PipelineParams"}
WORD2VEC_STAGES = ("tokenize", "vocabulary", "encode-corpus", "train-word2vec", "evaluate-word-vectors",
                   "export-word-vectors", "build-index", "register-model")
SERVER_START_S = 240    # both servers, on a loaded 2-core machine
FLOW_RUN_S = 420        # worker pick-up + the tiny word2vec run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in parents.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _kill_tree(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 20.0) -> None:
    """Signal ``proc``'s process group, wait, then SIGKILL it and every descendant's group."""
    pids = [proc.pid, *_children(proc.pid)]
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    for pid in [*pids, *_children(proc.pid)]:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@functools.cache
def _servers():
    """deployments/servers.py (a script, not a package: loaded from its file once)."""
    spec = importlib.util.spec_from_file_location("replearn_servers", REPO / "deployments" / "servers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _answers(url: str) -> bool:
    return _servers().answers(url)  # the same check `make servers` waits on


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"({path} missing)"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Prefect + MLflow servers (via deployments/servers.py) and a process worker, all in a temp dir."""
    tmp = tmp_path_factory.mktemp("ops")
    home = tmp / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "REPLEARN_"))}
    env.update({
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",          # the test needs the API only; skips copying the UI bundle
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "REPLEARN_HOME": str(home),
        "BIN": str(BIN),
        "PYTHONUNBUFFERED": "1",
    })
    pp, mp = _free_port(), _free_port()
    api, mlflow_uri = f"http://127.0.0.1:{pp}/api", f"http://127.0.0.1:{mp}"
    out = tmp / "servers.out"
    procs: list[subprocess.Popen] = []
    try:
        t0 = time.monotonic()
        with open(out, "wb") as f:
            servers = subprocess.Popen([sys.executable, str(REPO / "deployments" / "servers.py"),
                                        "--prefect-port", str(pp), "--mlflow-port", str(mp), "--home", str(home),
                                        "--timeout", str(SERVER_START_S)],
                                       cwd=tmp, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(servers)
        while "MLFLOW_TRACKING_URI" not in out.read_text():
            assert servers.poll() is None, \
                f"servers.py exited:\n{_tail(out)}\n{_tail(home / 'logs' / 'prefect-server.log')}"
            assert time.monotonic() - t0 < SERVER_START_S + 30, f"servers not up:\n{_tail(out)}"
            time.sleep(0.5)
        printed = out.read_text()
        assert f"export PREFECT_API_URL={api}" in printed and f"export MLFLOW_TRACKING_URI={mlflow_uri}" in printed
        server_pids = _children(servers.pid)
        env.update({"PREFECT_API_URL": api, "MLFLOW_TRACKING_URI": mlflow_uri})
        timings = {"servers_s": time.monotonic() - t0}

        # register every deployment of deployments/prefect.yaml (creates the work pool first)
        t0 = time.monotonic()
        deploy = subprocess.run([str(REPO / "deployments" / "deploy.sh"), "--no-worker"], cwd=tmp, env=env,
                                capture_output=True, text=True, timeout=600)
        assert deploy.returncode == 0, deploy.stdout[-4000:] + deploy.stderr[-4000:]
        timings["deploy_s"] = time.monotonic() - t0

        # the worker, started as `make deploy` starts it, from an unrelated directory: the deployment's
        # pull step must bring the flow run to the repository
        worker_log = tmp / "worker.log"
        with open(worker_log, "wb") as f:
            worker = subprocess.Popen([sys.executable, str(REPO / "deployments" / "worker.py"), "--pool", POOL],
                                      cwd=tmp, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(worker)
        yield {"api": api, "mlflow": mlflow_uri, "home": home, "tmp": tmp, "env": env, "worker": worker,
               "worker_log": worker_log, "timings": timings}

        # one Ctrl-C on `make deploy` stops the worker and everything it started, promptly
        worker_pids = _children(worker.pid)
        t0 = time.monotonic()
        os.killpg(worker.pid, signal.SIGINT)
        assert worker.wait(timeout=30) == 130, _tail(worker_log)
        assert time.monotonic() - t0 < 15, f"the worker took {time.monotonic() - t0:.0f} s to stop"
        assert not [pid for pid in worker_pids if _running(pid)], "worker processes left after Ctrl-C"
        # Ctrl-C on `make servers` stops both servers
        servers.send_signal(signal.SIGINT)
        servers.wait(timeout=60)
        deadline = time.monotonic() + 20
        while (alive := [pid for pid in server_pids if _running(pid)]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive, f"server processes {alive} still running after Ctrl-C"
        assert not _answers(f"{api}/health") and not _answers(f"{mlflow_uri}/health")
    finally:
        for p in reversed(procs):
            _kill_tree(p)


def test_deployments_render_typed_forms_with_paused_weekly_schedules(stack):
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(stack["api"]) as c:
        assert c.read_work_pool(POOL).type == "process"
        deployments = {d.name: d for d in c.read_deployments()}
        assert set(deployments) == set(DEPLOYMENTS)
        for name, d in deployments.items():
            assert d.entrypoint == DEPLOYMENTS[name] and d.work_pool_name == POOL
            # the UI's form: one `params` object whose fields come from the flow's pydantic model
            schema = d.parameter_openapi_schema
            assert schema["properties"]["params"]["$ref"] == f"#/definitions/{PARAMS_CLASS[name]}"
            fields = schema["definitions"][PARAMS_CLASS[name]]["properties"]
            assert len(fields) >= 3 and all("type" in f or "anyOf" in f or "$ref" in f or "allOf" in f
                                            for f in fields.values()), fields
            # a weekly cron, paused until the user turns it on
            assert len(d.schedules) == 1
            cron = d.schedules[0].schedule.cron.split()
            assert cron[2:4] == ["*", "*"] and cron[4] != "*" and d.schedules[0].active is False
            # workers run the code of this checkout, wherever they were started
            assert d.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
        w2v = deployments["word2vec"].parameter_openapi_schema["definitions"]["Word2VecParams"]["properties"]
        assert {"corpus", "epochs", "dim", "home", "model_name"} <= set(w2v)
        assert w2v["epochs"]["type"] == "integer" and w2v["epochs"]["default"] == 5

        # turning the schedule on and off again, as docs/operations.md says
        sched = deployments["word2vec"].schedules[0].id
        for verb, active in (("resume", True), ("pause", False)):
            cmd = [str(BIN / "prefect"), "deployment", "schedule", verb, "word2vec/word2vec", str(sched)]
            cli = subprocess.run(cmd, cwd=stack["tmp"], env=stack["env"], capture_output=True, text=True, timeout=300)
            assert cli.returncode == 0, cli.stdout + cli.stderr
            assert c.read_deployment_by_name("word2vec/word2vec").schedules[0].active is active


def test_run_button_flow_run_executes_on_worker_and_registers_model(stack, lee_corpus):
    from mlflow import MlflowClient
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    home = stack["home"]
    params = {"params": {"corpus": str(lee_corpus), "home": str(home), "epochs": 1, "dim": 16, "min_count": 3,
                         "threads": 1}}
    t0 = time.monotonic()
    with SyncPrefectClient(stack["api"]) as c:
        dep = c.read_deployment_by_name("word2vec/word2vec")
        # what the UI's "Run" button sends: POST /deployments/{id}/create_flow_run with the form's values
        fr = c.create_flow_run_from_deployment(dep.id, parameters=params)
        while True:
            fr = c.read_flow_run(fr.id)
            if fr.state is not None and fr.state.is_final():
                break
            assert stack["worker"].poll() is None, f"worker exited:\n{_tail(stack['worker_log'])}"
            assert time.monotonic() - t0 < FLOW_RUN_S, \
                f"flow run still {fr.state.name if fr.state else None}:\n{_tail(stack['worker_log'])}"
            time.sleep(2)
        elapsed = time.monotonic() - t0
        assert fr.state.is_completed(), f"{fr.state}\n{_tail(stack['worker_log'], 120)}"
        assert fr.work_pool_name == POOL and fr.deployment_id == dep.id
        assert fr.parameters["params"]["epochs"] == 1
        task_runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
    # its stages appear as task runs, all completed
    names = {t.name.rsplit("-", 1)[0]: t for t in task_runs}
    for stage in WORD2VEC_STAGES:
        assert stage in names, (stage, sorted(names))
        assert names[stage].state.is_completed(), (stage, names[stage].state)

    # metrics, artifacts and the registered model are in the MLflow server
    ml = MlflowClient(tracking_uri=stack["mlflow"], registry_uri=stack["mlflow"])
    exp = ml.get_experiment_by_name("word2vec")
    assert exp is not None
    runs = ml.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    for key in ("analogy_score", "wordsim353_spearman", "tokenize.tokens", "vocabulary.vocab_size",
                "train.words_per_second", "index.recall_at_10"):
        assert key in run.data.metrics, (key, sorted(run.data.metrics))
    assert len(ml.get_metric_history(run.info.run_id, "train.loss")) >= 1
    # the model is the run's MLflow 3 LoggedModel ("Logged models" on the run page), registered from it
    model_ids = [o.model_id for o in run.outputs.model_outputs]
    assert len(model_ids) == 1 and ml.get_logged_model(model_ids[0]).source_run_id == run.info.run_id
    assert "plots/loss.png" in {a.path for a in ml.list_artifacts(run.info.run_id, "plots")}
    # the artifacts live under the server's artifact root inside the data home
    assert run.info.artifact_uri.startswith((home / "mlartifacts").as_uri())
    assert any((home / "mlartifacts").rglob("MLmodel"))
    versions = ml.search_model_versions("name='replearn-word2vec'")
    assert [v.version for v in versions] == ["1"] and versions[0].run_id == run.info.run_id
    assert versions[0].source == ml.get_logged_model(model_ids[0]).artifact_location
    assert '"version": "1"' in ml.get_logged_model(model_ids[0]).tags["mlflow.modelVersions"]
    assert ml.get_model_version_by_alias("replearn-word2vec", "champion").version == "1"
    # the outputs went to the data home given in the form, in its stage store, made by this MLflow run
    assert list(home.glob(f"stages/build-index/*/{run.info.run_id}/index.faiss"))  # in the stage store
    print(f"timings: {stack['timings']} flow_run_s={elapsed:.0f}")


def _run_deployment(stack, params: dict):
    """Create a flow run of the word2vec deployment as the UI's Run button (or its schedule) does; wait until the
    worker has finished it. Returns the flow run and its task runs."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    t0 = time.monotonic()
    with SyncPrefectClient(stack["api"]) as c:
        fr = c.create_flow_run_from_deployment(c.read_deployment_by_name("word2vec/word2vec").id,
                                               parameters={"params": params})
        while not ((fr := c.read_flow_run(fr.id)).state is not None and fr.state.is_final()):
            assert stack["worker"].poll() is None, f"worker exited:\n{_tail(stack['worker_log'])}"
            assert time.monotonic() - t0 < FLOW_RUN_S, \
                f"flow run still {fr.state.name if fr.state else None}:\n{_tail(stack['worker_log'])}"
            time.sleep(2)
        assert fr.state.is_completed(), f"{fr.state}\n{_tail(stack['worker_log'], 120)}"
        task_runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
        artifacts = {a.key for a in c.read_artifacts() if a.flow_run_id == fr.id}
    return fr, {t.name.rsplit("-", 1)[0]: t.state.name for t in task_runs}, artifacts


def test_scheduled_runs_on_a_growing_folder_warm_start_and_then_register_nothing(stack, books_corpus, tmp_path):
    """Issue 17 through the real worker: half of the books corpus in a folder, then the other half lands; each
    run continues from the champion (as a weekly schedule's parameters would say); a third run finds nothing new."""
    import gzip

    from mlflow import MlflowClient

    lines = gzip.open(books_corpus, "rb").readlines()  # bytes: the corpus holds some invalid UTF-8, kept as is
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "half-a.txt").write_bytes(b"".join(lines[: len(lines) // 2]))
    home = tmp_path / "home"  # its own data home; the registry is the stack's MLflow server
    name = "replearn-word2vec-growing"
    params = {"corpus": str(folder), "home": str(home), "epochs": 1, "dim": 16, "min_count": 5, "threads": 1,
              "model_name": name, "init_from": f"{name}@champion"}
    ml = MlflowClient(tracking_uri=stack["mlflow"], registry_uri=stack["mlflow"])

    first, stages, _ = _run_deployment(stack, params)  # nothing registered yet: from scratch on half A
    assert stages["train-word2vec"] == "Completed"
    assert [v.version for v in ml.search_model_versions(f"name='{name}'")] == ["1"]

    (folder / "half-b.txt").write_bytes(b"".join(lines[len(lines) // 2:]))
    second, stages, artifacts = _run_deployment(stack, params)
    assert {"init-model", "new-files", "train-word2vec", "what-changed"} <= set(stages)
    assert stages["tokenize"] == "Completed" and stages["what-changed"] == "Completed"
    assert "what-changed" in artifacts
    versions = {v.version: v for v in ml.search_model_versions(f"name='{name}'")}
    assert set(versions) == {"1", "2"}
    run = ml.get_run(versions["2"].run_id)
    assert run.data.params["train.dim"] == "16" and run.data.metrics["changed.new_words"] > 0
    assert "report/what_changed.png" in {a.path for a in ml.list_artifacts(run.info.run_id, "report")}
    half_a = ml.get_run(versions["1"].run_id).data.metrics["tokenize.tokens"]
    assert run.data.metrics["tokenize.tokens"] < 1.5 * half_a  # it read half B only, not A + B

    third, stages, artifacts = _run_deployment(stack, params)
    assert "train-word2vec" not in stages or stages["train-word2vec"] == "Cached"
    assert "register-model" not in stages or stages["register-model"] == "Completed"
    assert len(ml.search_model_versions(f"name='{name}'")) == 2  # no version registered
    assert {"model-unchanged"} & artifacts
    tagged = ml.search_runs([run.info.experiment_id], "tags.`replearn.registry` = 'unchanged'")
    assert len(tagged) == 1 and tagged[0].data.tags["replearn.model_version"] in ("1", "2")
    seconds = (third.end_time - third.start_time).total_seconds()
    print(f"growing folder: flow runs {[(r.end_time - r.start_time).total_seconds() for r in (first, second)]} s, "
          f"nothing new {seconds:.1f} s")
