"""Supervised sense mapping: how word-sense induction is scored (SemEval-2010 WSI, Manandhar et al. 2010, sec. 4.2;
Agirre & Soroa 2007, SemEval-2007 task 2).

An induced sense has no name; to score it against the true words, the
held-out occurrences of each merged token are split in two (a deterministic
hash of the occurrence index, :func:`mapping_split`):

* on the **mapping** split (80 %), each induced sense is mapped to the word it
  most often stands for (:func:`majority_map`; a sense never chosen there maps
  to the split's most frequent word);
* on the **evaluation** split (20 %), each occurrence is predicted as the word of
  its most probable sense (argmax of the posterior), and the accuracy is the
  share predicted right (:func:`mapped_accuracy`).

Beside it, on the same evaluation split:

* the **one-to-one** figure (:func:`one_to_one_accuracy`): only the two senses
  most often chosen on the mapping split, each mapped to a different word (the
  better of the two bijections on the mapping split): what a 2-sense reading
  of the model scores;
* the **majority** baseline: every occurrence predicted as the mapping split's
  most frequent word;
* the **ceiling**: the same posterior with the two original words' own
  skip-gram vectors as senses (:func:`~replearn.lib.multisense.pseudowords.ceiling_predictions`);
* the **share of headroom gained**, ``(acc - majority) / (ceiling - majority)``
  (:func:`headroom`).

Scores are posterior log-probabilities, ``(n, K)`` per occurrence and sense
(:func:`~replearn.lib.multisense.pseudowords.occurrence_log_posterior`); labels
are 0 / 1 (which word of the pair stood there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replearn.lib.errors import ReplearnInputError
from replearn.lib.multisense.pseudowords import PseudowordData, hash_split, occurrence_log_posterior

__all__ = ["MAP_FRACTION", "MappedPair", "evaluate_mapped", "headroom", "majority_map", "mapped_accuracy", "mapping_split",
           "mean_scores",
           "one_to_one_accuracy", "score_pair"]

#: Share of the held-out occurrences that maps senses to words (SemEval-2010 WSI: 80 % mapping, 20 % evaluation).
MAP_FRACTION = 0.8


def mapping_split(n: int, fraction: float = MAP_FRACTION, seed: int = 0) -> np.ndarray:
    """bool (n,): True for the occurrences of the mapping split, False for the evaluation split.

    A splitmix64 hash of (occurrence index, seed) below ``fraction``: the same split for every model scored on
    the same occurrences, whatever its senses.

    Raises:
        ReplearnInputError: ``fraction`` not in (0, 1).
    """
    if not 0 < fraction < 1:
        raise ReplearnInputError(f"the mapping fraction must be in (0, 1), got {fraction}")
    return hash_split(np.arange(n, dtype=np.int64), fraction, seed + 1)


def majority_map(z: np.ndarray, labels: np.ndarray, n_senses: int, n_labels: int = 2) -> np.ndarray:
    """int (n_senses,): the label each sense most often stands for among the occurrences ``z`` chose it for (ties:
    the lower label); a sense chosen for none maps to the most frequent label overall (0 with no occurrence).

    Args:
        z: int (n,) the chosen sense of each occurrence, in [0, n_senses). labels: int (n,) in [0, n_labels).
    """
    z, labels = np.asarray(z, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    overall = int(np.bincount(labels, minlength=n_labels).argmax()) if len(labels) else 0
    counts = np.zeros((n_senses, n_labels), dtype=np.int64)
    np.add.at(counts, (z, labels), 1)
    return np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), overall)


def mapped_accuracy(scores_map: np.ndarray, labels_map: np.ndarray, scores_eval: np.ndarray,
                    labels_eval: np.ndarray) -> float:
    """Accuracy on the evaluation split of the argmax sense, mapped by :func:`majority_map` on the mapping split;
    in [0, 1], nan without evaluation occurrences.

    Args:
        scores_map, scores_eval: float (n, K) posterior scores. labels_map, labels_eval: int (n,) true words.
    """
    if not len(labels_eval):
        return float("nan")
    K = scores_eval.shape[1]
    to_word = majority_map(scores_map.argmax(axis=1), labels_map, K)
    return float((to_word[scores_eval.argmax(axis=1)] == labels_eval).mean())


def one_to_one_accuracy(scores_map: np.ndarray, labels_map: np.ndarray, scores_eval: np.ndarray,
                        labels_eval: np.ndarray) -> float:
    """Accuracy on the evaluation split of a one-to-one reading: the two senses most often chosen (argmax) on the
    mapping split (ties: the lower sense), each occurrence given the better of those two, and the two senses mapped
    to different words by the bijection that scores better on the mapping split (ties: sense -> word in order). A
    single-sense model reads as the majority baseline. In [0, 1], nan without evaluation occurrences.
    """
    if not len(labels_eval):
        return float("nan")
    K = scores_eval.shape[1]
    if K == 1:
        return float((labels_eval == majority_map(np.zeros(len(labels_map), int), labels_map, 1)[0]).mean())
    used = np.bincount(scores_map.argmax(axis=1), minlength=K) if len(labels_map) else np.zeros(K, int)
    two = np.sort(np.argsort(-used, kind="stable")[:2])
    z_map = two[scores_map[:, two].argmax(axis=1)] if len(labels_map) else np.zeros(0, int)
    z_eval = two[scores_eval[:, two].argmax(axis=1)]
    best, best_hits = None, -1
    for words in ((0, 1), (1, 0)):
        to_word = dict(zip(two.tolist(), words))
        hits = sum(to_word[int(z)] == int(y) for z, y in zip(z_map, labels_map))
        if hits > best_hits:
            best, best_hits = to_word, hits
    return float(np.mean([best[int(z)] == int(y) for z, y in zip(z_eval, labels_eval)]))


def headroom(accuracy: float, majority: float, ceiling: float) -> float:
    """Share of the headroom above the majority baseline gained: ``(accuracy - majority) / (ceiling - majority)``;
    nan when the ceiling is not above the baseline (no headroom to gain)."""
    gap = ceiling - majority
    return float((accuracy - majority) / gap) if gap > 0 else float("nan")


@dataclass(frozen=True)
class MappedPair:
    """One pseudo-word pair scored by supervised sense mapping (the module's protocol).

    Attributes:
        merged: the merged token. n_map, n_eval: held-out occurrences in the mapping / evaluation split.
        senses_used: distinct senses chosen (argmax) on the evaluation split.
        mapped, one_to_one, majority, ceiling: accuracies on the evaluation split, in [0, 1] (nan: no occurrence).
        headroom: share of the headroom gained by ``mapped`` (:func:`headroom`).
    """

    merged: str
    n_map: int
    n_eval: int
    senses_used: int
    mapped: float
    one_to_one: float
    majority: float
    ceiling: float
    headroom: float


def score_pair(merged: str, scores: np.ndarray, labels: np.ndarray, ceiling_pred: np.ndarray | None = None,
               fraction: float = MAP_FRACTION, seed: int = 0) -> MappedPair:
    """Score one pair's held-out occurrences by the module's protocol.

    Args:
        merged: the merged token. scores: float (n, K) the model's posterior scores of its held-out occurrences.
        labels: int (n,) their true words (0 / 1). ceiling_pred: int (n,) the ceiling's predicted words for the
            same occurrences, or None (ceiling and headroom nan).
        fraction, seed: the mapping split (:func:`mapping_split`).
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    m = mapping_split(len(labels), fraction, seed)
    e = ~m
    majority_word = majority_map(np.zeros(int(m.sum()), int), labels[m], 1)[0]
    majority = float((labels[e] == majority_word).mean()) if e.any() else float("nan")
    ceiling = (float((np.asarray(ceiling_pred)[e] == labels[e]).mean()) if ceiling_pred is not None and e.any()
               else float("nan"))
    acc = mapped_accuracy(scores[m], labels[m], scores[e], labels[e])
    return MappedPair(merged=merged, n_map=int(m.sum()), n_eval=int(e.sum()),
                      senses_used=int(len(np.unique(scores[e].argmax(axis=1)))) if e.any() else 0, mapped=acc,
                      one_to_one=one_to_one_accuracy(scores[m], labels[m], scores[e], labels[e]), majority=majority,
                      ceiling=ceiling, headroom=headroom(acc, majority, ceiling))


def evaluate_mapped(model, data: PseudowordData, ceiling: list[np.ndarray] | None = None, *,
                    fraction: float = MAP_FRACTION, seed: int = 0, context: str = "window", width: int = 5,
                    weights: np.ndarray | None = None) -> list[MappedPair]:
    """Score every pseudo-word pair of ``data`` by supervised sense mapping (the module's protocol).

    Args:
        model: a :class:`~replearn.lib.multisense.model.MultiSenseVectors` trained on ``data.corpus``.
        data: from :func:`~replearn.lib.multisense.pseudowords.build_pseudoword_corpus`.
        ceiling: per pair, the ceiling's predictions of its held-out occurrences
            (:func:`~replearn.lib.multisense.pseudowords.ceiling_predictions`), or None.
        fraction, seed: the mapping split. context, width, weights: the posterior's context
            (:func:`~replearn.lib.multisense.pseudowords.occurrence_log_posterior`).

    Returns:
        One :class:`MappedPair` per pair, in pair order.
    """
    out = []
    for i, tok in enumerate(data.merged):
        te = np.flatnonzero(data.test.pair == i)
        scores = occurrence_log_posterior(np.log(model.sense_prior(tok)), model.context_table(tok), data.test, te,
                                          context, width, weights)
        out.append(score_pair(tok, scores, data.test.label[te], None if ceiling is None else ceiling[i], fraction,
                              seed))
    return out


def mean_scores(results: list[MappedPair]) -> dict[str, float]:
    """Means over the pairs that have occurrences to score (``n_eval > 0``) of ``mapped``, ``one_to_one`` and
    ``majority``; nan each when no pair has any (a corpus too small for its held-out split)."""
    scored = [r for r in results if r.n_eval]
    return {k: float(np.mean([getattr(r, k) for r in scored])) if scored else float("nan")
            for k in ("mapped", "one_to_one", "majority")}
