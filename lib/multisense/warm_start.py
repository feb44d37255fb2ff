"""Warm start: continue multi-sense training from a trained model on new text, with a vocabulary that has grown.

As for skip-gram (lib/word2vec/warm_start.py), the new vocabulary comes from
the merged counts (tasks/text.py ``vocabulary``), so it is re-sorted by count
and may hold words the old model never saw. :func:`grow_state` builds the
trainer's starting state over it (:class:`.trainer.StartState`):

- an old word keeps, at its new id, its senses as trained (their number after
  pruning, their vectors v(x, z)), its context vector u(x) and its prior
  statistics: the expected sense counts n(x, z) that give back its prior p(z|x);
- a new word starts as a fresh run without warm-up starts every word
  (:func:`.trainer.init_state`): K_x senses by its merged count
  (:func:`.senses.senses_per_word`), each at word2vec.c's initial vector
  (``InitNet``: uniform in [-0.5/D, 0.5/D)) plus the symmetry-breaking noise
  uniform in [-init_noise/D, init_noise/D); u(x) = 0; no counts, so its prior
  starts uniform (AdaGram, Bartunov et al. 2016, starts every word's sense
  statistics at zero too).

The trainer adds the old counts to its own in every prior (stepwise EM over the
merged data), recomputes the noise table and subsampling from the merged
counts as for any vocabulary, skips the warm-up, and restarts the learning rate
at ``alpha``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from replearn.lib.errors import ReplearnInputError
from replearn.lib.multisense.config import MultiSenseConfig
from replearn.lib.multisense.model import MultiSenseVectors
from replearn.lib.multisense.senses import sense_offsets, sense_owner
from replearn.lib.multisense.trainer import StartState, init_state

__all__ = ["grow_state", "old_sense_counts"]


def old_sense_counts(prior: np.ndarray, sense_start: np.ndarray, occurrences: np.ndarray,
                     smoothing: float) -> np.ndarray:
    """Expected sense counts n(x, z) that give back ``prior`` under the prior's M-step
    (:func:`.objective.prior_from_counts`, p(z|x) = (n(x,z) + beta) / (n(x) + K_x beta)) for words seen
    ``occurrences`` times: n(x, z) = max(0, p(z|x) (n(x) + K_x beta) - beta).

    Args:
        prior: float (S,) p(z|x). sense_start: int64 (V + 1,) offsets.
        occurrences: float (V,) n(x) >= 0, the occurrences the counts stand for. smoothing: beta >= 0.

    Returns:
        float64 (S,) >= 0 (exact where no value was clipped at 0).
    """
    owner = sense_owner(sense_start)
    k = np.diff(sense_start)[owner].astype(np.float64)
    n = np.asarray(occurrences, dtype=np.float64)[owner]
    return np.maximum(0.0, np.asarray(prior, dtype=np.float64) * (n + k * smoothing) - smoothing)


def grow_state(words: Sequence[str], counts: np.ndarray, keep_prob: np.ndarray, old: MultiSenseVectors,
               config: MultiSenseConfig) -> tuple[StartState, int]:
    """The starting state of a warm start over the vocabulary ``words`` (module docstring).

    Args:
        words: the new vocabulary, V words (most frequent first). counts: int (V,) their merged counts.
        keep_prob: float (V,) the subsampling keep probabilities of this run (``vocab.keep_probability`` of the
            merged counts): an old word's n(x) is its old count times its keep probability, the scale of the
            counts the trainer accumulates (kept occurrences, one epoch).
        old: the model to continue from (V0 words, S0 sense rows, D dimensions).
        config: this run's configuration (``dim``, ``max_senses``, ``seed`` and the sense settings of new words).

    Returns:
        ``(state, kept)``: :class:`.trainer.StartState` with sv float32 (S, D), syn1 float32 (V, D), sense_start
        int64 (V + 1,), sense_counts float64 (S,); and how many of ``words`` are old words.

    Raises:
        ReplearnInputError: ``config.dim`` or ``config.max_senses`` differs from the old model's (the message names
            the setting to pass); ``counts`` / ``keep_prob`` do not have one value per word.
    """
    if config.dim != old.dim:
        raise ReplearnInputError(f"the model to continue from has {old.dim}-dimensional vectors; --dim {config.dim} "
                                 f"differs: pass --dim {old.dim}")
    if config.max_senses != old.config.max_senses:
        raise ReplearnInputError(f"the model to continue from has up to {old.config.max_senses} senses per word; "
                                 f"--max-senses {config.max_senses} differs: pass --max-senses "
                                 f"{old.config.max_senses}")
    V = len(words)
    counts = np.asarray(counts, dtype=np.int64)
    keep_prob = np.asarray(keep_prob, dtype=np.float64)
    if counts.shape != (V,) or keep_prob.shape != (V,):
        raise ReplearnInputError(f"{V} words but counts {counts.shape} and keep probabilities {keep_prob.shape}")
    fresh_sv, syn1, fresh_start = init_state(counts, config)
    old_id = np.array([old.index.get(w, -1) for w in words], dtype=np.int64)
    is_old = old_id >= 0
    k = np.diff(fresh_start)
    k[is_old] = np.diff(old.sense_start)[old_id[is_old]]
    start = sense_offsets(k)
    owner = sense_owner(start)
    within = np.arange(len(owner), dtype=np.int64) - start[owner]
    from_old = is_old[owner]
    old_rows = old.sense_start[old_id[owner[from_old]]] + within[from_old]
    sv = np.empty((len(owner), config.dim), dtype=np.float32)
    sv[from_old] = old.vectors[old_rows]
    sv[~from_old] = fresh_sv[fresh_start[owner[~from_old]] + within[~from_old]]
    syn1[is_old] = old.context[old_id[is_old]]
    seen = np.zeros(len(old.words), dtype=np.float64)  # n(x) at the old ids: old count x this run's keep
    seen[old_id[is_old]] = old.counts[old_id[is_old]] * keep_prob[is_old]
    sense_counts = np.zeros(len(owner), dtype=np.float64)
    # the stick-breaking M-step has no closed-form inverse; its counts are close to p(z|x) n(x) (smoothing 0)
    smoothing = old.config.prior_smoothing if old.config.prior == "dirichlet" else 0.0
    sense_counts[from_old] = old_sense_counts(old.prior, old.sense_start, seen, smoothing)[old_rows]
    return StartState(sv, syn1, start, sense_counts), int(is_old.sum())
