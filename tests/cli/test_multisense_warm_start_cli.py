"""``replearn run multisense --init-from``: the nothing-new summary is printed, and pseudo-words are refused."""

from __future__ import annotations

from typer.testing import CliRunner

from replearn.cli.main import app

runner = CliRunner()


def test_a_warm_start_with_no_new_file_says_so_and_what_stands(monkeypatch, tmp_path):
    from replearn.cli import main as cli

    summary = {"mlflow_run_id": "r", "mlflow_experiment_id": "1", "tracking_uri": "sqlite:///x", "corpus": "/data/in",
               "new_files": [], "init_from": "replearn-multisense v2",
               "model": {"name": "replearn-multisense", "version": "2", "new_version": False,
                         "reason": "no new files: every file of /data/in was already in its training data"}}
    monkeypatch.setattr(cli, "run_flow", lambda ref, params, json_out=None: summary)
    (tmp_path / "a.txt").write_text("some text\n")  # the corpus is checked before any flow runs
    result = runner.invoke(app, ["run", "multisense", "--corpus", str(tmp_path), "--home", str(tmp_path / "h"),
                                 "--init-from", "replearn-multisense@champion"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "no new files in /data/in since replearn-multisense v2" in out
    assert "replearn-multisense version 2 still stands" in out


def test_init_from_with_pseudo_words_fails_before_the_run(tmp_path):
    result = runner.invoke(app, ["run", "multisense", "--init-from", "replearn-multisense@champion",
                                 "--pseudo-pairs", "2", "--home", str(tmp_path / "h")])
    assert result.exit_code == 2 and result.output.startswith("error:"), result.output
    assert "pseudo_pairs to 0" in " ".join(result.output.split()) and not (tmp_path / "h").exists()
