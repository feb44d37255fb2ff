"""The console script's first decision (cli/entry.py): which commands a spare process may take."""

from replearn.cli.entry import _for_spare


def test_flow_runs_go_to_a_spare_help_and_other_commands_do_not():
    assert _for_spare(["run", "word2vec", "--corpus", "gensim"])
    assert _for_spare(["run", "metric"])
    assert not _for_spare(["run", "word2vec", "--help"]) and not _for_spare(["run", "-h"])
    assert not _for_spare(["run"]) and not _for_spare([])
    assert not _for_spare(["search", "word2vec", "--word", "king"])
    assert not _for_spare(["prefect", "stop"])
