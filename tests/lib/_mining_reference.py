"""The index miner of lib/metric/index_mining.py written as plain loops over all pairs: the reference the miner and the
trainer's refreshes are checked against on tiny data."""

from __future__ import annotations

import math

import numpy as np


def plain_distance(a: np.ndarray, b: np.ndarray, kind: str) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    if kind == "euclidean":
        return math.sqrt(sum((a - b) ** 2))
    if kind == "squared_euclidean":
        return float(sum((a - b) ** 2))
    if kind == "cosine_distance":
        return 1.0 - float(a @ b) / (math.sqrt(a @ a) * math.sqrt(b @ b))
    return -float(a @ b)


def brute_force(x, y, negatives, kind, seed):
    """The documented miner as plain loops: every other item sorted by distance, same-label ones skipped (and
    counted until the last negative kept), the positive the floor(u * (n_c - 1))-th other member of the class."""
    n = len(x)
    u = np.random.default_rng(seed).random(n)
    rows, guard = [], 0
    for i in range(n):
        same = [j for j in range(n) if j != i and y[j] == y[i]]
        if not same:
            continue
        p = same[int(math.floor(u[i] * len(same)))]
        ranked = sorted((plain_distance(x[i], x[j], kind), j) for j in range(n) if j != i)
        kept = skipped = skipped_before_last = 0
        for r, (dj, j) in enumerate(ranked, start=1):
            if y[j] == y[i]:
                skipped += 1
                continue
            rows.append((i, p, j, plain_distance(x[i], x[p], kind), dj, r))
            kept, skipped_before_last = kept + 1, skipped
            if kept == negatives:
                break
        guard += skipped_before_last
    return rows, guard


def brute_force_pairs(q, c, yq, yc, positive, negatives, kind):
    """:func:`mine_pair_negatives` as plain loops: query i's positive is candidate positive[i]; every candidate
    sorted by distance to query i (ties by lower row), those of its label skipped (and counted until the last
    negative kept)."""
    rows, guard = [], 0
    for i in range(len(q)):
        ranked = sorted((plain_distance(q[i], c[j], kind), j) for j in range(len(c)))
        kept = skipped = skipped_before_last = 0
        for r, (dj, j) in enumerate(ranked, start=1):
            if yc[j] == yq[i]:
                skipped += 1
                continue
            rows.append((i, positive[i], j, plain_distance(q[i], c[positive[i]], kind), dj, r))
            kept, skipped_before_last = kept + 1, skipped
            if kept == negatives:
                break
        guard += skipped_before_last
    return rows, guard
