"""Nearest-neighbour tables: a quick qualitative look at word vectors.

For each probe word, its ``topn`` nearest words by cosine similarity (the
``distance`` tool of the word2vec C release, Mikolov et al. 2013; gensim's
``most_similar(positive=[probe])``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from replearn.lib.vectors import KeyedVectors

__all__ = ["NeighbourTable", "nearest_neighbours", "default_probes", "PROBE_WORDS"]

logger = logging.getLogger(__name__)

# Common words with well-known neighbours, tried in this order.
PROBE_WORDS: tuple[str, ...] = (
    "king", "woman", "city", "war", "money", "house", "water", "good",
    "day", "man", "france", "music", "computer", "school", "book", "time",
    "world", "game", "car", "science", "year", "people", "life", "food",
)  # fmt: skip

# Skipped when filling up with frequent vocabulary words: function words make dull probes.
_STOPWORDS = frozenset(
    "the of and to in a is that for it as was with be by on not he i this are or his from at which but "
    "have an they you were her she there been one all we their has would when who will more no if out "
    "so said what up its about into than them can only other new some could time these two may then do "
    "first any my now such like our over man me even most made after also did many before must through "
    "back years where much your way well down should because each just those people how too little us "
    "state good very make world still own see men work long get here between both life being under never "
    "day same another know while last might great old year off come since against go came right used "
    "take three".split()
)


class NeighbourTable(list):
    """A ``list[dict]`` of neighbour rows with the probes that were not in the vocabulary.

    Attributes:
        skipped: probes left out because they are not in the vocabulary, in input order.
    """

    def __init__(self, rows=(), skipped: Sequence[str] = ()) -> None:
        super().__init__(rows)
        self.skipped: list[str] = list(skipped)


def nearest_neighbours(kv: KeyedVectors, probes: Sequence[str], topn: int = 5) -> NeighbourTable:
    """The ``topn`` nearest words of each probe, as table rows.

    Args:
        kv: the vectors.
        probes: words to look up; those not in ``kv`` are skipped (listed in
            ``result.skipped`` and logged at WARNING), never an error.
        topn: neighbours per probe (>= 1); fewer when the vocabulary is smaller.

    Returns:
        NeighbourTable (a ``list[dict]``): rows
        ``{"probe": str, "rank": int (1 = nearest), "neighbour": str,
        "similarity": float in [-1, 1]}``, probes in input order, the probe
        itself never among its neighbours. Its ``skipped`` attribute lists the
        out-of-vocabulary probes.
    """
    present = [p for p in dict.fromkeys(probes) if p in kv]
    skipped = [p for p in dict.fromkeys(probes) if p not in kv]
    if skipped:
        logger.warning("nearest_neighbours: %d probe(s) not in vocabulary, skipped: %s", len(skipped), skipped)
    table = NeighbourTable(skipped=skipped)
    for probe, sims in zip(present, kv.most_similar_batch(present, topn=topn)):
        for rank, (word, sim) in enumerate(sims, start=1):
            table.append({"probe": probe, "rank": rank, "neighbour": word, "similarity": float(sim)})
    return table


def default_probes(kv: KeyedVectors, n: int = 6) -> list[str]:
    """Pick ``n`` probe words present in ``kv``, so a neighbour table is never empty.

    Tries ``PROBE_WORDS`` in order (each as written, then Capitalised, then
    UPPER-cased, to suit cased vocabularies), keeping only those among the most
    frequent fifth of the vocabulary (rows are in frequency order, as a
    vocabulary writes them): on a technical corpus ``city`` seen 7 times has
    noise for neighbours. If fewer than ``n`` are found, fills up with the most
    frequent vocabulary words that are alphabetic, at least 3 letters long and
    not function words; then with any words.

    Returns:
        ``min(n, len(kv))`` distinct words of ``kv``.
    """
    n = max(0, min(int(n), len(kv)))
    frequent = max(n, len(kv) // 5)  # a fixed probe word must be among this many most frequent rows
    chosen: list[str] = []
    for w in PROBE_WORDS:
        if len(chosen) >= n:
            break
        for v in (w, w.capitalize(), w.upper()):
            if v in kv and kv.index(v) < frequent and v not in chosen:
                chosen.append(v)
                break
    if len(chosen) < n:
        taken = set(chosen)
        for w in kv.words:
            if len(chosen) >= n:
                break
            if w not in taken and w.isalpha() and len(w) >= 3 and w.lower() not in _STOPWORDS:
                chosen.append(w)
                taken.add(w)
        for w in kv.words:
            if len(chosen) >= n:
                break
            if w not in taken:
                chosen.append(w)
                taken.add(w)
    return chosen
