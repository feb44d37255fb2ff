"""KeyedVectors: validation, lookups, and most_similar against gensim 4 and a brute-force loop."""

import subprocess
import sys

import numpy as np
import pytest

from replearn.lib.errors import EmbeddingsError, ReplearnInputError, VocabularyError
from replearn.lib.vectors import KeyedVectors, from_gensim, unit_rows

N, D = 200, 16


@pytest.fixture(scope="module")
def kv():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(N)]
    vecs = rng.standard_normal((N, D)).astype(np.float32)
    return KeyedVectors(words, vecs)


@pytest.fixture(scope="module")
def gkv(kv):
    return kv.to_gensim()


def brute_most_similar(kv, positive, negative, topn, restrict_vocab=None):
    """Plain-Python most_similar: mean of unit vectors (+1/-1), normalised, cosine to every word."""
    V = kv.vectors.astype(np.float64)
    unit = [v / np.linalg.norm(v) for v in V]
    items = [(w, 1.0) for w in positive] + [(w, -1.0) for w in negative]
    mean = sum(wt * unit[kv.index(w)] for w, wt in items) / len(items)
    mean = mean / np.linalg.norm(mean)
    inputs = {kv.index(w) for w, _ in items}
    end = restrict_vocab or len(V)
    scored = [(kv.words[j], float(np.dot(unit[j], mean))) for j in range(end) if j not in inputs]
    scored.sort(key=lambda t: -t[1])
    return scored[:topn]


def assert_same(ours, ref, tol=1e-5):
    assert [w for w, _ in ours] == [w for w, _ in ref]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in ref], atol=tol)


def _queries(seed=1, n=60):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        n_pos, n_neg = [(1, 0), (2, 1), (3, 0), (1, 2), (0, 1), (2, 2)][k % 6]
        picks = [f"w{i}" for i in rng.choice(N, size=n_pos + n_neg, replace=False)]
        out.append((picks[:n_pos], picks[n_pos:], int(rng.choice([1, 5, 10, 25])), [None, 50, 120][k % 3]))
    return out


# ------------------------------------------------------------------ validation
def test_nan_row_names_index_and_word():
    v = np.ones((5, 3), np.float32)
    v[3, 1] = np.nan
    with pytest.raises(EmbeddingsError, match=r"row 3 \(word 'd'\)"):
        KeyedVectors(list("abcde"), v)


def test_inf_row_rejected():
    v = np.ones((4, 3), np.float32)
    v[2, 0] = np.inf
    with pytest.raises(EmbeddingsError, match="row 2"):
        KeyedVectors(list("abcd"), v)


def test_float64_overflow_becomes_inf_and_is_rejected():
    v = np.ones((2, 2), np.float64)
    v[1, 1] = 1e300  # overflows float32
    with pytest.raises(EmbeddingsError, match="row 1"):
        KeyedVectors(["a", "b"], v)


def test_duplicate_word():
    with pytest.raises(EmbeddingsError, match=r"row 2: duplicate word 'a' \(first seen at row 0\)"):
        KeyedVectors(["a", "b", "a"], np.ones((3, 2), np.float32))


def test_shape_errors():
    with pytest.raises(EmbeddingsError, match="2-D"):
        KeyedVectors(["a", "b"], np.ones(2, np.float32))
    with pytest.raises(EmbeddingsError, match="3 words but 2 vector rows"):
        KeyedVectors(["a", "b", "c"], np.ones((2, 4), np.float32))
    with pytest.raises(EmbeddingsError, match="empty"):
        KeyedVectors([], np.ones((0, 4), np.float32))
    with pytest.raises(EmbeddingsError, match="not a string"):
        KeyedVectors(["a", None], np.ones((2, 4), np.float32))
    assert issubclass(EmbeddingsError, ValueError)


def test_unit_vectors_and_zero_rows():
    v = np.array([[3, 4], [0, 0], [1, 0]], np.float32)
    kv = KeyedVectors(["a", "b", "c"], v)
    np.testing.assert_allclose(kv.unit, [[0.6, 0.8], [0, 0], [1, 0]], atol=1e-7)
    np.testing.assert_allclose(kv.norms, [5, 0, 1])
    assert kv.unit.dtype == np.float32 and kv.vectors.dtype == np.float32
    assert kv.similarity("a", "b") == 0.0
    # a zero row never produces NaN in a query
    assert all(np.isfinite(s) for _, s in kv.most_similar("a"))
    u, n = unit_rows(v)
    np.testing.assert_array_equal(u, kv.unit)


def test_read_only_without_touching_callers_array():
    v = np.ones((2, 3), np.float32)
    kv = KeyedVectors(["a", "b"], v)
    assert not kv.vectors.flags.writeable and not kv.unit.flags.writeable
    assert v.flags.writeable
    with pytest.raises(ValueError):
        kv.vectors[0, 0] = 2


# --------------------------------------------------------------------- lookups
def test_lookups(kv, gkv):
    assert len(kv) == N and kv.vector_size == D
    assert "w5" in kv and "nope" not in kv and 5 not in kv
    assert kv.index("w7") == 7
    np.testing.assert_array_equal(kv.vector("w3"), kv.vectors[3])
    np.testing.assert_array_equal(kv["w3"], kv.vectors[3])
    np.testing.assert_allclose(kv.vector("w3", norm=True), gkv.get_vector("w3", norm=True), atol=1e-6)
    for a, b in [("w0", "w1"), ("w5", "w5"), ("w10", "w199")]:
        assert kv.similarity(a, b) == pytest.approx(float(gkv.similarity(a, b)), abs=1e-6)


def test_unknown_word_error_names_word_and_hints():
    kv = KeyedVectors(["Paris", "berlin"], np.eye(2, dtype=np.float32))
    with pytest.raises(VocabularyError, match=r"'paris'.*did you mean 'Paris'"):
        kv.index("paris")
    with pytest.raises(VocabularyError, match="'rome'.*min_count"):
        kv.vector("rome")
    with pytest.raises(VocabularyError):
        kv.similarity("Paris", "rome")
    with pytest.raises(VocabularyError):
        kv.most_similar(positive=["Paris"], negative=["rome"])
    with pytest.raises(ValueError):  # VocabularyError is a ValueError
        kv.index("x")


# ---------------------------------------------------------------- most_similar
def test_most_similar_matches_gensim(kv, gkv):
    for pos, neg, topn, rv in _queries():
        ours = kv.most_similar(positive=pos, negative=neg, topn=topn, restrict_vocab=rv)
        ref = gkv.most_similar(positive=pos, negative=neg, topn=topn, restrict_vocab=rv)
        assert_same(ours, ref)


def test_most_similar_matches_brute_force(kv):
    for pos, neg, topn, rv in _queries(seed=2, n=30):
        ours = kv.most_similar(positive=pos, negative=neg, topn=topn, restrict_vocab=rv)
        assert_same(ours, brute_most_similar(kv, pos, neg, topn, rv))


def test_most_similar_edge_cases(kv, gkv):
    # a bare string, topn larger than the vocabulary, restrict_vocab smaller than topn
    assert_same(kv.most_similar("w4"), gkv.most_similar("w4"))
    assert_same(kv.most_similar("w4", topn=500), gkv.most_similar("w4", topn=500))
    assert len(kv.most_similar("w4", topn=500)) == N - 1
    assert_same(kv.most_similar("w4", topn=10, restrict_vocab=6), gkv.most_similar("w4", topn=10, restrict_vocab=6))
    # the input word lies outside restrict_vocab
    assert_same(kv.most_similar("w150", restrict_vocab=30), gkv.most_similar("w150", restrict_vocab=30))
    # weights and raw vectors, as gensim accepts
    q = [("w1", 2.0), ("w2", 0.5)]
    assert_same(kv.most_similar(positive=q, negative=["w3"]), gkv.most_similar(positive=q, negative=["w3"]))
    vec = kv.vectors[9] * 3
    assert_same(kv.most_similar(positive=[vec, "w8"]), gkv.most_similar(positive=[vec, "w8"]))
    assert kv.most_similar("w4", topn=0) == []
    np.testing.assert_allclose(kv.most_similar("w4", topn=None), gkv.most_similar("w4", topn=None), atol=1e-6)
    np.testing.assert_allclose(
        kv.most_similar("w4", topn=None, restrict_vocab=40), gkv.most_similar("w4", topn=None, restrict_vocab=40),
        atol=1e-6,
    )
    with pytest.raises(ReplearnInputError):
        kv.most_similar()
    with pytest.raises(ReplearnInputError):
        kv.most_similar("w1", restrict_vocab=-3)


def test_most_similar_batch_equals_most_similar(kv):
    words = [f"w{i}" for i in range(0, N, 7)]
    for rv in (None, 60):
        batch = kv.most_similar_batch(words, topn=8, restrict_vocab=rv, batch_size=5)
        for w, got in zip(words, batch):
            assert_same(got, kv.most_similar(w, topn=8, restrict_vocab=rv), tol=1e-6)
    with pytest.raises(VocabularyError):
        kv.most_similar_batch(["w1", "zzz"])


# --------------------------------------------------------------------- interop
def test_gensim_round_trip(kv, gkv):
    assert list(gkv.index_to_key) == list(kv.words)
    back = from_gensim(gkv)
    assert back.words == kv.words
    np.testing.assert_array_equal(back.vectors, kv.vectors)
    assert KeyedVectors.from_gensim(gkv).words == kv.words


def test_lib_eval_modules_import_no_prefect_or_mlflow():
    code = (
        "import sys, replearn.lib.vectors, replearn.lib.eval.analogy, replearn.lib.eval.similarity, "
        "replearn.lib.eval.neighbours; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('prefect', 'mlflow')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
