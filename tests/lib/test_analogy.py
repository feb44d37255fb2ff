"""3CosAdd analogies: three_cos_add against a brute-force loop, evaluate_analogies against gensim 4."""

import numpy as np
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.eval.analogy import AnalogyResult, evaluate_analogies, questions_words_path, three_cos_add
from replearn.lib.vectors import KeyedVectors


def _question_lines():
    sections, lines = [], []
    with open(questions_words_path(), encoding="utf-8") as f:
        for line in f:
            if line.startswith(": "):
                sections.append(line[2:].strip())
            else:
                lines.append((len(sections) - 1, line.split()))
    return sections, lines


@pytest.fixture(scope="module")
def structured_kv():
    """Vectors for every word of questions-words.txt (+ noise words and case variants) in which
    many analogies hold: the first time a pair (a, b) of a section is seen, b := a + offset(section)."""
    rng = np.random.default_rng(7)
    D = 24
    sections, lines = _question_lines()
    offsets = rng.standard_normal((len(sections), D)) * 0.8
    vec: dict[str, np.ndarray] = {}
    for s, (a, b, c, d) in lines:
        for x, y in ((a, b), (c, d)):
            if x not in vec:
                vec[x] = rng.standard_normal(D)
            if y not in vec:
                vec[y] = vec[x] + offsets[s] + 0.3 * rng.standard_normal(D)
    words = list(vec)
    rng.shuffle(words)
    # case variants close to their originals: some more frequent than the original (they then
    # supply the vector), most less frequent (they then crowd the top 5 and must be skipped)
    variants = []
    for w in rng.choice(words, size=150, replace=False):
        v = w.lower() if w != w.lower() else w.capitalize()
        vec[v] = vec[w] + 0.05 * rng.standard_normal(D)
        variants.append(v)
    early, late = variants[:20], variants[20:]
    noise = [f"zz{i}" for i in range(200)]
    for z in noise:
        vec[z] = rng.standard_normal(D)
    order = early + words[:300] + noise[:100] + words[300:800] + late + words[800:] + noise[100:]
    return KeyedVectors(order, np.stack([vec[w] for w in order]).astype(np.float32))


def _gensim_eval(kv, restrict_vocab, case_insensitive=True):
    g = kv.to_gensim()
    score, secs = g.evaluate_word_analogies(
        questions_words_path(), restrict_vocab=restrict_vocab, case_insensitive=case_insensitive
    )
    total = secs[-1]
    n_quads = sum(len(s["correct"]) + len(s["incorrect"]) for s in secs[:-1])
    per = {s["section"]: (len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in secs[:-1]}
    return score, len(total["correct"]), n_quads, per


def _n_questions_in_file():
    return sum(1 for _, q in _question_lines()[1] if len(q) == 4)


# ------------------------------------------------------------------ three_cos_add
def brute_three_cos_add(unit, a, b, c, exclude=True):
    U = unit.astype(np.float64)
    out = []
    for ai, bi, ci in zip(a, b, c):
        q = U[bi] - U[ai] + U[ci]
        q /= np.linalg.norm(q)
        best, best_s = -1, -np.inf
        for j in range(len(U)):
            if exclude and j in (ai, bi, ci):
                continue
            s = float(U[j] @ q)
            if s > best_s:
                best, best_s = j, s
        out.append(best)
    return np.array(out)


@pytest.mark.parametrize("exclude", [True, False])
def test_three_cos_add_matches_brute_force(exclude):
    rng = np.random.default_rng(3)
    N, D, Q = 150, 12, 300
    v = rng.standard_normal((N, D)).astype(np.float32)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    a, b, c = (rng.integers(0, N, Q) for _ in range(3))
    got = three_cos_add(unit, a, b, c, exclude=exclude, batch_size=64)
    assert got.shape == (Q,) and got.dtype == np.int64
    np.testing.assert_array_equal(got, brute_three_cos_add(unit, a, b, c, exclude))
    if exclude:
        assert not np.any((got == a) | (got == b) | (got == c))


def test_three_cos_add_solves_planted_analogy():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((50, 8)).astype(np.float32)
    v[3] = v[0] - v[1] + v[2]  # king - man + woman = queen
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert three_cos_add(unit, [1], [0], [2])[0] == 3


def test_three_cos_add_bad_input():
    unit = np.eye(4, dtype=np.float32)
    with pytest.raises(ReplearnInputError, match="outside"):
        three_cos_add(unit, [0], [1], [4])
    with pytest.raises(ReplearnInputError, match="lengths differ"):
        three_cos_add(unit, [0, 1], [1], [2])


# ------------------------------------------------------------- evaluate_analogies
@pytest.mark.parametrize("restrict_vocab", [800, 1100])
def test_evaluate_analogies_matches_gensim(structured_kv, restrict_vocab):
    kv = structured_kv
    assert restrict_vocab < len(kv)
    ours = evaluate_analogies(kv, restrict_vocab=restrict_vocab)
    score, n_correct, n_in_vocab, per = _gensim_eval(kv, restrict_vocab)
    assert ours.total == score
    assert ours.n_correct == n_correct
    assert ours.n_questions == n_in_vocab
    assert ours.n_oov == _n_questions_in_file() - n_in_vocab
    assert ours.n_oov > 0 and ours.n_questions > 0
    assert ours.sections == per
    assert ours.total > 0.2  # the planted structure is found, so the comparison is meaningful


def test_evaluate_analogies_case_sensitive_matches_gensim(structured_kv):
    ours = evaluate_analogies(structured_kv, restrict_vocab=1200, case_insensitive=False)
    score, n_correct, n_in_vocab, per = _gensim_eval(structured_kv, 1200, case_insensitive=False)
    assert (ours.total, ours.n_correct, ours.n_questions, ours.sections) == (score, n_correct, n_in_vocab, per)


def test_semantic_syntactic_split(structured_kv):
    r = evaluate_analogies(structured_kv, restrict_vocab=1100)
    sem = [v for k, v in r.sections.items() if not k.startswith("gram")]
    syn = [v for k, v in r.sections.items() if k.startswith("gram")]
    assert len(sem) == 5 and len(syn) == 9
    assert r.semantic == pytest.approx(sum(c for c, _ in sem) / sum(n for _, n in sem))
    assert r.syntactic == pytest.approx(sum(c for c, _ in syn) / sum(n for _, n in syn))
    assert r.n_questions == sum(n for _, n in r.sections.values())
    d = r.to_dict()
    assert d["analogy_total"] == r.total and d["analogy_n_oov"] == r.n_oov
    assert "analogy_section.gram3-comparative" in d
    assert all(isinstance(x, float) for x in d.values())
    assert 0 <= d["analogy_oov_ratio"] <= 1


def _write(tmp_path, text):
    p = tmp_path / "q.txt"
    p.write_text(text, encoding="utf-8")
    return p


def test_small_file_and_case_variants(tmp_path):
    # 'King' is the nearest candidate but a case variant of an input word: gensim skips it
    v = np.array(
        [[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1.0, 0.98, 0.0]], np.float32
    )  # man, woman, king, bread, King (near king)
    kv = KeyedVectors(["man", "woman", "king", "bread", "King"], v)
    p = _write(tmp_path, ": family\nman woman king queen\nman woman king bread\nbad line\n: gram-x\nman king woman bread\n")
    r = evaluate_analogies(kv, path=p, restrict_vocab=None)
    gk = kv.to_gensim()
    score, secs = gk.evaluate_word_analogies(str(p), restrict_vocab=len(kv))
    assert r.total == score
    assert r.n_oov == 1  # 'queen' not in vocab
    assert r.n_questions == 2
    assert r.n_correct == 2  # only because the case variant 'King' of an input word is skipped
    assert r.sections == {s["section"]: (len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in secs[:-1]}


def test_no_questions_in_vocab_gives_zero(tmp_path):
    kv = KeyedVectors(["a", "b"], np.eye(2, dtype=np.float32))
    r = evaluate_analogies(kv, path=_write(tmp_path, ": s\nx y z w\n"))
    assert (r.total, r.n_questions, r.n_oov, r.sections) == (0.0, 0, 1, {"s": (0, 0)})


def test_bad_files(tmp_path):
    kv = KeyedVectors(["a", "b"], np.eye(2, dtype=np.float32))
    with pytest.raises(ReplearnInputError, match="does not exist"):
        evaluate_analogies(kv, path=tmp_path / "missing.txt")
    with pytest.raises(ReplearnInputError, match="before any"):
        evaluate_analogies(kv, path=_write(tmp_path, "a b c d\n: s\n"))


def test_result_type(structured_kv):
    assert isinstance(evaluate_analogies(structured_kv, restrict_vocab=50), AnalogyResult)


def test_score_counts_out_of_vocabulary_questions_as_wrong():
    from replearn.lib.eval.analogy import AnalogyResult

    r = AnalogyResult(semantic=0.5, syntactic=0.5, total=0.5, n_correct=50, n_questions=100, n_oov=900, sections={})
    assert r.score == 0.05 and r.to_dict()["analogy_score"] == 0.05
