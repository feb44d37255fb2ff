"""The replearn CLI: --help on every command, multi-value options."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from replearn.flows.cli import app, expand_multi_value_options

runner = CliRunner()


@pytest.mark.parametrize("args", [[], ["run"], ["search"], ["run", "word2vec"], ["search", "word2vec"]])
def test_help_on_every_command(args):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_multi_value_options_expand():
    argv = ["search", "word2vec", "--positive", "king", "woman", "--negative", "man", "--topn", "3"]
    assert expand_multi_value_options(argv) == ["search", "word2vec", "--positive", "king", "--positive", "woman",
                                                "--negative", "man", "--topn", "3"]


def test_search_without_words_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["search", "word2vec", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "--word" in result.output


def test_search_before_any_training_says_how_to_train(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = runner.invoke(app, ["search", "word2vec", "--word", "king", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "replearn run word2vec" in result.output
