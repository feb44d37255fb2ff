"""Registry promotion: champion moves only when the primary metric improves."""

from __future__ import annotations

from replearn.tasks.register import artifacts_key, promote
from replearn.infra.tracking import client, experiment_id, log_metrics, tracking_uri


def _version(uri, home, name, value):
    c = client(uri)
    run = c.create_run(experiment_id(uri, "promo", home))
    if value == value:
        log_metrics(uri, run.info.run_id, {"analogy_total": value})
    else:  # as register_task logs the champion metric, NaN included
        c.log_metric(run.info.run_id, "analogy_total", value)
    try:
        c.create_registered_model(name)
    except Exception:
        pass
    return c.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id).version


def test_first_version_becomes_champion_then_only_better_ones(home):
    uri = tracking_uri(home)
    c = client(uri)
    v1 = _version(uri, home, "m", 0.20)
    assert promote(uri, "m", v1, "analogy_total", 0.20)["champion"]
    v2 = _version(uri, home, "m", 0.15)
    out = promote(uri, "m", v2, "analogy_total", 0.15)
    assert not out["champion"] and str(out["previous_champion"]) == str(v1) and out["previous_value"] == 0.20
    assert str(c.get_model_version_by_alias("m", "champion").version) == str(v1)
    tags = c.get_model_version("m", v2).tags
    assert tags["role"] == "challenger" and "0.1500 <= champion" in tags["comparison"]
    v3 = _version(uri, home, "m", 0.25)
    assert promote(uri, "m", v3, "analogy_total", 0.25)["champion"]
    assert str(c.get_model_version_by_alias("m", "champion").version) == str(v3)


def test_a_champion_scored_nan_is_replaced_by_the_first_finite_score_and_nan_never_wins(home):
    """A first run on a corpus too small to score (nan) must not hold the champion alias for ever."""
    uri = tracking_uri(home)
    c = client(uri)
    v1 = _version(uri, home, "n", float("nan"))
    assert promote(uri, "n", v1, "analogy_total", float("nan"))["champion"]  # nothing else to serve
    v2 = _version(uri, home, "n", float("nan"))
    out = promote(uri, "n", v2, "analogy_total", float("nan"))
    assert not out["champion"] and "no score" in out["reason"]
    v3 = _version(uri, home, "n", 0.10)
    out = promote(uri, "n", v3, "analogy_total", 0.10)
    assert out["champion"] and "nan" in out["reason"]
    assert str(c.get_model_version_by_alias("n", "champion").version) == str(v3)
    v4 = _version(uri, home, "n", float("nan"))
    assert not promote(uri, "n", v4, "analogy_total", float("nan"))["champion"]


def test_tracking_uri_is_sqlite_under_home_unless_overridden(home, monkeypatch):
    assert tracking_uri(home) == f"sqlite:///{(home / 'mlflow.db').resolve()}"
    eid = experiment_id(tracking_uri(home), "exp", home)
    loc = client(tracking_uri(home)).get_experiment(eid).artifact_location
    assert loc.startswith((home / "mlartifacts").resolve().as_uri())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking_uri(home) == "http://127.0.0.1:5999"


def test_champion_is_not_replaced_across_datasets_or_without_its_metric(home):
    uri = tracking_uri(home)
    c = client(uri)
    v1 = _version(uri, home, "d", 0.20)
    c.set_model_version_tag("d", v1, "eval_data", "mnist")
    assert promote(uri, "d", v1, "analogy_total", 0.20, eval_data="mnist")["champion"]
    v2 = _version(uri, home, "d", 0.90)                     # far better, but on other data
    out = promote(uri, "d", v2, "analogy_total", 0.90, eval_data="digits")
    assert not out["champion"] and "not comparable" in c.get_model_version("d", v2).tags["comparison"]
    v3 = _version(uri, home, "d", 0.50)
    out = promote(uri, "d", v3, "other_metric", 0.50, eval_data="mnist")   # the champion never logged it
    assert not out["champion"] and "has no other_metric" in out["reason"]
    v4 = _version(uri, home, "d", 0.30)
    assert promote(uri, "d", v4, "analogy_total", 0.30, eval_data="mnist")["champion"]
    assert c.get_model_version("d", v1).tags["role"] == "former champion"
    assert str(c.get_model_version_by_alias("d", "champion").version) == str(v4)


def test_log_pyfunc_logs_a_logged_model_with_signature_and_example_and_no_warnings(home, tmp_path):
    import warnings

    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    from replearn.tasks.register import log_pyfunc

    uri = tracking_uri(home)
    c = client(uri)
    run_id = c.create_run(experiment_id(uri, "logged", home)).info.run_id
    artifacts = {}
    for key in ("embeddings", "index"):
        (tmp_path / key).write_text(key)  # copied, not read: the model is built from code, not loaded here
        artifacts[key] = str(tmp_path / key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source, model_id = log_pyfunc(uri, run_id, "word2vec", artifacts)
    # neither CloudPickle's nor the missing input example's warning (nor any other from MLflow)
    mlflow_warnings = [str(w.message) for w in caught if "mlflow" in w.filename and not issubclass(
        w.category, DeprecationWarning)]
    assert mlflow_warnings == []
    logged = c.get_logged_model(model_id)
    assert logged.source_run_id == run_id and str(logged.status) in ("READY", "LoggedModelStatus.READY")
    assert source == logged.artifact_location
    assert [o.model_id for o in c.get_run(run_id).outputs.model_outputs] == [model_id]  # "Logged models" on the run
    meta = Model.load(download_artifacts(artifact_uri=f"{source}/MLmodel", tracking_uri=uri))
    assert meta.signature is not None and meta.saved_input_example_info is not None
    pyfunc = meta.flavors["python_function"]
    assert meta.model_id == model_id and "model_code_path" in pyfunc and "python_model" not in pyfunc  # code, no pickle


def test_small_scores_keep_three_significant_digits_in_the_comparison():
    from replearn.tasks.register import _score

    assert [_score(v) for v in (0.15, 0.0042, 0.000102, 0.000051, 0.0)] == [
        "0.1500", "0.00420", "0.000102", "0.0000510", "0.0000"]


def test_artifacts_key_names_the_files_a_model_is_made_of(tmp_path):
    a = {"embeddings": str(tmp_path / "stages/export/k1/r1/embeddings"), "index": str(tmp_path / "x/../index.faiss")}
    same = {"index": str(tmp_path / "index.faiss"), "embeddings": str(tmp_path / "stages/export/k1/r1/embeddings")}
    assert artifacts_key(a) == artifacts_key(same)                       # order and spelling of the path aside
    assert artifacts_key(a) != artifacts_key({**a, "embeddings": str(tmp_path / "stages/export/k1/r2/embeddings")})
    assert artifacts_key(a) != artifacts_key({"model": a["embeddings"], "index": a["index"]})
