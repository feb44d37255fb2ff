"""Symmetry breaking by clustering occurrences: the initial senses of a word follow its contexts.

After the skip-gram warm-up every word x has one vector v_x and the context
vectors u are informative. Starting the senses of x at v_x plus random noise
lets EM settle on whatever split of x's occurrences is easiest to reach: on the
books corpus that was a split by book/genre, not by meaning. Instead
(Schütze 1998; Neelakantan et al. 2014 cluster contexts the same way), for
every word with K_x > 1 senses:

1. up to ``max_occurrences`` of its occurrences are drawn (each occurrence kept
   with probability min(1, max_occurrences / count_x), seeded);
2. each occurrence gets two features over its +-width context words y (same
   sentence): the *clustering* feature, by default (``cluster_features=
   "input"``) c = sum_y keep(y) v(y) / |v(y)|, the subsampling-weighted sum of
   the context words' unit *input* vectors (the bag-of-context-embeddings of
   Neelakantan et al. 2014 / Huang et al. 2012), or (``"context"``) the plain
   sum of their *context* vectors u(y); and the *direction* feature
   sum_y u(y). Both are centred by the word's mean and scaled to unit length.
   Measured on 8 books pseudo-word pairs (2-means purity against the true
   word, reference skip-gram vectors): input 0.82, context 0.78, input without
   unit length or weights 0.80;
3. spherical K_x-means (deterministic farthest-point seeding, ``iterations``
   Lloyd steps) splits the clustering features into K_x clusters;
4. sense z starts at v(x, z) = v_x + scale |v_x| d_z, d_z the unit direction of
   cluster z's mean (centred) direction feature: <u(y), v(x, z)> grows for the
   words y typical of cluster z, so the first E-step assigns occurrences like
   cluster z to sense z. The prior starts uniform; EM (marginal likelihood) continues
   from there. A word whose occurrences cannot be split (fewer than 2 K_x drawn,
   or a degenerate cluster) gets the random directions of the "noise" init.

Nothing here knows which word is a pseudo-word: it is applied to every
multi-sense word alike.
"""

from __future__ import annotations

import numpy as np

from replearn.lib.word2vec.corpus import EncodedCorpus


def context_features(corpus: EncodedCorpus, syn1: np.ndarray, keep_prob: np.ndarray | None, select: np.ndarray,
                     max_occurrences: int, width: int, seed: int,
                     chunk_tokens: int = 500_000) -> tuple[np.ndarray, np.ndarray]:
    """Summed context-word rows of sampled occurrences of the words with ``select`` true.

    Args:
        corpus: encoded corpus (ids in [0, V)). syn1: (V, D) the row per context word that is summed (e.g. the
            context vectors u, or several matrices side by side). keep_prob: (V,) w(y) or None (1).
        select: bool (V,) words whose occurrences are wanted. max_occurrences: expected draws per word (>= 1).
        width: context words each side (>= 1). seed: of the draws.

    Returns:
        (word int64 (n,), features float32 (n, D)) sorted by word (stable: corpus order within a word).
    """
    V, D = syn1.shape
    counts = np.zeros(V, dtype=np.int64)
    for ids, _ in corpus.iter_chunks(chunk_tokens):
        counts += np.bincount(ids, minlength=V)
    rate = np.where(select, np.minimum(1.0, max_occurrences / np.maximum(counts, 1)), 0.0)
    rng = np.random.default_rng([seed, 7])
    u = np.asarray(syn1, dtype=np.float32)
    if keep_prob is not None:
        u = u * np.asarray(keep_prob, dtype=np.float32)[:, None]
    words, feats = [], []
    off = np.concatenate([np.arange(-width, 0), np.arange(1, width + 1)])
    for ids, bounds in corpus.iter_chunks(chunk_tokens):
        ids = ids.astype(np.int64)
        hit = np.flatnonzero(rng.random(len(ids)) < rate[ids])
        if not len(hit):
            continue
        s = np.searchsorted(bounds, hit, side="right") - 1
        p = hit[:, None] + off[None, :]
        ok = (p >= bounds[s][:, None]) & (p < bounds[s + 1][:, None])
        y = ids[np.clip(p, 0, len(ids) - 1)]
        f = np.zeros((len(hit), D), dtype=np.float32)
        for j in range(len(off)):
            f += np.where(ok[:, j, None], u[y[:, j]], 0.0)
        words.append(ids[hit])
        feats.append(f)
    if not words:
        return np.zeros(0, np.int64), np.zeros((0, D), np.float32)
    w = np.concatenate(words)
    order = np.argsort(w, kind="stable")
    return w[order], np.concatenate(feats)[order]


def spherical_kmeans(x: np.ndarray, k: int, iterations: int = 20) -> np.ndarray:
    """Cluster labels int64 (n,) of the unit rows of x into k clusters (cosine k-means).

    Seeding is deterministic: the first centre is the row most aligned with the
    mean direction, each next one the row least similar to the centres so far.
    """
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    m = x.mean(axis=0)
    centres = [x[int(np.argmax(x @ m))]]
    for _ in range(1, k):
        sim = np.max(np.stack([x @ c for c in centres]), axis=0)
        centres.append(x[int(np.argmin(sim))])
    c = np.stack(centres)
    lab = np.zeros(n, dtype=np.int64)
    for it in range(iterations):
        new = np.argmax(x @ c.T, axis=1)
        if it and np.array_equal(new, lab):
            break
        lab = new
        for z in range(k):
            s = x[lab == z].sum(axis=0)
            nz = np.linalg.norm(s)
            if nz > 0:
                c[z] = s / nz
    return lab


def _unit_centred(f: np.ndarray) -> np.ndarray:
    f = f.astype(np.float64) - f.mean(axis=0)
    nrm = np.linalg.norm(f, axis=1, keepdims=True)
    return np.divide(f, nrm, out=np.zeros_like(f), where=nrm > 0)


def cluster_directions(word_of: np.ndarray, feats: np.ndarray, n_senses: np.ndarray,
                       iterations: int = 20, direction_feats: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Unit directions d_z (K_x, D) per word with K_x > 1 that could be split (module docstring, steps 2-4).

    Args:
        word_of: int (n,) word of each occurrence, sorted. feats: (n, F) clustering features.
        n_senses: (V,) K_x. iterations: Lloyd steps.
        direction_feats: (n, D) features whose cluster means give d_z; None: ``feats`` (then D = F).
    """
    out: dict[int, np.ndarray] = {}
    if not len(word_of):
        return out
    bounds = np.flatnonzero(np.diff(word_of)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(word_of)]])
    for a, b in zip(starts, ends):
        x = int(word_of[a])
        K = int(n_senses[x])
        if K < 2 or b - a < 2 * K:
            continue
        f = _unit_centred(feats[a:b])
        g = f if direction_feats is None else _unit_centred(direction_feats[a:b])
        nonzero = np.linalg.norm(f, axis=1) > 0
        f, g = f[nonzero], g[nonzero]
        if len(f) < 2 * K:
            continue
        lab = spherical_kmeans(f, K, iterations)
        d = np.zeros((K, g.shape[1]))
        for z in range(K):
            if (lab == z).sum() == 0:
                break
            d[z] = g[lab == z].mean(axis=0)
        nd = np.linalg.norm(d, axis=1)
        if (nd <= 0).any():
            continue
        out[x] = d / nd[:, None]
    return out
