"""Word map: each probe's true top-k cosine neighbours (checked with a plain loop), senses chosen by prior, missing
probes skipped, a labelled PNG written atomically, labels placed without overlaps."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.word_map import Neighbourhoods, select_neighbourhoods, word_map

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(7)
    keys = [f"w{i}" for i in range(200)]
    return keys, rng.standard_normal((200, 12)).astype(np.float32) * rng.uniform(0.5, 2.0, (200, 1))


def loop_topk(keys, x, probe, k, skip=()):
    """Top-k rows by cosine with a plain Python loop, ties by lower row, the probe's own rows excluded."""
    q = x[keys.index(probe)]
    sims = []
    for i, v in enumerate(x):
        if keys[i] == probe or i in skip:
            continue
        sims.append((-float(np.dot(q, v) / (np.linalg.norm(q) * np.linalg.norm(v))), i))
    return [i for _, i in sorted(sims)[:k]]


def test_each_probe_gets_its_true_top_k_neighbours(table):
    keys, x = table
    hoods = select_neighbourhoods(keys, x, ["w3", "w50", "w199"], k=8)
    assert [g.name for g in hoods.groups] == ["w3", "w50", "w199"] and hoods.skipped == ()
    for g in hoods.groups:
        assert keys[g.centre] == g.name
        assert g.rows.tolist() == loop_topk(keys, x, g.name, 8)
        assert np.all(np.diff(g.similarity) <= 1e-6) and np.all(np.abs(g.similarity) <= 1 + 1e-6)


def test_missing_probes_are_skipped_and_none_found_gives_no_groups(table, tmp_path):
    keys, x = table
    hoods = select_neighbourhoods(keys, x, ["nope", "w5", "w5", "zilch"], k=3)
    assert [g.name for g in hoods.groups] == ["w5"] and hoods.skipped == ("nope", "zilch")
    empty = select_neighbourhoods(keys, x, ["nope", "zilch"])
    assert empty.groups == () and empty.skipped == ("nope", "zilch")
    with pytest.raises(EmbeddingsError, match="none of the probes is in the table"):
        word_map(x, keys, empty, tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


def test_max_groups_keeps_the_first_probes(table):
    keys, x = table
    hoods = select_neighbourhoods(keys, x, ["w1", "w2", "w3"], k=2, max_groups=2)
    assert [g.name for g in hoods.groups] == ["w1", "w2"] and hoods.dropped == ("w3",)


def test_senses_chosen_by_prior_and_own_senses_excluded():
    rng = np.random.default_rng(1)
    keys = ["bank", "bank", "bank", "river", "river", "money", "tree"]
    senses = [0, 1, 2, 0, 1, 0, 0]
    x = rng.standard_normal((7, 4)).astype(np.float32)
    x[1] = x[0] + 0.01                                                           # bank#1 right next to bank#0
    priors = {"bank#0": 0.6, "bank#1": 0.35, "bank#2": 0.05, "river#0": 0.5, "river#1": 0.5}
    hoods = select_neighbourhoods(keys, x, ["bank"], k=3, senses=senses, priors=priors)
    assert [g.name for g in hoods.groups] == ["bank#0", "bank#1"]             # bank#2 below min_prior 0.1
    for g in hoods.groups:
        got = [keys[r] for r in g.rows]
        assert "bank" not in got and len(got) == len(set(got)) == 3           # other words, each once


def test_word_map_writes_a_png_and_labels_do_not_overlap(table, tmp_path):
    keys, x = table
    hoods = select_neighbourhoods(keys, x, ["w0", "w10", "w20"], k=5)
    p = word_map(x, keys, hoods, tmp_path / "maps" / "words.png", background=40, method="pca")
    assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000
    assert [q.name for q in p.parent.iterdir()] == ["words.png"]              # no temporary left behind
    assert word_map(x, keys, hoods, tmp_path / "tsne.png").read_bytes()[:8] == PNG        # t-SNE, no background


def test_place_labels_separates_crowded_labels():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from replearn.lib.store.label_placement import place_labels

    fig = Figure(figsize=(6, 6))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    xy = np.array([[5.0, 5.0], [5.1, 5.0], [5.0, 5.1], [4.9, 5.0], [5.0, 4.9]])
    anns = place_labels(ax, xy, ["alpha", "beta", "gamma", "delta", "epsilon"], emphasis=[True] + [False] * 4)
    r = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(a, r) for a in anns]                    # the texts, not the leaders
    assert len(anns) == 5 and anns[0].get_fontweight() == "bold"
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(5) for j in range(i))


def test_bad_inputs(table):
    keys, x = table
    with pytest.raises(EmbeddingsError, match="one entry per vector"):
        select_neighbourhoods(keys[:-1], x, ["w1"])
    with pytest.raises(EmbeddingsError, match="k and max_groups"):
        select_neighbourhoods(keys, x, ["w1"], k=0)
    with pytest.raises(EmbeddingsError, match="one entry per vector"):
        word_map(x, keys[:3], select_neighbourhoods(keys, x, ["w1"]), "unused.png")
    assert isinstance(select_neighbourhoods(keys, x, []), Neighbourhoods)
