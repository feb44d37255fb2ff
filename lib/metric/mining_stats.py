"""Statistics a person reads about mined triplets: margin violations, a hardness histogram, the guard's removals.

For each mined triplet (:class:`~replearn.lib.metric.index_mining.MinedTriplets`)
the *slack* is ``d_an - d_ap``: how much farther the negative is than the
positive, in the loss's distance. The triplet hinge loss
``max(0, d_ap - d_an + margin)`` (Schroff et al. 2015, "FaceNet", eq. 1) is
positive exactly when ``slack < margin``: the triplet *violates the margin*
and gives a gradient. ``slack < 0`` (the negative nearer than the positive) is
an *order violation*: FaceNet's "hard" negatives, which early in training can
also be label noise or a collapse risk (FaceNet sec. 3.2 prefers semi-hard ones,
``0 < slack < margin``).

:func:`mining_stats` returns those shares, the slack histogram (the picture
``infra/plots.py`` draws), the counts of the false-negative guard and of the
anchors that got no triplet, and mean distances and ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.index_mining import MinedTriplets

__all__ = ["MiningStats", "mining_stats"]


@dataclass(frozen=True)
class MiningStats:
    """What :func:`mining_stats` measured on one mining pass.

    Attributes:
        triplets: T, rows mined. anchors: N, items mined over.
        margin: the margin the violations are counted against (>= 0).
        margin_violations: share in [0, 1] of triplets with ``d_an < d_ap + margin`` (0 when T = 0).
        order_violations: share in [0, 1] of triplets with ``d_an < d_ap`` (0 when T = 0).
        semi_hard: share in [0, 1] with ``d_ap <= d_an < d_ap + margin`` (violating the margin, not the order).
        guard_removed: same-label items the false-negative guard removed: those ranked ahead of each anchor's
            last kept negative, summed over anchors (>= 0).
        guard_removed_per_anchor: ``guard_removed`` per anchor with a triplet (>= 0; 0 when there is none).
        anchors_without_positive, anchors_without_negative: anchors that got no triplet, and why.
        fallback_anchors: anchors whose negatives lay beyond their ``k`` nearest items (all of their class).
        mean_d_ap, mean_d_an: mean distances over the triplets (NaN when T = 0).
        mean_negative_rank: mean 1-based rank of the negatives among the candidates (NaN when T = 0).
        hist_edges: float64 (B + 1,) edges of the slack histogram, ascending, equally spaced, one of them at the
            margin (so a bar never straddles it); B is ``bins`` or ``bins + 1``.
        hist_counts: int64 (B,) triplets per bin (``numpy.histogram``: the last bin closed), summing to T.
    """

    triplets: int
    anchors: int
    margin: float
    margin_violations: float
    order_violations: float
    semi_hard: float
    guard_removed: int
    guard_removed_per_anchor: float
    anchors_without_positive: int
    anchors_without_negative: int
    fallback_anchors: int
    mean_d_ap: float
    mean_d_an: float
    mean_negative_rank: float
    hist_edges: np.ndarray
    hist_counts: np.ndarray

    def metrics(self) -> dict[str, float]:
        """The scalar figures by name (``margin_violations``, ``guard_removed``, ...), for MLflow; NaNs dropped."""
        names = ("triplets", "anchors", "margin_violations", "order_violations", "semi_hard", "guard_removed",
                 "guard_removed_per_anchor", "anchors_without_positive", "anchors_without_negative",
                 "fallback_anchors", "mean_d_ap",
                 "mean_d_an", "mean_negative_rank")
        values = {n: float(getattr(self, n)) for n in names}
        return {n: v for n, v in values.items() if np.isfinite(v)}


def mining_stats(mined: MinedTriplets, margin: float, bins: int = 30) -> MiningStats:
    """Shares of margin / order violations, the slack histogram and the guard's counts of ``mined`` (module docstring).

    Args:
        mined: the triplets of :func:`~replearn.lib.metric.index_mining.mine_triplets`.
        margin: the triplet margin m >= 0 (the config's ``margin``).
        bins: histogram bins >= 1, of equal width ``(hi - lo) / bins`` over ``[lo, hi]``, the slacks' range
            widened to hold 0 and the margin, shifted so that an edge falls on the margin (one more bin then).

    Raises:
        ReplearnInputError: ``margin`` < 0 or not finite, ``bins`` < 1.
    """
    if not np.isfinite(margin) or margin < 0:
        raise ReplearnInputError(f"margin must be a finite number >= 0, got {margin!r}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ReplearnInputError(f"bins must be an integer >= 1, got {bins!r}")
    T = len(mined)
    d_ap = mined.d_ap.astype(np.float64)
    d_an = mined.d_an.astype(np.float64)
    slack = d_an - d_ap                                                          # (T,)
    lo = min(0.0, float(slack.min())) if T else 0.0
    hi = max(float(margin), float(slack.max())) if T else max(float(margin), 1.0)
    hi = hi if hi > lo else lo + 1.0
    width = (hi - lo) / int(bins)
    start = margin - np.ceil((margin - lo) / width - 1e-9) * width               # an edge at the margin
    edges = start + width * np.arange(int(np.ceil((hi - start) / width - 1e-9)) + 1)
    edges[0], edges[-1] = min(edges[0], lo), max(edges[-1], hi)                  # round-off never drops a slack
    counts, edges = np.histogram(slack, bins=edges)

    def share(mask: np.ndarray) -> float:
        return float(mask.mean()) if T else 0.0

    def mean(x: np.ndarray) -> float:
        return float(x.mean()) if T else float("nan")

    return MiningStats(
        triplets=T, anchors=mined.n, margin=float(margin), margin_violations=share(slack < margin),
        order_violations=share(slack < 0), semi_hard=share((slack >= 0) & (slack < margin)),
        guard_removed=mined.guard_removed,
        guard_removed_per_anchor=mined.guard_removed / max(1, len(np.unique(mined.anchor))),
        anchors_without_positive=mined.anchors_without_positive,
        anchors_without_negative=mined.anchors_without_negative, fallback_anchors=mined.fallback_anchors,
        mean_d_ap=mean(d_ap), mean_d_an=mean(d_an),
        mean_negative_rank=mean(mined.negative_rank.astype(np.float64)), hist_edges=edges,
        hist_counts=counts.astype(np.int64))
