"""How many senses each word gets, and where its sense rows live.

Frequent words get more senses than rare ones (AdaGram, Bartunov et al. 2016,
lets the data decide through a Dirichlet-process prior; here the cap grows with
the log of the count and the learned prior plus pruning decides which survive):

    K_x = 1                                                       if count_x < m
    K_x = min(max_senses, 2 + floor(log(count_x / m) / log(b)))    otherwise

with m = ``sense_min_count`` and b = ``sense_count_base``. With m = 200, b = 10:
counts 200..1,999 -> 2 senses, 2,000..19,999 -> 3, 20,000..199,999 -> 4, ...

The sense vectors of all words are stacked in one (S, D) matrix, S = sum_x K_x;
word x owns rows ``sense_start[x] : sense_start[x + 1]``.
"""

from __future__ import annotations

import numpy as np

from replearn.lib.multisense.config import SenseConfigError


def senses_per_word(counts: np.ndarray, max_senses: int, sense_min_count: int, sense_count_base: float) -> np.ndarray:
    """Number of senses K_x of every word (formula in the module docstring).

    Args:
        counts: int (V,) corpus counts, each >= 1.
        max_senses: cap, >= 1. sense_min_count: >= 1. sense_count_base: > 1.

    Returns:
        int32 (V,) values in [1, max_senses].

    Raises:
        SenseConfigError: max_senses < 1, sense_min_count < 1 or sense_count_base <= 1.
    """
    if int(max_senses) < 1:
        raise SenseConfigError(f"max_senses must be >= 1, got {max_senses}")
    if sense_min_count < 1 or sense_count_base <= 1:
        raise SenseConfigError(f"need sense_min_count >= 1 and sense_count_base > 1, got {sense_min_count}, "
                               f"{sense_count_base}")
    c = np.asarray(counts, dtype=np.float64)
    k = np.ones(len(c), dtype=np.int32)
    many = c >= sense_min_count
    k[many] = 2 + np.floor(np.log(c[many] / sense_min_count) / np.log(sense_count_base) + 1e-9).astype(np.int32)
    return np.minimum(k, int(max_senses)).astype(np.int32)


def sense_offsets(n_senses: np.ndarray) -> np.ndarray:
    """int64 (V + 1,) row offsets: word x owns sense rows [out[x], out[x + 1])."""
    return np.concatenate([[0], np.cumsum(np.asarray(n_senses, dtype=np.int64))]).astype(np.int64)


def sense_owner(sense_start: np.ndarray) -> np.ndarray:
    """int64 (S,) the word id owning each sense row."""
    k = np.diff(sense_start)
    return np.repeat(np.arange(len(k), dtype=np.int64), k)
