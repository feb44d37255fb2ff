"""Warm start: continue skip-gram from a trained model on new text, with a vocabulary that has grown.

The new vocabulary is built from the merged counts (the old model's counts
plus the new text's; tasks/text.py ``vocabulary``), so it is re-sorted by
count and may hold words the old model never saw. :func:`grow_matrices`
carries each old word's rows over to its new id and initialises the new words
as word2vec.c's ``InitNet`` initialises every word (Mikolov et al. 2013, the C
release; gensim's ``build_vocab(update=True)`` + ``update_weights`` does the
same): input vectors uniform in ``[-0.5/D, 0.5/D)``, context vectors zero.
The noise table (unigram^0.75) and the subsampling probabilities are then
computed from the merged counts by the trainer as for any vocabulary, and the
learning rate restarts at the configured ``alpha``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from replearn.lib.errors import ReplearnInputError
from replearn.lib.word2vec.trainer import init_matrices

__all__ = ["grow_matrices"]


def grow_matrices(words: Sequence[str], old_words: Sequence[str], old_input: np.ndarray, old_context: np.ndarray,
                  seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The starting matrices of a warm start over the vocabulary ``words``.

    Args:
        words: the new vocabulary (V words).
        old_words: the old model's vocabulary (V0 words), the rows of ``old_input`` / ``old_context``.
        old_input, old_context: float (V0, D) input (V) and context (U) matrices of the old model.
        seed: seeds the new words' random rows (word2vec.c's initialisation, :func:`init_matrices`).

    Returns:
        ``(syn0, syn1, known)``: float32 (V, D) input and context matrices, C-contiguous and writable, and bool (V,):
        which of ``words`` kept an old row (the others are new words: uniform in [-0.5/D, 0.5/D) and zero).

    Raises:
        ReplearnInputError: the old matrices do not match ``old_words`` or each other (shape), or are not finite.
    """
    V0 = len(old_words)
    if old_input.ndim != 2 or old_input.shape[0] != V0 or old_context.shape != old_input.shape:
        raise ReplearnInputError(f"the model to continue from has input {old_input.shape} and context "
                                 f"{old_context.shape} matrices for {V0} words: they should be ({V0}, D) each")
    if not (np.isfinite(old_input).all() and np.isfinite(old_context).all()):
        raise ReplearnInputError("the model to continue from has NaN or infinite vectors: continue from another "
                                 "version, or train from scratch (leave --init-from out)")
    dim = old_input.shape[1]
    syn0, syn1 = init_matrices(len(words), dim, seed)
    where = {w: i for i, w in enumerate(old_words)}
    new_rows = np.array([i for i, w in enumerate(words) if w in where], dtype=np.int64)
    old_rows = np.array([where[words[i]] for i in new_rows], dtype=np.int64)
    known = np.zeros(len(words), dtype=bool)
    if len(new_rows):
        syn0[new_rows] = old_input[old_rows]
        syn1[new_rows] = old_context[old_rows]
        known[new_rows] = True
    return syn0, syn1, known
