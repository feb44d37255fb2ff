"""The data home: names that would climb out of it are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from replearn.flows.params import ClipParams, MetricParams, MultisenseParams, Word2VecParams
from replearn.infra.home import inside_home


def test_inside_home_accepts_children_and_refuses_escapes(tmp_path):
    assert inside_home(tmp_path, "runs", "word2vec", "abc") == (tmp_path / "runs" / "word2vec" / "abc").resolve()
    for parts in (("..", "x"), ("runs", "..", "..", "etc"), ("/etc/passwd",)):
        with pytest.raises(ValueError, match="would leave the data home"):
            inside_home(tmp_path, *parts)


@pytest.mark.parametrize("params", [Word2VecParams, MetricParams, ClipParams, MultisenseParams])
@pytest.mark.parametrize("name", ["../evil", "/abs/name", "a/b", "..", "", "x" * 101, "-leading-dash"])
def test_model_names_that_could_escape_are_rejected(params, name):
    with pytest.raises(ValidationError, match="model_name"):
        params(model_name=name)


def test_ordinary_model_names_pass():
    assert Word2VecParams(model_name="books-v2.1_final").model_name == "books-v2.1_final"


def test_a_home_that_is_a_file_or_cannot_be_made_is_one_clear_error(tmp_path):
    import pytest

    from replearn.infra.home import data_home
    from replearn.lib.errors import ReplearnInputError

    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(ReplearnInputError, match="is a file, not a folder: pass a folder with --home"):
        data_home(f)
    with pytest.raises(ReplearnInputError, match="cannot create the data home .*Not a directory.*pass a folder you can"):
        data_home(f / "below")
