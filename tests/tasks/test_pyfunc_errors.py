"""Input errors in a served model's predict become MlflowException(INVALID_PARAMETER_VALUE); bugs stay bugs."""

import pytest
from mlflow.exceptions import MlflowException

from replearn.lib.multisense.model import UnknownWordError
from replearn.tasks.pyfunc_errors import input_errors_as_bad_request


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
