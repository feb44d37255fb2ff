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


def test_topn_defaults_when_absent_and_must_be_a_whole_number_from_1_to_the_cap():
    import numpy as np
    import pandas as pd

    from replearn.serving.pyfunc_errors import topn_of

    for absent in ({}, {"topn": None}, {"topn": float("nan")}, {"topn": pd.NA}):
        assert topn_of(absent, 7) == 7
    assert topn_of({"topn": 3}, 7) == 3 and topn_of({"topn": np.int64(4)}, 7) == 4 and topn_of({"topn": 5.0}, 7) == 5
    assert topn_of({"topn": 1000}, 7) == 1000
    for bad in (0, -1, 2.5, "abc", "3", 1001, 100000):
        with pytest.raises(ValueError, match=f"topn must be a whole number from 1 to 1000, got {bad!r}"):
            topn_of({"topn": bad}, 7)


def test_a_batch_over_the_limit_is_refused_and_a_word2vec_batch_is_one_search():
    import numpy as np

    from replearn.lib.store.faiss_index import build_index
    from replearn.lib.vectors import KeyedVectors
    from replearn.serving.query_errors import MAX_BATCH, check_batch
    from replearn.serving.word_vectors_engine import WordVectorsEngine

    check_batch(MAX_BATCH)
    with pytest.raises(ValueError, match=f"1001 queries in one request; at most {MAX_BATCH}: split the request"):
        check_batch(MAX_BATCH + 1)
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)]
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    engine = WordVectorsEngine(KeyedVectors(words, vectors), build_index(vectors, "cos", "Flat", ids=np.arange(50)))
    records = [{"positive": [w], "topn": 1 + i % 5} for i, w in enumerate(words)] + [
        {"positive": "w1 w2", "negative": "w3", "topn": 4}]
    batch = engine.answer(records)
    one_by_one = [dict(r, query=qi) for qi, rec in enumerate(records) for r in engine.answer([rec])]
    assert batch == one_by_one
    # against a plain loop: cosine to the unit mean of the unit vectors, input words excluded
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = unit[1] + unit[2] - unit[3]
    sims = unit @ (q / np.linalg.norm(q))
    sims[[1, 2, 3]] = -np.inf
    want = [words[i] for i in np.argsort(-sims)[:4]]
    assert [r["word"] for r in batch if r["query"] == len(words)] == want
