"""Pruning senses whose prior p(z|x) fell below a threshold (AdaGram's "senses with non-trivial prior")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replearn.lib.multisense.senses import sense_offsets


@dataclass(frozen=True)
class PrunedSense:
    """One removed sense.

    Attributes:
        word: word id (row of the vocabulary). sense: the sense's index within the
            word at the time it was pruned (0-based). prior: its prior p(z|x) then, in [0, threshold).
        epoch: the epoch (1-based) after which it was pruned.
    """

    word: int
    sense: int
    prior: float
    epoch: int


def prune_senses(prior: np.ndarray, sense_start: np.ndarray, threshold: float, epoch: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, list[PrunedSense]]:
    """Which sense rows to keep: those with prior >= threshold, and always each word's most probable one.

    Args:
        prior: float (S,) p(z|x) per sense row. sense_start: int64 (V + 1,) row offsets.
        threshold: in [0, 1); 0 keeps everything. epoch: recorded in the report.

    Returns:
        (keep, new_start, pruned): keep is int64 (S',) row indices to keep, in order;
        new_start the int64 (V + 1,) offsets after removal; pruned the removed senses.
    """
    prior = np.asarray(prior, dtype=np.float64)
    K = np.diff(sense_start)
    mask = prior >= threshold
    owner = np.repeat(np.arange(len(K)), K)
    # keep the argmax of every word even when all its senses fall below the threshold
    best = sense_start[:-1] + np.array([int(np.argmax(prior[a:b])) for a, b in zip(sense_start[:-1], sense_start[1:])],
                                       dtype=np.int64) if len(K) else np.zeros(0, dtype=np.int64)
    mask[best] = True
    keep = np.flatnonzero(mask).astype(np.int64)
    pruned = [PrunedSense(int(owner[s]), int(s - sense_start[owner[s]]), float(prior[s]), int(epoch))
              for s in np.flatnonzero(~mask)]
    new_k = np.bincount(owner[keep], minlength=len(K))
    return keep, sense_offsets(new_k), pruned
