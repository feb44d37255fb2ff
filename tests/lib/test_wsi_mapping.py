"""lib/multisense/wsi_mapping.py: supervised sense mapping (SemEval-2010 WSI), each figure against a plain loop."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.multisense.wsi_mapping import (
    MappedPair,
    headroom,
    majority_map,
    mapped_accuracy,
    mapping_split,
    mean_scores,
    one_to_one_accuracy,
    score_pair,
)


def test_the_mapping_split_is_deterministic_and_about_its_fraction():
    m = mapping_split(10_000, 0.8, seed=3)
    assert m.dtype == bool and abs(m.mean() - 0.8) < 0.02
    np.testing.assert_array_equal(m, mapping_split(10_000, 0.8, seed=3))
    assert (m != mapping_split(10_000, 0.8, seed=4)).any()
    np.testing.assert_array_equal(mapping_split(50, 0.8, 3), m[:50])  # an occurrence's side does not depend on n
    with pytest.raises(ReplearnInputError):
        mapping_split(10, 1.0)


def test_majority_map_against_a_loop():
    rng = np.random.default_rng(0)
    z, y = rng.integers(0, 4, 200), rng.integers(0, 2, 200)
    z[z == 3] = 2  # sense 3 never chosen
    got = majority_map(z, y, 4)
    overall = int(np.bincount(y).argmax())
    for s in range(4):
        chosen = y[z == s]
        want = overall if not len(chosen) else (0 if (chosen == 0).sum() >= (chosen == 1).sum() else 1)
        assert got[s] == want


def _loop_mapped(sm, ym, se, ye):
    K = sm.shape[1]
    zm, ze = sm.argmax(1), se.argmax(1)
    word = {}
    for s in range(K):
        votes = [int(y) for z, y in zip(zm, ym) if z == s]
        word[s] = (max((0, 1), key=lambda w: (votes.count(w), -w)) if votes
                   else max((0, 1), key=lambda w: (list(ym).count(w), -w)))
    return sum(word[int(z)] == y for z, y in zip(ze, ye)) / len(ye)


def _loop_one_to_one(sm, ym, se, ye):
    K = sm.shape[1]
    used = [list(sm.argmax(1)).count(s) for s in range(K)]
    two = sorted(sorted(range(K), key=lambda s: (-used[s], s))[:2])
    best, best_hits = None, -1
    for words in ((0, 1), (1, 0)):
        m = dict(zip(two, words))
        hits = sum(m[two[int(np.argmax(row[two]))]] == y for row, y in zip(sm, ym))
        if hits > best_hits:
            best, best_hits = m, hits
    return sum(best[two[int(np.argmax(row[two]))]] == y for row, y in zip(se, ye)) / len(ye)


@pytest.mark.parametrize("K,seed", list(itertools.product((2, 3, 5), (0, 1, 2))))
def test_mapped_and_one_to_one_accuracy_against_loops(K, seed):
    rng = np.random.default_rng(seed)
    ym, ye = rng.integers(0, 2, 120), rng.integers(0, 2, 40)
    sm = rng.normal(size=(120, K)) + 1.5 * np.eye(K)[np.minimum(ym * (K - 1), K - 1)]  # senses 0 / K-1 lean to 0 / 1
    se = rng.normal(size=(40, K)) + 1.5 * np.eye(K)[np.minimum(ye * (K - 1), K - 1)]
    assert mapped_accuracy(sm, ym, se, ye) == pytest.approx(_loop_mapped(sm, ym, se, ye))
    assert one_to_one_accuracy(sm, ym, se, ye) == pytest.approx(_loop_one_to_one(sm, ym, se, ye))
    assert mapped_accuracy(sm, ym, se, ye) > 0.6  # the lean is found


def test_a_single_sense_reads_as_the_majority_and_headroom_is_a_share():
    ym, ye = np.array([1, 1, 0]), np.array([1, 0, 1, 1])
    assert one_to_one_accuracy(np.zeros((3, 1)), ym, np.zeros((4, 1)), ye) == 0.75
    assert mapped_accuracy(np.zeros((3, 1)), ym, np.zeros((4, 1)), ye) == 0.75
    assert headroom(0.8, 0.6, 1.0) == pytest.approx(0.5) and np.isnan(headroom(0.7, 0.6, 0.6))
    assert np.isnan(mapped_accuracy(np.zeros((3, 2)), ym, np.zeros((0, 2)), np.zeros(0, int)))


def test_score_pair_puts_every_figure_on_the_same_evaluation_split():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    scores = rng.normal(size=(500, 3)) + 2.0 * np.eye(3)[np.where(y == 1, 2, 0)]
    ceiling_pred = np.where(rng.random(500) < 0.9, y, 1 - y)
    r = score_pair("a_b", scores, y, ceiling_pred, fraction=0.8, seed=1)
    m = mapping_split(500, 0.8, 1)
    e = ~m
    assert (r.n_map, r.n_eval) == (int(m.sum()), int(e.sum()))
    assert r.mapped == pytest.approx(_loop_mapped(scores[m], y[m], scores[e], y[e]))
    assert r.ceiling == pytest.approx((ceiling_pred[e] == y[e]).mean())
    maj = int(np.bincount(y[m]).argmax())
    assert r.majority == pytest.approx((y[e] == maj).mean())
    assert r.headroom == pytest.approx((r.mapped - r.majority) / (r.ceiling - r.majority))
    assert r.senses_used == len(np.unique(scores[e].argmax(1)))


def test_mean_scores_skip_pairs_with_nothing_to_score():
    def pair(n_eval, mapped, one, major):
        return MappedPair("x", 10, n_eval, 2, mapped, one, major, float("nan"), float("nan"))

    got = mean_scores([pair(4, 0.75, 0.5, 0.5), pair(0, float("nan"), float("nan"), float("nan")),
                       pair(2, 1.0, 1.0, 0.0)])
    assert got == pytest.approx({"mapped": 0.875, "one_to_one": 0.75, "majority": 0.25})
    assert all(np.isnan(v) for v in mean_scores([pair(0, 0.0, 0.0, 0.0)]).values())
