"""MLflow tracking helpers: experiments open in MLflow 3's "Model training" view, and the run-page link."""

from __future__ import annotations

from replearn.infra.tracking import EXPERIMENT_KIND, client, experiment_id, tracking_uri, ui_run_url


def test_experiments_are_tagged_as_model_training(home):
    uri = tracking_uri(home)
    exp = experiment_id(uri, "word2vec", home)
    assert exp == experiment_id(uri, "word2vec", home)  # found, not created twice
    tags = client(uri).get_experiment(exp).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development" == EXPERIMENT_KIND["mlflow.experimentKind"]
    # an experiment made before the tag existed gets it on its next use
    c = client(uri)
    old = c.create_experiment("made-earlier")
    assert "mlflow.experimentKind" not in c.get_experiment(old).tags
    assert experiment_id(uri, "made-earlier", home) == old
    assert c.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"


def test_ui_run_url_opens_the_model_training_view():
    assert (ui_run_url("http://127.0.0.1:5000/", "3", "abc")
            == "http://127.0.0.1:5000/#/experiments/3/runs/abc?workflowType=machine_learning")
