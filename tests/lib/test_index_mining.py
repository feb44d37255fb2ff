"""Index-mined triplets (lib/metric/index_mining.py) and their statistics (lib/metric/mining_stats.py) against plain
loops over all pairs on tiny seeded data: the same table, no negative of the anchor's label, the guard's count, the
margin violations and the histogram; the batch plumbing, the Parquet round trip and the input errors."""

from __future__ import annotations

import numpy as np
import pytest
from _mining_reference import brute_force, brute_force_pairs

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.config import DISTANCES
from replearn.lib.metric.index_mining import (COLUMNS, MinedTriplets, batch_triplets, draw_positives,
                                              mine_pair_negatives, mine_triplets, read_mined, write_mined)
from replearn.lib.metric.mining_stats import mining_stats


def tiny(n: int = 30, d: int = 4, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random float32 points in ``d`` dimensions, labels in ``0..classes-1`` plus one class of a single item."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, classes, n)
    y[0] = classes + 5                                                           # alone in its class: no positive
    return x, y


def table_rows(mined):
    t = mined.to_arrow().to_pydict()
    return list(zip(*(t[c] for c in COLUMNS)))


@pytest.mark.parametrize("kind", DISTANCES)
@pytest.mark.parametrize("k", [2, 29], ids=["k2-fallback", "k-all"])
@pytest.mark.parametrize("negatives", [1, 3])
def test_mined_table_equals_brute_force(kind, k, negatives):
    x, y = tiny()
    mined = mine_triplets(x, y, k=k, negatives=negatives, distance=kind, seed=7)
    want, guard = brute_force(x, y, negatives, kind, seed=7)
    got = table_rows(mined)
    assert [r[:3] + r[5:] for r in got] == [w[:3] + w[5:] for w in want]       # ids and ranks exactly
    np.testing.assert_allclose([r[3:5] for r in got], [w[3:5] for w in want], rtol=1e-4, atol=1e-5)
    assert mined.guard_removed == guard
    assert mined.anchors_without_positive == 1 and mined.anchors_without_negative == 0
    assert (mined.fallback_anchors > 0) == (k == 2)


@pytest.mark.parametrize("kind", DISTANCES)
@pytest.mark.parametrize("k", [2, 24], ids=["k2-fallback", "k-all"])
@pytest.mark.parametrize("negatives", [1, 3])
def test_pair_negatives_equal_brute_force(kind, k, negatives):
    """Queries among candidates of another kind, e.g. 30 images among 24 distinct captions: the index over the
    candidates, searched with the queries; the positive given, no negative of the query's class."""
    x, _ = tiny()
    rng = np.random.default_rng(5)
    positive = rng.integers(0, 24, 30)                                           # some queries share their positive
    yc = rng.integers(0, 3, 24)
    y = yc[positive]                                                             # a query's class is its positive's
    c = rng.normal(size=(24, 4)).astype(np.float32)                              # the "captions"
    mined = mine_pair_negatives(x, c, y, yc, positive, k=k, negatives=negatives, distance=kind)
    want, guard = brute_force_pairs(x, c, y, yc, positive, negatives, kind)
    got = table_rows(mined)
    assert [r[:3] + r[5:] for r in got] == [w[:3] + w[5:] for w in want]
    np.testing.assert_allclose([r[3:5] for r in got], [w[3:5] for w in want], rtol=1e-4, atol=1e-5)
    assert mined.guard_removed == guard and (mined.positive == positive[mined.anchor]).all()
    assert (yc[mined.negative] != y[mined.anchor]).all() and mined.anchors_without_positive == 0
    assert (mined.fallback_anchors > 0) == (k == 2) and mined.seed == 0


def test_pair_negatives_refuse_candidates_and_positives_that_do_not_fit():
    x, y = tiny()
    with pytest.raises(ReplearnInputError, match="candidates must be"):
        mine_pair_negatives(x, x[:, :3], y, y, np.arange(30))
    with pytest.raises(ReplearnInputError, match="positive must be"):
        mine_pair_negatives(x, x[:20], y, y[:20], np.arange(30))
    with pytest.raises(ReplearnInputError, match="candidates hold NaN/Inf"):
        mine_pair_negatives(x, np.where(np.arange(30)[:, None] == 2, np.inf, x), y, y, np.arange(30))


def test_k_decides_the_speed_never_the_negatives():
    x, y = tiny(n=60, classes=2, seed=3)
    few, many = mine_triplets(x, y, k=1, negatives=2), mine_triplets(x, y, k=59, negatives=2)
    assert few.fallback_anchors > 0 and many.fallback_anchors == 0
    for name in ("anchor", "positive", "negative", "negative_rank"):
        np.testing.assert_array_equal(getattr(few, name), getattr(many, name))
    assert few.guard_removed == many.guard_removed


def test_no_negative_shares_the_anchors_label_and_every_positive_does():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 8)) * 0.3                                      # overlapping classes: many
    y = rng.integers(0, 4, 400)                                                  # same-label candidates to guard
    x = (centres[y] + rng.normal(size=(400, 8))).astype(np.float32)
    mined = mine_triplets(x, y, k=10, negatives=3)
    assert len(mined) == 3 * 400 and mined.guard_removed > 0
    assert (y[mined.negative] != y[mined.anchor]).all()
    assert (y[mined.positive] == y[mined.anchor]).all() and (mined.positive != mined.anchor).all()
    # the guard removed exactly the same-label items ranked ahead of each anchor's last negative
    last = np.zeros(400, int)
    np.maximum.at(last, mined.anchor, mined.negative_rank)
    assert mined.guard_removed == int(last.sum()) - len(mined)


def test_positives_follow_the_documented_draw_and_singletons_get_none():
    y = np.array([3, 1, 3, 3, 9, 1, 3])
    got = draw_positives(y, seed=11)
    u = np.random.default_rng(11).random(len(y))
    for i in range(len(y)):
        same = [j for j in range(len(y)) if j != i and y[j] == y[i]]
        assert got[i] == (same[int(u[i] * len(same))] if same else -1)


def test_fewer_items_of_other_labels_than_negatives_gives_them_all():
    x, y = tiny(n=12)
    y = np.where(np.arange(12) < 10, 1, 2)                                       # two items of label 2
    mined = mine_triplets(x, y, k=3, negatives=4)
    want, guard = brute_force(x, y, 4, "euclidean", seed=0)
    assert [r[:3] + r[5:] for r in table_rows(mined)] == [w[:3] + w[5:] for w in want]
    assert mined.guard_removed == guard and len(mined) == 10 * 2 + 2 * 4


def test_single_class_data_gives_no_triplet():
    x, _ = tiny(n=10)
    mined = mine_triplets(x, np.zeros(10, int), k=3)
    assert len(mined) == 0 and mined.anchors_without_negative == 10 and mined.guard_removed == 0
    stats = mining_stats(mined, margin=0.2)
    assert stats.triplets == 0 and stats.margin_violations == 0.0 and stats.hist_counts.sum() == 0


@pytest.mark.parametrize("margin", [0.0, 0.2, 1.5])
def test_statistics_equal_plain_loops(margin):
    x, y = tiny(n=40)
    mined = mine_triplets(x, y, k=5, negatives=2)
    stats = mining_stats(mined, margin=margin, bins=7)
    T = len(mined)
    slack = [float(mined.d_an[t]) - float(mined.d_ap[t]) for t in range(T)]
    assert stats.triplets == T and stats.anchors == 40
    assert stats.margin_violations == pytest.approx(sum(s < margin for s in slack) / T)
    assert stats.order_violations == pytest.approx(sum(s < 0 for s in slack) / T)
    assert stats.semi_hard == pytest.approx(sum(0 <= s < margin for s in slack) / T)
    assert stats.guard_removed == mined.guard_removed
    assert stats.mean_d_ap == pytest.approx(sum(float(v) for v in mined.d_ap) / T, rel=1e-6)
    edges = stats.hist_edges
    B = len(edges) - 1
    assert B in (7, 8) and edges[0] <= min(0.0, min(slack)) and edges[-1] >= max(margin, max(slack))
    assert np.isclose(edges, margin, atol=1e-12).any()                          # no bar straddles the margin
    counts = [sum(1 for s in slack if edges[b] <= s < edges[b + 1] or (b == B - 1 and s == edges[-1]))
              for b in range(B)]
    assert stats.hist_counts.tolist() == counts and sum(counts) == T
    assert set(stats.metrics()) >= {"margin_violations", "guard_removed", "triplets", "fallback_anchors"}


def test_a_batch_holds_its_anchors_then_their_positives_and_negatives():
    x, y = tiny(n=30)
    mined = mine_triplets(x, y, k=4, negatives=2)
    anchors = np.array([17, 0, 4, 9])                                            # 0 has no triplet
    ids, (a, p, n) = batch_triplets(mined, anchors)
    assert ids[:4].tolist() == anchors.tolist() and len(set(ids.tolist())) == len(ids)
    want = [(ai, pi, ni) for ai, pi, ni in zip(mined.anchor, mined.positive, mined.negative) if ai in anchors]
    got = [(ids[ai], ids[pi], ids[ni]) for ai, pi, ni in zip(a, p, n)]
    assert sorted(got) == sorted(want) and len(want) == 6
    assert set(ids[4:].tolist()) == {t[1] for t in want} | {t[2] for t in want} - set(anchors.tolist())


def test_the_table_round_trips_through_parquet_with_ids_and_leaves_no_temporary(tmp_path):
    x, y = tiny()
    mined = mine_triplets(x, y, k=5)
    ids = np.arange(100, 130)
    path = write_mined(tmp_path / "mined.parquet", mined.to_arrow(ids=ids, extra={"ids": "rows of images.npz"}))
    table, meta = read_mined(path)
    assert table.column_names == list(COLUMNS)
    assert table.column("anchor_id").to_pylist() == (mined.anchor + 100).tolist()
    assert meta["ids"] == "rows of images.npz" and meta["k"] == 5 and meta["guard_removed"] == mined.guard_removed
    assert [p.name for p in tmp_path.iterdir()] == ["mined.parquet"]
    with pytest.raises(FileNotFoundError, match="mine-negatives"):
        read_mined(tmp_path / "missing.parquet")
    # back into positions: the same triplets, field for field, whatever the row order of the file
    back = MinedTriplets.from_arrow(table.take(np.arange(table.num_rows)[::-1]), meta, ids=ids)
    for name in ("anchor", "positive", "negative", "d_ap", "d_an", "negative_rank"):
        np.testing.assert_array_equal(getattr(back, name), getattr(mined, name))
    assert back.metadata() == mined.metadata()
    with pytest.raises(ReplearnInputError, match="not among the items trained on.*run the mine stage again"):
        MinedTriplets.from_arrow(table, meta, ids=ids + 1)
    with pytest.raises(ReplearnInputError, match="mined over 30 items"):
        MinedTriplets.from_arrow(table, meta, ids=ids[:-1])


@pytest.mark.parametrize("call, match", [
    (lambda x, y: mine_triplets(np.where(np.arange(30)[:, None] == 3, np.nan, x), y), "NaN/Inf in 1 row"),
    (lambda x, y: mine_triplets(x, y[:-1]), "one per embedding"),
    (lambda x, y: mine_triplets(x, y.astype(float)), "integer class ids"),
    (lambda x, y: mine_triplets(x, y, k=0), "k must be an integer >= 1"),
    (lambda x, y: mine_triplets(x, y, negatives=0), "negatives must be an integer >= 1"),
    (lambda x, y: mine_triplets(x, y, distance="manhattan"), "choose one of euclidean"),
    (lambda x, y: mine_triplets(x[:1], y[:1]), "N >= 2"),
    (lambda x, y: mining_stats(mine_triplets(x, y), margin=-1), "margin must be"),
])
def test_bad_input_is_refused_naming_the_fix(call, match):
    x, y = tiny()
    with pytest.raises(ReplearnInputError, match=match):
        call(x, y)
