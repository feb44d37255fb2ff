"""The replearn CLI: --help on every command, multi-value options, generated run options."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from replearn.cli.main import app, expand_multi_value_options

runner = CliRunner()


@pytest.mark.parametrize("args", [[], ["run"], ["search"], ["run", "word2vec"], ["search", "word2vec"], ["run", "metric"],
                                  ["search", "metric"]])
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


def test_invalid_parameters_give_one_line_per_option():
    result = runner.invoke(app, ["run", "word2vec", "--dim", "0", "--epochs", "0"])
    assert result.exit_code == 2
    assert "--dim: Input should be greater than or equal to 1" in result.output
    assert "--epochs" in result.output and "Traceback" not in result.output


def test_an_unsafe_model_name_is_explained_in_words_not_as_a_regex():
    result = runner.invoke(app, ["run", "word2vec", "--model-name", "../evil"])
    assert result.exit_code == 2
    assert "'../evil' is not a safe name" in result.output and "no '/'" in result.output
    assert "pattern" not in result.output and "Traceback" not in result.output


def test_missing_or_empty_corpus_fails_before_prefect_starts(tmp_path):
    result = runner.invoke(app, ["run", "word2vec", "--corpus", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2 and "nope.txt" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["run", "word2vec", "--corpus", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no readable files" in result.output


def test_input_errors_are_not_repeated_in_prefect_logs_and_bugs_keep_their_tracebacks():
    import logging
    import sys

    from replearn.cli.main import _QuietInputErrors
    from replearn.lib.errors import CorpusError

    def record(msg, exc=None, level=logging.ERROR):
        info = None
        if exc is not None:
            try:
                raise exc
            except Exception:
                info = sys.exc_info()
        return logging.LogRecord("prefect.task_runs", level, __file__, 1, msg, None, info)

    quiet = _QuietInputErrors()
    text = "empty corpus: /tmp/x.txt yielded no tokens (pattern '[^\\W]+')"
    assert not quiet.filter(record("Task run failed with exception", CorpusError(text)))
    # the failed states that repeat it (repr-escaped) go; other errors and INFO lines stay
    assert not quiet.filter(record(f"Finished in state Failed('Task run encountered an exception CorpusError: "
                                   f"{text!r}')"))
    assert quiet.filter(record("Finished in state Completed()", level=logging.INFO))
    assert quiet.filter(record("something else failed"))
    bug = record("Task run failed with exception", RuntimeError("bug"))
    assert quiet.filter(bug) and bug.exc_info is not None  # real bugs keep their traceback


def test_metric_tables_fit_80_columns_without_truncation():
    from rich.console import Console

    from replearn.cli import main as cli
    from replearn.cli.metric import _metric_tables

    rows = [{"features": "encoder", "map_at_r": 0.4662, "precision_at_1": 0.9196, "r_precision": 0.5708,
             "logreg_accuracy": 0.95, "linear_svm_accuracy": 0.94, "knn_accuracy": 0.97},
            {"features": "raw_pixels", "map_at_r": 0.3579, "precision_at_1": 0.9698, "r_precision": 0.478,
             "logreg_accuracy": 0.9, "linear_svm_accuracy": 0.89, "knn_accuracy": 0.95},
            {"features": "finetuned_classifier", "accuracy": 0.98}]
    narrow = Console(width=80, record=True, force_terminal=False)
    old, cli.console = cli.console, narrow
    try:
        _metric_tables(rows)
    finally:
        cli.console = old
    text = narrow.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for word in ("MAP@R", "R-Prec", "linear SVM", "fine-tuned", "finetuned_classifier", "0.466", "0.980"):
        assert word in text


def test_run_metric_with_index_mining_prints_where_the_mined_table_is(monkeypatch, tmp_path):
    from replearn.cli import main as cli

    summary = {"mlflow_run_id": "r", "mlflow_experiment_id": "1", "tracking_uri": "sqlite:///x", "embeddings": "e",
               "index": "i", "table": [{"features": "encoder", "map_at_r": 0.5}],
               "model": {"name": "replearn-metric", "version": "1", "champion": True},
               "mining": {"triplets": 901.0, "margin_violations": 0.25, "guard_removed": 10577.0},
               "stage_outputs": {"mined": "/h/stages/mine-negatives/k/r/mined.parquet"}}
    seen = {}
    monkeypatch.setattr(cli, "run_flow", lambda ref, params, json_out=None: seen.update(params=params) or summary)
    result = runner.invoke(app, ["run", "metric", "--loss", "triplet_max", "--mining", "index",
                                 "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert seen["params"].mining == "index"
    assert ("mined : /h/stages/mine-negatives/k/r/mined.parquet (901 triplets, 25.0 % violate the margin, the "
            "guard removed 10,577 same-class candidates") in " ".join(result.output.split())


def test_run_clip_with_index_mining_prints_where_the_mined_table_is(monkeypatch, tmp_path):
    from replearn.cli import main as cli

    summary = {"mlflow_run_id": "r", "mlflow_experiment_id": "1", "tracking_uri": "sqlite:///x", "embeddings": "e",
               "index": "i", "zero_shot_accuracy": 0.9,
               "table": [{"direction": "image -> text", "R@1": 0.2, "R@5": 0.9, "R@10": 0.99}],
               "model": {"name": "replearn-clip", "version": "1", "champion": True},
               "mining": {"triplets": 1438.0, "margin_violations": 0.5, "guard_removed": 30.0},
               "stage_outputs": {"mined": "/h/stages/mine-caption-negatives/k/r/mined.parquet"}}
    monkeypatch.setattr(cli, "run_flow", lambda ref, params, json_out=None: summary)
    result = runner.invoke(app, ["run", "clip", "--mining", "index", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert ("mined : /h/stages/mine-caption-negatives/k/r/mined.parquet (1,438 triplets, 50.0 % violate the margin, "
            "the guard removed 30 same-class candidates") in " ".join(result.output.split())


def test_search_with_an_empty_image_file_says_so(tmp_path):
    from typer.testing import CliRunner

    from replearn.cli.main import app

    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for family in ("metric", "clip"):
        r = CliRunner().invoke(app, ["search", family, "--image", str(empty), "--home", str(tmp_path / "h")])
        assert r.exit_code == 2 and "is empty (0 bytes)" in r.output


@pytest.mark.parametrize("argv, expected", [
    (["run", "word2vec", "--probes", "king", "queen", "--export", "input", "mean", "--max-vocab", "100",
      "--ns-exponent", "0.5"],
     {"probes": ["king", "queen"], "export_matrices": ["input", "mean"], "max_vocab": 100, "ns_exponent": 0.5}),
    (["run", "word2vec"], {"probes": None, "export_matrices": ["input"], "max_vocab": None}),
    (["run", "metric", "--no-augment", "--loss", "triplet_max", "--miner", "semi_hard", "--classes-per-batch", "4",
      "--augment-max-translate-px", "0.5"],
     {"augment": False, "loss": "triplet_max", "miner": "semi_hard", "classes_per_batch": 4,
      "augment_max_translate_px": 0.5}),
    (["run", "metric", "--loss", "triplet_hinge", "--mining", "both", "--mining-refresh", "3", "--mining-k", "50",
      "--mining-negatives", "2"],
     {"loss": "triplet_hinge", "mining": "both", "mining_refresh": 3, "mining_k": 50, "mining_negatives": 2}),
    (["run", "clip", "--image-channels", "16", "32", "--text-tower", "transformer", "--epochs", "3"],
     {"image_channels": (16, 32), "text_tower": "transformer", "epochs": 3}),
    (["run", "clip", "--mining", "both", "--mining-refresh", "2", "--mining-k", "40", "--mining-negatives", "3"],
     {"mining": "both", "mining_refresh": 2, "mining_k": 40, "mining_negatives": 3}),
    (["run", "multisense", "--estep", "sample", "--warmup-epochs", "0", "--probes", "bank"],
     {"estep": "sample", "warmup_epochs": 0, "probes": ["bank"]}),
])
def test_generated_options_reach_the_flow_parameters(argv, expected, monkeypatch):
    """Each `run` option sets its params field (lists repeatable, --x/--no-x for booleans); the flow is not run."""
    from replearn.cli import main as cli

    seen = {}
    real = cli.params_from_options

    def capture(model, options):
        seen["params"] = real(model, options)
        raise typer.Exit(0)

    monkeypatch.setattr(cli, "params_from_options", capture)
    result = runner.invoke(app, expand_multi_value_options(argv))
    assert result.exit_code == 0, result.output
    assert {k: getattr(seen["params"], k) for k in expected} == expected


@pytest.mark.parametrize("family, option", [("metric", "--batch-size"), ("clip", "--dim"), ("multisense", "--max-senses")])
def test_every_family_reports_invalid_options_one_line_each(family, option):
    result = runner.invoke(app, ["run", family, option, "0"])
    assert result.exit_code == 2 and f"{option}: Input should be greater than" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("argv, says", [
    (["run", "word2vec", "--alpha", "0.01", "--min-alpha", "0.5"], "min_alpha=0.5 does not fit: Final learning rate"),
    (["run", "multisense", "--epochs", "1"], "warmup_epochs=1 does not fit: First epochs trained as plain skip-gram"),
    (["run", "metric", "--augment-scale-min", "2"], "augment_scale_min=2.0 does not fit: Smallest random scale"),
    (["run", "metric", "--mining", "index"], "mining='index' (--mining) needs a triplet loss, and loss is "
                                             "'supcon' (--loss)"),
    (["run", "word2vec", "--ns-exponent", "-0.5"], "--ns-exponent: Input should be greater than or equal to 0"),
])
def test_a_rule_between_options_fails_before_the_run_naming_the_option(argv, says, tmp_path):
    """The lib configs' cross-field rules are checked when the parameters are made: one line, nothing run."""
    result = runner.invoke(app, [*argv, "--home", str(tmp_path / "h")])
    assert result.exit_code == 2 and result.output.startswith("error:") and says in " ".join(result.output.split())
    assert "docstring" not in result.output and not (tmp_path / "h").exists()


@pytest.mark.parametrize("family", ["word2vec", "multisense", "metric", "clip"])
def test_every_run_command_writes_its_summary_as_json_on_request(family):
    result = runner.invoke(app, ["run", family, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--json" in result.output


def test_a_full_disk_inside_a_flow_is_one_error_line_naming_the_path(prefect_harness, monkeypatch, lee_corpus,
                                                                     tmp_path):
    import errno

    import replearn.flows.word2vec as flow_module

    def full_disk(params):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "h" / "vectors.npz.tmp"))

    monkeypatch.setattr(flow_module, "word2vec_flow", full_disk)
    result = runner.invoke(app, ["run", "word2vec", "--corpus", str(lee_corpus), "--home", str(tmp_path / "h")])
    assert result.exit_code == 2, result.output
    assert "error: no space left on the device:" in result.output and "vectors.npz.tmp" in result.output
    assert "free space there" in result.output and "Traceback" not in result.output


def test_os_errors_a_user_cannot_fix_keep_their_traceback(prefect_harness, monkeypatch, lee_corpus, tmp_path):
    import errno

    import replearn.flows.word2vec as flow_module

    def bug(params):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(flow_module, "word2vec_flow", bug)
    result = runner.invoke(app, ["run", "word2vec", "--corpus", str(lee_corpus), "--home", str(tmp_path / "h")])
    assert result.exit_code != 0 and isinstance(result.exception, OSError)


def test_quiet_filter_drops_a_full_disks_repeats():
    import errno
    import logging
    import sys

    from replearn.cli.main import _QuietInputErrors

    e = OSError(errno.ENOSPC, "No space left on device", "/data/run/tokens/part-0.parquet")
    try:
        raise e
    except OSError:
        info = sys.exc_info()
    quiet = _QuietInputErrors()
    assert not quiet.filter(logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1,
                                              "Task run failed with exception", None, info))
    assert not quiet.filter(logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1,
                                              f"Finished in state Failed('Flow run encountered an exception. OSError: "
                                              f"{e}')", None, None))


def test_the_registered_line_says_champion_challenger_or_nothing_new():
    from replearn.cli.main import _registered_line

    base = {"name": "replearn-word2vec", "version": "3", "champion": False, "reason": "x <= champion v1"}
    assert _registered_line({**base, "champion": True}) == "replearn-word2vec version 3 -> champion"
    assert _registered_line(base) == "replearn-word2vec version 3 (challenger: x <= champion v1)"
    line = _registered_line({**base, "new_version": False, "reason": "nothing changed since version 3 (MLflow run r)"})
    assert line == "replearn-word2vec version 3 still stands: nothing changed since version 3 (MLflow run r)"


def test_a_malformed_init_from_says_what_form_it_takes():
    from pydantic import ValidationError

    from replearn.cli.main import validation_message
    from replearn.flows.params import Word2VecParams

    with pytest.raises(ValidationError) as e:
        Word2VecParams(init_from="foo")
    assert validation_message(e.value) == ("--init-from: 'foo' names no registered version: give NAME@ALIAS "
                                           "(replearn-word2vec@champion, @latest) or NAME@VERSION (replearn-word2vec@3)")


def test_a_warm_start_says_what_it_continued_and_where_the_report_is(capsys):
    from replearn.cli import main as cli

    s = {"model": {"name": "m", "version": 2, "champion": True, "new_version": True}, "tracking_uri": "sqlite:///x.db",
         "mlflow_run_id": "r", "init_from": "m v1", "new_files": ["/data/in/b.txt"], "what_changed": "/h/wc.md"}
    cli.print_outputs(s, "e.parquet", "i.faiss")
    out = capsys.readouterr().out
    assert "continued  : m v1 on 1 new file(s): b.txt" in out and "changes    : /h/wc.md" in out
