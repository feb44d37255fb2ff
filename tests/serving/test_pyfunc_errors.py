"""Input errors in a served model's predict become MlflowException(INVALID_PARAMETER_VALUE); bugs stay bugs."""

import pytest
from mlflow.exceptions import MlflowException

from replearn.lib.multisense.model import UnknownWordError
from replearn.serving.pyfunc_errors import input_errors_as_bad_request


class _Model:
    @input_errors_as_bad_request
    def predict(self, context, model_input, params=None):
        if model_input == "unknown":
            raise UnknownWordError("'zzz' is not in the vocabulary")
        if model_input == "missing":
            return {}["word"]
        if model_input == "bug":
            raise RuntimeError("internal")
        return [model_input]


def test_input_errors_become_bad_requests_and_bugs_do_not():
    m = _Model()
    assert m.predict(None, "ok") == ["ok"]
    with pytest.raises(MlflowException) as err:
        m.predict(None, "unknown")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE" and err.value.get_http_status_code() == 400
    assert err.value.message == "UnknownWordError: 'zzz' is not in the vocabulary"
    assert isinstance(err.value, ValueError)  # the CLI catches bad input as ValueError
    with pytest.raises(MlflowException, match="KeyError: 'word'"):
        m.predict(None, "missing")
    with pytest.raises(RuntimeError):
        m.predict(None, "bug")


def test_topn_defaults_when_absent_and_must_be_a_whole_number_of_at_least_one():
    import numpy as np
    import pandas as pd

    from replearn.serving.pyfunc_errors import topn_of

    for absent in ({}, {"topn": None}, {"topn": float("nan")}, {"topn": pd.NA}):
        assert topn_of(absent, 7) == 7
    assert topn_of({"topn": 3}, 7) == 3 and topn_of({"topn": np.int64(4)}, 7) == 4 and topn_of({"topn": 5.0}, 7) == 5
    for bad in (0, -1, 2.5, "abc", "3"):
        with pytest.raises(ValueError, match=f"topn must be a whole number >= 1, got {bad!r}"):
            topn_of({"topn": bad}, 7)
