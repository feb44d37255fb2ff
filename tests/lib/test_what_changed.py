"""The "what changed" report against the champion: each piece checked against a plain-python reference."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.eval.what_changed import (
    WhatChanged,
    build_what_changed,
    metric_deltas,
    nearest_ids,
    neighbour_changes,
    new_word_neighbours,
    oov_rate,
)


def _ref_nearest(x: np.ndarray, i: int, topn: int) -> list[int]:
    """Plain loop: cosine of row i with every other row, sorted descending, ties by lower row."""
    x = x.astype(np.float64)
    ni = math.sqrt(float(x[i] @ x[i]))
    sims = []
    for j in range(len(x)):
        if j == i:
            continue
        nj = math.sqrt(float(x[j] @ x[j]))
        sims.append((-(float(x[i] @ x[j]) / (ni * nj)) if ni and nj else 0.0, j))
    return [j for _, j in sorted(sims)[:topn]]


def _vocab(n: int, d: int, seed: int, prefix: str = "w") -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    return [f"{prefix}{i}" for i in range(n)], rng.standard_normal((n, d)).astype(np.float32)


# ------------------------------------------------------------------ nearest_ids
def test_nearest_ids_matches_a_loop_and_is_chunked_alike():
    _, x = _vocab(60, 7, seed=1)
    rows = np.array([0, 5, 59, 5, 33])
    got = nearest_ids(x, rows, topn=6)
    assert got.shape == (5, 6) and got.dtype == np.int64
    assert got.tolist() == [_ref_nearest(x, int(i), 6) for i in rows]
    assert all(r not in row for r, row in zip(rows.tolist(), got.tolist()))
    np.testing.assert_array_equal(nearest_ids(x, rows, topn=6, batch=2), got)   # chunks of 2 query rows


def test_nearest_ids_zero_norm_row_and_small_vocab():
    _, x = _vocab(8, 4, seed=2)
    x[3] = 0.0
    got = nearest_ids(x, np.arange(8), topn=3)
    assert got.tolist() == [_ref_nearest(x, i, 3) for i in range(8)]
    assert got[3].tolist() == [0, 1, 2]            # all cosines 0: lowest rows first, no NaN ordering
    assert nearest_ids(x, np.array([1]), topn=50).shape == (1, 7)       # truncated to V - 1
    assert nearest_ids(x[:1], np.array([0]), topn=3).shape == (1, 0)
    assert nearest_ids(x, np.array([], dtype=np.int64)).shape == (0, 7)


def test_nearest_ids_rejects_bad_input():
    _, x = _vocab(5, 3, seed=0)
    with pytest.raises(ReplearnInputError, match="outside"):
        nearest_ids(x, np.array([5]))
    with pytest.raises(ReplearnInputError, match="topn"):
        nearest_ids(x, np.array([0]), topn=0)
    with pytest.raises(ReplearnInputError, match=r"\(V, D\)"):
        nearest_ids(x[0], np.array([0]))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ReplearnInputError, match="row 2"):
        nearest_ids(bad, np.array([0]))


# ------------------------------------------------------------ neighbour_changes
def test_neighbour_changes_against_sets_with_differing_dimensions():
    old_w, old_x = _vocab(40, 5, seed=3)
    new_w, new_x = _vocab(45, 9, seed=4)            # other dimension, other order, 5 new words, some dropped
    new_w = [f"w{i}" for i in range(10, 40)] + [f"n{i}" for i in range(5)] + [f"w{i}" for i in range(10)]
    df = neighbour_changes(old_w, old_x, new_w, new_x, topn=4, max_words=12)
    assert df.columns == ["word", "jaccard", "before", "after"]
    assert df.schema["jaccard"] == pl.Float64 and df.schema["before"] == pl.List(pl.String)
    # the 12 first shared words of the new vocabulary, in its order
    assert sorted(df["word"].to_list(), key=new_w.index) == new_w[:12]
    ref = {}
    for w in new_w[:12]:
        before = [old_w[j] for j in _ref_nearest(old_x, old_w.index(w), 4)]
        after = [new_w[j] for j in _ref_nearest(new_x, new_w.index(w), 4)]
        ref[w] = (len(set(before) & set(after)) / len(set(before) | set(after)), before, after)
    for row in df.iter_rows(named=True):
        jac, before, after = ref[row["word"]]
        assert row["jaccard"] == pytest.approx(jac) and 0 <= row["jaccard"] <= 1
        assert row["before"] == before and row["after"] == after
    # most changed first, ties in new-vocabulary order
    keys = [(row["jaccard"], new_w.index(row["word"])) for row in df.iter_rows(named=True)]
    assert keys == sorted(keys)


def test_neighbour_changes_same_model_is_all_ones_and_tie_order():
    words, x = _vocab(20, 6, seed=5)
    df = neighbour_changes(words, x, words, x, topn=3)
    assert df.height == 20 and df["jaccard"].to_list() == [1.0] * 20
    assert df["word"].to_list() == words                              # all tied: vocabulary order


def test_neighbour_changes_moved_word_comes_first():
    words, x = _vocab(30, 6, seed=6)
    y = x.copy()
    y[7] = -y[7]                                                       # w7 flips: its neighbours change
    df = neighbour_changes(words, x, words, y, topn=5)
    assert df["word"][0] == "w7" and df["jaccard"][0] < 1.0


def test_neighbour_changes_nothing_shared_and_errors():
    a_w, a_x = _vocab(5, 3, seed=0, prefix="a")
    b_w, b_x = _vocab(5, 3, seed=0, prefix="b")
    df = neighbour_changes(a_w, a_x, b_w, b_x)
    assert df.height == 0 and df.columns == ["word", "jaccard", "before", "after"]
    with pytest.raises(ReplearnInputError, match="one word per row"):
        neighbour_changes(a_w[:4], a_x, b_w, b_x)
    with pytest.raises(ReplearnInputError, match="twice"):
        neighbour_changes(a_w, a_x, ["b0"] * 5, b_x)
    with pytest.raises(ReplearnInputError, match="max_words"):
        neighbour_changes(a_w, a_x, b_w, b_x, max_words=-1)


# ---------------------------------------------------------- new_word_neighbours
def test_new_word_neighbours_most_frequent_first():
    new_w, new_x = _vocab(12, 5, seed=7)
    old = [w for w in new_w if w not in {"w2", "w5", "w9", "w11"}] + ["gone"]
    counts = np.array([100, 90, 30, 80, 70, 50, 60, 40, 35, 50, 20, 50])
    df = new_word_neighbours(old, new_w, counts, new_x, topn=3, limit=3)
    assert df.columns == ["word", "count", "neighbours"]
    assert df["word"].to_list() == ["w5", "w9", "w11"]                # 50, 50, 50 (ties in vocab order); w2=30 cut
    assert df["count"].to_list() == [50, 50, 50]
    for row in df.iter_rows(named=True):
        assert row["neighbours"] == [new_w[j] for j in _ref_nearest(new_x, new_w.index(row["word"]), 3)]
    assert new_word_neighbours(old, new_w, counts, new_x, limit=10)["word"].to_list() == ["w5", "w9", "w11", "w2"]
    assert new_word_neighbours(new_w, new_w, counts, new_x).height == 0
    with pytest.raises(ReplearnInputError, match="new_counts"):
        new_word_neighbours(old, new_w, counts[:-1], new_x)
    with pytest.raises(ReplearnInputError, match="negative"):
        new_word_neighbours(old, new_w, -counts, new_x)


# ------------------------------------------------------------------------- OOV
def test_oov_rate_matches_a_manual_count():
    known = ["the", "cat", "sat"]
    tc = pl.DataFrame({"token": ["the", "cat", "dog", "sat", "mat", "dog"], "count": [10, 3, 2, 4, 1, 5]})
    got = oov_rate(known, tc)
    total = 10 + 3 + 2 + 4 + 1 + 5
    oov_tokens = 2 + 1 + 5                                              # dog (twice listed), mat
    assert got == {
        "oov_token_rate": pytest.approx(oov_tokens / total),
        "oov_type_rate": pytest.approx(2 / 5),                         # dog, mat of the, cat, dog, sat, mat
        "oov_tokens": oov_tokens,
        "tokens": total,
        "types": 5,
        "oov_types": 2,
    }
    assert oov_rate(["the", "cat", "dog", "sat", "mat"], tc)["oov_token_rate"] == 0.0
    assert oov_rate([], tc)["oov_token_rate"] == 1.0


def test_oov_rate_errors():
    with pytest.raises(ValueError, match="empty"):
        oov_rate(["a"], pl.DataFrame(schema={"token": pl.String, "count": pl.Int64}))
    with pytest.raises(ValueError, match="count"):
        oov_rate(["a"], pl.DataFrame({"token": ["a"]}))
    with pytest.raises(ValueError, match="add up to 0"):
        oov_rate(["a"], pl.DataFrame({"token": ["a"], "count": [0]}))


# ---------------------------------------------------------------------- deltas
def test_metric_deltas():
    df = metric_deltas({"b": 0.5, "a": 0.25, "only_before": 1.0}, {"b": 0.75, "a": 0.125, "c": 2.0})
    assert df.columns == ["metric", "before", "after", "delta"]
    assert df.rows() == [("a", 0.25, 0.125, -0.125), ("b", 0.5, 0.75, 0.25), ("c", None, 2.0, None)]
    none = metric_deltas(None, {"z": 1.0, "y": 2.0})
    assert none["metric"].to_list() == ["y", "z"] and none["before"].null_count() == 2
    assert none["delta"].null_count() == 2


# ---------------------------------------------------------------------- report
@pytest.fixture
def report() -> WhatChanged:
    old_w, old_x = _vocab(30, 6, seed=8)
    new_w, new_x = _vocab(34, 8, seed=9)
    new_w = [f"w{i}" for i in range(2, 30)] + ["zebra", "quokka", "w0", "okapi", "w1", "ibex"]
    counts = np.arange(len(new_w), 0, -1) * 10
    return build_what_changed(
        champion="replearn-word2vec v1", old_words=old_w, old_vectors=old_x,
        new_words=new_w, new_counts=counts, new_vectors=new_x,
        before_metrics={"analogy_score": 0.5, "similarity_spearman": 0.4},
        after_metrics={"analogy_score": 0.5123, "similarity_spearman": 0.39},
        topn=10, new_limit=3,
    )


def test_build_and_markdown(report):
    assert report.n_new_words_total == 4 and report.new_words["word"].to_list() == ["zebra", "quokka", "okapi"]
    assert report.neighbour_changes.height == 30
    # default OOV data: the new vocabulary with its counts
    counts = dict(zip(["zebra", "quokka", "okapi", "ibex"], [60, 50, 30, 10]))
    assert report.oov["oov_tokens"] == sum(counts.values()) and report.oov["oov_types"] == 4
    md = report.to_markdown(limit=5)
    assert md.startswith("# What changed: new model vs replearn-word2vec v1")
    assert f"{100 * report.oov['oov_token_rate']:.2f}%" in md
    assert "| zebra | 60 |" in md and "quokka" in md and "| ibex |" not in md   # only the 3 kept new words
    first = report.neighbour_changes.row(0, named=True)
    assert f"| {first['word']} | {first['jaccard']:.2f} | {', '.join(first['before'][:5])} |" in md
    assert ", ".join(first["before"][:6]) not in md                     # first 5 neighbours only
    assert "+0.0123" in md and "-0.0100" in md
    assert f"{report.mean_jaccard:.3f}" in md


def test_markdown_escapes_and_no_champion():
    r = WhatChanged(
        champion=None,
        new_words=pl.DataFrame({"word": ["a|b"], "count": [3], "neighbours": [["x_y"]]}),
        neighbour_changes=neighbour_changes(["p", "q"], np.eye(2), ["p", "q"], np.eye(2)),
        oov={"oov_token_rate": 0.5, "oov_type_rate": 0.25, "oov_tokens": 1, "tokens": 2, "types": 4, "oov_types": 1},
        deltas=metric_deltas(None, {"m": 1.0}),
        n_new_words_total=1,
    )
    md = r.to_markdown()
    assert "vs no champion" in md and "a\\|b" in md and "x\\_y" in md
    assert "50.00%" in md and "25.00%" in md
    assert "| m | – | 1.0000 | – |" in md


def test_summary_metrics_keys(report):
    s = report.summary_metrics()
    assert set(s) == {"changed.oov_token_rate", "changed.oov_type_rate", "changed.new_words",
                      "changed.mean_jaccard_top10", "changed.words_compared"}
    assert s["changed.new_words"] == 4 and s["changed.words_compared"] == 30
    assert s["changed.mean_jaccard_top10"] == pytest.approx(report.neighbour_changes["jaccard"].mean())
    assert all(isinstance(v, float) for v in s.values())


# ----------------------------------------------------------------------- figure
def test_what_changed_figure(report, tmp_path):
    from matplotlib.figure import Figure

    from replearn.infra.plots import what_changed_figure

    fig = what_changed_figure(report)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    left, right = fig.axes
    assert left.get_xlabel() == "top-10 neighbours shared with the champion (Jaccard)"
    assert left.get_ylabel() == "words"
    assert left.get_legend() is not None and "mean" in left.get_legend().get_texts()[0].get_text()
    assert "replearn-word2vec v1" in fig._suptitle.get_text()
    labels = {t.get_text().strip() for t in right.texts}
    assert {"+0.0123", "-0.0100"} <= labels
    assert len(right.patches) == 2
    colours = {p.get_width() > 0: p.get_facecolor()[:3] for p in right.patches}
    assert colours[True][1] > colours[True][0] and colours[False][0] > colours[False][1]   # green up, red down
    out = tmp_path / "changed.png"
    fig.savefig(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    nochamp = WhatChanged(None, report.new_words, report.neighbour_changes, report.oov,
                          metric_deltas(None, {"analogy_score": 0.5}), 4)
    fig2 = what_changed_figure(nochamp)
    assert len(fig2.axes) == 2 and "no champion to compare" in [t.get_text() for t in fig2.axes[1].texts]
    fig2.savefig(tmp_path / "none.png")
