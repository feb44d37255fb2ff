"""Word-pair similarity: evaluate_word_pairs against gensim 4 on WordSim-353 and SimLex-999."""

import os

import numpy as np
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.eval.similarity import (
    SimilarityResult,
    evaluate_word_pairs,
    read_word_pairs,
    simlex999_path,
    wordsim353_path,
)
from replearn.lib.vectors import KeyedVectors


def _pair_words(path):
    words = []
    with open(path, encoding="utf8") as f:
        for line in f:
            if not line.startswith("#"):
                words += line.split("\t")[:2]
    return list(dict.fromkeys(words))


@pytest.fixture(scope="module", params=["wordsim353", "simlex999"])
def case(request):
    """(path, kv): random vectors for every word of the file, shuffled, with noise words and
    case variants (some more frequent than the original), so restrict_vocab cuts some pairs."""
    path = wordsim353_path() if request.param == "wordsim353" else simlex999_path()
    rng = np.random.default_rng(11)
    words = _pair_words(path)
    rng.shuffle(words)
    variants = [w.upper() for w in words[:40]] + [w.capitalize() for w in words[40:80]]
    variants = [v for v in dict.fromkeys(variants) if v not in words]
    noise = [f"zz{i}" for i in range(200)]
    order = variants[:25] + words[: len(words) // 2] + noise + words[len(words) // 2 :] + variants[25:]
    vecs = rng.standard_normal((len(order), 20)).astype(np.float32)
    return path, KeyedVectors(order, vecs)


def _gensim(kv, path, restrict_vocab, case_insensitive=True):
    pearson, spearman, oov_ratio = kv.to_gensim().evaluate_word_pairs(
        path, restrict_vocab=restrict_vocab, case_insensitive=case_insensitive
    )
    return pearson, spearman, oov_ratio


@pytest.mark.parametrize("frac", [0.6, 1.0])
@pytest.mark.parametrize("case_insensitive", [True, False])
def test_matches_gensim(case, frac, case_insensitive):
    path, kv = case
    rv = int(len(kv) * frac)
    ours = evaluate_word_pairs(kv, path, restrict_vocab=rv, case_insensitive=case_insensitive)
    pearson, spearman, oov_ratio = _gensim(kv, path, rv, case_insensitive)
    assert ours.spearman == pytest.approx(spearman[0], abs=1e-6)
    assert ours.pearson == pytest.approx(pearson[0], abs=1e-6)
    assert ours.spearman_pvalue == pytest.approx(spearman[1], rel=1e-4, abs=1e-8)
    assert ours.oov_ratio * 100 == pytest.approx(oov_ratio, abs=1e-9)
    pairs, _ = read_word_pairs(path)
    assert ours.n_pairs + ours.n_oov == len(pairs)
    if frac < 1:
        assert ours.n_oov > 0


def test_brute_force(case):
    path, kv = case
    ours = evaluate_word_pairs(kv, path, restrict_vocab=None)
    first = {}
    for w in kv.words:
        first.setdefault(w.upper(), w)
    gold, model = [], []
    for a, b, s in read_word_pairs(path)[0]:
        if a in first and b in first:
            va, vb = kv.vectors[kv.index(first[a])].astype(float), kv.vectors[kv.index(first[b])].astype(float)
            gold.append(s)
            model.append(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb))
    from scipy import stats

    assert ours.n_pairs == len(gold)
    # float32 (ours, gensim) vs float64 (here) cosines may swap two near-tied ranks: ~1e-6 in rho
    assert ours.spearman == pytest.approx(stats.spearmanr(gold, model)[0], abs=1e-4)
    assert ours.pearson == pytest.approx(stats.pearsonr(gold, model)[0], abs=1e-6)


def test_bundled_paths():
    assert os.path.isfile(wordsim353_path()) and wordsim353_path().endswith("wordsim353.tsv")
    assert os.path.isfile(simlex999_path()) and simlex999_path().endswith("simlex999.txt")


def test_parsing_and_errors(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("# comment\tx\t1\na\tb\t1.0\nbad line\na\tc\tnot-a-number\nB\tc\t3\nc\td\t2\n\na\tb\tc\t4\n")
    kv = KeyedVectors(["a", "b", "c"], np.array([[1, 0], [1, 1], [0.2, 1]], np.float32))
    r = evaluate_word_pairs(kv, p)
    g_pearson, g_spearman, g_oov = kv.to_gensim().evaluate_word_pairs(str(p))
    assert isinstance(r, SimilarityResult)
    assert (r.n_pairs, r.n_oov) == (2, 1)  # (a,b), (B,c) in vocab; (c,d) OOV; 4 bad lines skipped
    assert r.oov_ratio * 100 == pytest.approx(g_oov)
    assert r.spearman == pytest.approx(g_spearman[0]) and r.pearson == pytest.approx(g_pearson[0])
    d = r.to_dict("ws_")
    assert d["ws_spearman"] == r.spearman and d["ws_n_pairs"] == 2.0

    with pytest.raises(ReplearnInputError, match="does not exist"):
        evaluate_word_pairs(kv, tmp_path / "nope.tsv")
    with pytest.raises(ReplearnInputError, match="valid in-vocabulary word pairs"):
        evaluate_word_pairs(kv, p, restrict_vocab=1)
