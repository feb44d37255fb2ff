"""Word similarity (WordSim-353, SimLex-999) for multi-sense vectors.

Two single scores per word pair (Reisinger & Mooney 2010; Huang et al. 2012;
Neelakantan et al. 2014):

* AvgSim of the prior-weighted average: cos(w_a, w_b) with
  w_x = sum_z p(z|x) v(x,z) (:meth:`MultiSenseVectors.average_vectors`);
* MaxSim: max_{z, z'} cos(v(a,z), v(b,z')).

Both use the pair files, parsing, case folding and OOV rule of
:func:`replearn.lib.eval.similarity.evaluate_word_pairs` (gensim's), so the
figures compare directly with single-sense skip-gram.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import stats

from replearn.lib.errors import ReplearnInputError
from replearn.lib.eval.similarity import SimilarityResult, evaluate_word_pairs, read_word_pairs
from replearn.lib.multisense.model import MultiSenseVectors
from replearn.lib.vectors import unit_rows

__all__ = ["evaluate_average", "evaluate_maxsim", "maxsim"]


def evaluate_average(model: MultiSenseVectors, path: str | os.PathLike, restrict_vocab: int | None = 300000
                     ) -> SimilarityResult:
    """Spearman/Pearson of cos(prior-weighted average vectors) against human scores.

    Args:
        model: the multi-sense vectors. path: a word-pair file (e.g. ``wordsim353_path()``).
        restrict_vocab: the first this many words are in vocabulary (None: all).

    Returns:
        SimilarityResult (see lib/eval/similarity.py).

    Raises:
        ReplearnInputError: missing/undecodable file or fewer than 2 pairs in vocabulary.
    """
    return evaluate_word_pairs(model.word_vectors(), path, restrict_vocab=restrict_vocab)


def maxsim(model: MultiSenseVectors, a: str, b: str) -> float:
    """max over sense pairs of cos(v(a,z), v(b,z')), in [-1, 1]. Raises UnknownWordError for an unknown word."""
    ua = unit_rows(model.sense_vectors(a))[0]
    ub = unit_rows(model.sense_vectors(b))[0]
    return float((ua @ ub.T).max())


def evaluate_maxsim(model: MultiSenseVectors, path: str | os.PathLike, restrict_vocab: int | None = 300000,
                    case_insensitive: bool = True) -> SimilarityResult:
    """Spearman/Pearson of MaxSim against human scores, with gensim's OOV rule.

    Args / Returns / Raises: as :func:`evaluate_average`.
    """
    kv = model.word_vectors()
    n_vocab = kv.restricted_size(restrict_vocab)
    ok: dict[str, str] = {}
    for w in kv.words[:n_vocab]:
        ok.setdefault(w.upper() if case_insensitive else w, w)
    pairs, _ = read_word_pairs(path, case_insensitive=case_insensitive)
    gold, sims = [], []
    n_oov = 0
    for a, b, s in pairs:
        if a in ok and b in ok:
            gold.append(s)
            sims.append(maxsim(model, ok[a], ok[b]))
        else:
            n_oov += 1
    if len(gold) < 2:
        raise ReplearnInputError(f"{len(gold)} valid in-vocabulary word pairs in {os.fspath(path)} (need >= 2; "
                                 f"{n_oov} out of vocabulary)")
    sp = stats.spearmanr(gold, sims)
    pe = stats.pearsonr(gold, sims)
    return SimilarityResult(float(sp[0]), float(pe[0]), len(gold), n_oov, n_oov / (len(gold) + n_oov),
                            float(sp[1]), float(pe[1]))
