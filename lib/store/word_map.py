"""A word map a person can read: probe words and their nearest neighbours, named, in 2-D.

Instead of a scatter of the whole vocabulary (lib/store/embedding_map.py), the
map shows a few probe words (or, for multi-sense vectors, their senses) and
each one's ``k`` nearest rows by cosine similarity (the ``distance`` tool of
the word2vec C release, Mikolov et al. 2013), each point labelled with its word
and coloured by the probe it belongs to:

1. :func:`select_neighbourhoods` finds each probe's rows and their exact top-k
   neighbours (:func:`replearn.lib.topk.exact_topk` on unit rows; a word's own
   rows, e.g. its other senses, excluded).
2. :func:`word_map` projects only those rows to 2-D (t-SNE by default, van
   der Maaten & Hinton 2008, seeded; or PCA fitted on them, with an optional
   faint grey background sample of other rows projected onto the same axes)
   and draws them with labels placed greedily where they overlap no other
   label or point
   (:mod:`replearn.lib.store.label_placement`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.atomic import atomic_path
from replearn.lib.store.embedding_map import AXIS_NAMES, METHOD_NAMES, project_2d
from replearn.lib.store.faiss_index import _as_matrix
from replearn.lib.store.label_placement import place_labels
from replearn.lib.topk import exact_topk

_PERPLEXITY = 5.0
"""t-SNE perplexity (about the effective number of neighbours, van der Maaten & Hinton 2008): about half a
group of 1 + k = 9 points; 10 and more pulled similar groups into one corner and left the canvas empty."""

__all__ = ["ProbeGroup", "Neighbourhoods", "select_neighbourhoods", "word_map"]


@dataclass(frozen=True)
class ProbeGroup:
    """One probe (or one sense of it) and its nearest neighbours.

    Attributes:
        name: the probe's display name (``"king"``; ``"bank#1"`` for sense 1 of a multi-sense word).
        centre: table row of the probe (sense).
        rows: ``(k,)`` int64 table rows of its nearest neighbours, nearest first, rows of the
            probe's own word excluded; neighbours repeating a word already listed (another
            sense of it) are left out.
        similarity: ``(k,)`` float32 cosine similarities of ``rows`` to the centre, in [-1, 1].
    """

    name: str
    centre: int
    rows: np.ndarray
    similarity: np.ndarray


@dataclass(frozen=True)
class Neighbourhoods:
    """What :func:`select_neighbourhoods` found.

    Attributes:
        groups: one :class:`ProbeGroup` per probe (sense) found, probes in input order.
        skipped: probes not in the table, in input order.
        dropped: probes found but left out because ``max_groups`` groups were already taken.
    """

    groups: tuple[ProbeGroup, ...]
    skipped: tuple[str, ...]
    dropped: tuple[str, ...] = ()


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32 ``(N, D)``."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _probe_rows(probes: Sequence[str], by_key: dict[str, list[int]], senses, priors: Mapping[str, float],
                min_prior: float) -> tuple[list[tuple[str, str, int]], list[str]]:
    """``[(word, display name, row)]`` of the probes' rows (senses with prior >= ``min_prior``), and the missing."""
    found, skipped = [], []
    for word in dict.fromkeys(probes):
        rows = by_key.get(word)
        if not rows:
            skipped.append(word)
            continue
        if senses is None or len(rows) == 1:
            found.append((word, word, rows[0]))
            continue
        kept = [r for r in rows if priors.get(f"{word}#{int(senses[r])}", 1.0) >= min_prior] or rows[:1]
        found.extend((word, f"{word}#{int(senses[r])}", r) for r in kept)
    return found, skipped


def select_neighbourhoods(keys: Sequence[str], vectors: np.ndarray, probes: Sequence[str], *, k: int = 8,
                          senses: Sequence[int] | np.ndarray | None = None, priors: Mapping[str, float] | None = None,
                          min_prior: float = 0.1, max_groups: int = 10) -> Neighbourhoods:
    """Each probe's row(s) and their ``k`` nearest rows by cosine similarity.

    Args:
        keys: ``N`` row keys (words; a multi-sense word has one row per sense).
        vectors: ``(N, D)`` finite vectors (any norm; compared as unit rows).
        probes: words to show; those not among ``keys`` are skipped (``result.skipped``), never an error.
        k: neighbours per probe (sense), >= 1; fewer when the table is smaller.
        senses: ``N`` sense indices (multi-sense tables), or None.
        priors: ``{"word#sense": p(sense | word)}`` of multi-sense words; a sense with a prior below
            ``min_prior`` (in [0, 1]) is not shown (the word's first sense is, if none passes).
        max_groups: most groups (probes or senses) kept, >= 1; the probes beyond go to ``result.dropped``.

    Returns:
        :class:`Neighbourhoods`; ``groups`` is empty when no probe is in the table.

    Raises:
        EmbeddingsError: ``keys`` / ``senses`` not one per vector, ``k < 1`` or ``max_groups < 1``, and
            non-finite or non-2-D vectors.
    """
    x = _as_matrix(vectors, "vectors")
    keys = [str(w) for w in keys]
    if len(keys) != len(x) or (senses is not None and len(senses) != len(x)):
        raise EmbeddingsError(f"keys and senses must have one entry per vector (N={len(x)}), got {len(keys)} keys"
                              + ("" if senses is None else f" and {len(senses)} senses"))
    if k < 1 or max_groups < 1:
        raise EmbeddingsError(f"k and max_groups must be >= 1, got k={k}, max_groups={max_groups}")
    by_key: dict[str, list[int]] = {}
    for i, w in enumerate(keys):
        by_key.setdefault(w, []).append(i)
    found, skipped = _probe_rows(probes, by_key, senses, priors or {}, min_prior)
    dropped = tuple(dict.fromkeys(w for w, _, _ in found[max_groups:]))
    found = found[:max_groups]
    if not found:
        return Neighbourhoods((), tuple(skipped), dropped)
    unit = _unit(x)
    own = [by_key[w] for w, _, _ in found]
    exclude = np.full((len(found), max(map(len, own))), -1, dtype=np.int64)         # (Q, E), -1 padding
    for q, rows in enumerate(own):
        exclude[q, :len(rows)] = rows
    extra = max(map(len, by_key.values())) - 1                                      # other senses of a neighbour
    D, I = exact_topk(unit[[r for _, _, r in found]], unit, k * (extra + 1), "ip", exclude=exclude)
    groups = []
    for (_, name, centre), d, idx in zip(found, D, I):
        seen, rows, sims = set(), [], []
        for s, r in zip(d, idx):
            if r >= 0 and keys[r] not in seen and len(rows) < k:
                seen.add(keys[r])
                rows.append(int(r))
                sims.append(float(s))
        groups.append(ProbeGroup(name, int(centre), np.array(rows, dtype=np.int64), np.array(sims, np.float32)))
    return Neighbourhoods(tuple(groups), tuple(skipped), dropped)


def _layout(hoods: Neighbourhoods, n: int, background: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, group, is_centre)`` of the points drawn: each group's centre and neighbours (a row shown once, in
    its first group), then up to ``background`` other rows sampled with ``seed`` (group ``-1``)."""
    rows, group, centre, taken = [], [], [], set()
    for g, pg in enumerate(hoods.groups):
        for r, c in [(pg.centre, True)] + [(int(r), False) for r in pg.rows]:
            if r not in taken:
                taken.add(r)
                rows.append(r)
                group.append(g)
                centre.append(c)
    rest = np.setdiff1d(np.arange(n), np.array(sorted(taken), dtype=np.int64))
    if background > 0 and len(rest):
        bg = np.sort(np.random.default_rng(seed).choice(rest, size=min(background, len(rest)), replace=False))
        rows.extend(int(r) for r in bg)
        group.extend([-1] * len(bg))
        centre.extend([False] * len(bg))
    return np.array(rows, dtype=np.int64), np.array(group, dtype=np.int64), np.array(centre, dtype=bool)


def _project(u: np.ndarray, shown: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(xy (M, 2), keep (M,) bool)`` of unit rows ``u`` ``(M, D)``.

    PCA is fitted on the ``shown`` rows only (the axes that best spread the probes' groups) and the background
    rows are projected onto it, those outside the shown rows' bounding box dropped (``keep`` False). t-SNE / UMAP
    embed all rows together (t-SNE perplexity :data:`_PERPLEXITY`).
    """
    if method != "pca":
        return project_2d(u, method, seed=seed, perplexity=_PERPLEXITY), np.ones(len(u), dtype=bool)
    from sklearn.decomposition import PCA

    if int(shown.sum()) < 2 or u.shape[1] == 1:
        return project_2d(u, "pca", seed=seed), np.ones(len(u), dtype=bool)
    xy = PCA(n_components=2, random_state=seed).fit(u[shown]).transform(u).astype(np.float32)
    lo, hi = xy[shown].min(axis=0), xy[shown].max(axis=0)
    return xy, shown | np.all((xy >= lo) & (xy <= hi), axis=1)


def word_map(vectors: np.ndarray, names: Sequence[str], hoods: Neighbourhoods, path: Path | str, *,
             method: str = "tsne", background: int = 0, seed: int = 0, title: str | None = None,
             dpi: int = 130) -> Path:
    """Draw the probes and their neighbours of ``hoods``, named, to the PNG ``path`` (atomically); return it.

    Args:
        vectors: the ``(N, D)`` vectors ``hoods`` was selected from.
        names: ``N`` point labels (the words); a probe's own point is labelled with its group name
            (``"bank#1"`` for a sense).
        hoods: :func:`select_neighbourhoods` output with at least one group.
        path: output ``.png``; its parent is created; replaced atomically.
        method: projection of the unit rows: ``"tsne"`` (default; every group its own readable cluster,
            perplexity 5) or ``"umap"`` on all rows together
            (:func:`~replearn.lib.store.embedding_map.project_2d`, seeded); ``"pca"`` fitted on the probes and
            neighbours only (true linear geometry, but weakly trained words crowd near the origin), the
            background projected onto it (those outside the groups' bounding box left out).
        background: other rows drawn as faint grey unlabelled dots for context (sampled with ``seed``), >= 0;
            default none (t-SNE sets them apart in a blob of their own; useful with ``"pca"``).
        seed: background sample and projection seed.
        title: plot title; default says what is shown.
        dpi: PNG resolution; the figure is 11 x 8 inches (1430 x 1040 pixels at the default).

    Raises:
        EmbeddingsError: no group in ``hoods``, ``names`` not one per vector, and as ``project_2d``.
    """
    x = _as_matrix(vectors, "vectors")
    if not hoods.groups:
        raise EmbeddingsError(f"nothing to map: none of the probes is in the table (skipped: {list(hoods.skipped)})")
    if len(names) != len(x):
        raise EmbeddingsError(f"names must have one entry per vector (N={len(x)}), got {len(names)}")
    rows, group, centre = _layout(hoods, len(x), max(0, int(background)), seed)
    xy, keep = _project(_unit(x[rows]), group >= 0, method, seed)
    rows, group, centre, xy = rows[keep], group[keep], centre[keep], xy[keep]
    k = max(len(g.rows) for g in hoods.groups)
    centre_name = {g.centre: g.name for g in hoods.groups}                     # "bank#1" for a sense
    fig = _draw(xy, [centre_name.get(int(r), str(names[r])) for r in rows], group, centre,
                [g.name for g in hoods.groups], method,
                title or f"{len(hoods.groups)} probe words and their {k} nearest neighbours (cosine), "
                f"{METHOD_NAMES.get(method, method)}")
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _draw(xy: np.ndarray, labels: list[str], group: np.ndarray, centre: np.ndarray, names: list[str], method: str,
          title: str):
    """The matplotlib Figure of the map: grey background, coloured groups, placed labels, legend right."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.05, 0.06, 0.75, 0.87))                     # fixed: labels are placed in display space
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    bg = group < 0
    if bg.any():
        ax.scatter(xy[bg, 0], xy[bg, 1], s=6, c="#d0d0d0", linewidths=0, label="other words (sample)")
    for g, name in enumerate(names):
        m = (group == g) & ~centre
        ax.scatter(xy[m, 0], xy[m, 1], s=22, color=cmap(g % cmap.N), linewidths=0, label=f"{name} + neighbours")
        ax.scatter(xy[(group == g) & centre, 0], xy[(group == g) & centre, 1], s=120, marker="*",
                   color=cmap(g % cmap.N), edgecolors="black", linewidths=0.6)
    pad = 0.06 * (xy.max(axis=0) - xy.min(axis=0) + 1e-6)
    ax.set_xlim(xy[:, 0].min() - pad[0], xy[:, 0].max() + pad[0])
    ax.set_ylim(xy[:, 1].min() - pad[1], xy[:, 1].max() + pad[1])
    shown = ~bg
    order = np.argsort(~centre[shown], kind="stable")                    # probes placed first
    idx = np.flatnonzero(shown)[order]
    place_labels(ax, xy[idx], [labels[i] for i in idx],
                 colors=[cmap(int(group[i]) % cmap.N) for i in idx], emphasis=centre[idx])
    axis = AXIS_NAMES.get(method, method)
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=12)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=10, markerscale=1.5)
    return fig
