"""KeyedVectors: the light, read-only query object over trained word vectors.

Like gensim's ``KeyedVectors`` (gensim/models/keyedvectors.py) it is separate
from any trainer: it holds only the words, their vectors and the precomputed
unit vectors, and answers lookups and cosine-similarity queries.

Shapes: ``N`` words, ``D`` dimensions. ``vectors`` is ``(N, D) float32``,
``unit`` is ``(N, D) float32`` with every non-zero row scaled to L2 norm 1
(zero rows stay zero), ``norms`` is ``(N,) float32``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Union

import numpy as np

from replearn.lib.errors import EmbeddingsError, ReplearnInputError, VocabularyError
from replearn.lib.topk import exact_topk

__all__ = ["KeyedVectors", "from_gensim", "unit_rows"]

# A query item for ``most_similar``: a word, a (word, weight) pair, a raw (D,) vector,
# or a (vector, weight) pair -- the same forms gensim 4 accepts.
QueryItem = Union[str, np.ndarray, tuple[Union[str, np.ndarray], float]]


def unit_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalise the rows of ``x``.

    Args:
        x: ``(N, D)`` float array.

    Returns:
        ``(unit, norms)``: ``unit`` is ``(N, D)`` of ``x``'s dtype with each row
        divided by its Euclidean norm (rows of norm 0 stay all-zero, never NaN);
        ``norms`` is ``(N,)``, each >= 0.
    """
    norms = np.linalg.norm(x, axis=1)
    safe = np.where(norms > 0, norms, 1).astype(x.dtype, copy=False)
    unit = x / safe[:, None]
    return unit.astype(x.dtype, copy=False), norms.astype(x.dtype, copy=False)


def _ensure_list(x: Any) -> list:
    """gensim's ``_ensure_list``: None -> [], a single word or vector -> [it], else list(x)."""
    if x is None:
        return []
    if isinstance(x, (str, np.ndarray)):
        return [x]
    return list(x)


class KeyedVectors:
    """Words and their vectors, ordered by frequency (most frequent first).

    Args:
        words: ``N`` distinct words; position ``i`` names row ``i`` of ``vectors``.
            Order matters: ``restrict_vocab=k`` in queries means "the first k words",
            so pass them most frequent first.
        vectors: ``(N, D)`` array, cast to ``float32`` (not copied when it already
            is float32). Must be finite. Kept read-only so the cached unit vectors
            stay valid.

    Attributes:
        words: tuple of the ``N`` words.
        key_to_index: ``dict[str, int]`` word -> row.
        vectors: ``(N, D) float32``, read-only view.
        unit: ``(N, D) float32``, rows L2-normalised once at construction
            (zero rows stay zero).
        norms: ``(N,) float32``, the L2 norm of each row of ``vectors``.

    Raises:
        EmbeddingsError: ``vectors`` is not 2-D or not numeric, ``N == 0`` or
            ``D == 0``, ``len(words) != N``, a word is not a string, a word occurs
            twice, or a row holds NaN/Inf. The message names the first bad row
            index and its word.
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray) -> None:
        try:
            with np.errstate(over="ignore"):  # float64 beyond float32 range -> inf, caught below
                arr = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbeddingsError(
                f"vectors cannot be read as a float32 array ({exc}); pass a numeric (N, D) numpy array"
            ) from exc
        if arr.ndim != 2:
            raise EmbeddingsError(
                f"vectors must be 2-D (N words, D dimensions), got shape {arr.shape}; "
                "reshape to (len(words), dim)"
            )
        n, d = arr.shape
        words = list(words)
        if len(words) != n:
            raise EmbeddingsError(
                f"{len(words)} words but {n} vector rows; pass exactly one word per row"
            )
        if n == 0 or d == 0:
            raise EmbeddingsError(f"vectors are empty (shape {arr.shape}); need at least one word and one dimension")

        key_to_index: dict[str, int] = {}
        for i, w in enumerate(words):
            if not isinstance(w, str):
                raise EmbeddingsError(
                    f"row {i}: word {w!r} is a {type(w).__name__}, not a string; convert keys to str"
                )
            j = key_to_index.setdefault(w, i)
            if j != i:
                raise EmbeddingsError(
                    f"row {i}: duplicate word {w!r} (first seen at row {j}); keep one row per word"
                )

        finite_rows = np.isfinite(arr).all(axis=1)
        if not finite_rows.all():
            i = int(np.argmin(finite_rows))
            raise EmbeddingsError(
                f"row {i} (word {words[i]!r}) holds NaN or Inf; "
                f"{int((~finite_rows).sum())} bad row(s) in all -- check training for divergence"
            )

        view = arr.view()
        view.flags.writeable = False  # only the view: never touch the caller's array flags
        unit, norms = unit_rows(arr)
        unit.flags.writeable = False
        norms.flags.writeable = False

        self.words: tuple[str, ...] = tuple(words)
        self.key_to_index = key_to_index
        self.vectors = view
        self.unit = unit
        self.norms = norms

    # ------------------------------------------------------------------ basics
    @property
    def vector_size(self) -> int:
        """D, the dimension of each vector."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __iter__(self):
        return iter(self.words)

    def __repr__(self) -> str:
        return f"KeyedVectors(n={len(self)}, dim={self.vector_size})"

    def __getitem__(self, word: str) -> np.ndarray:
        """Alias for ``vector(word)``."""
        return self.vector(word)

    def index(self, word: str) -> int:
        """Row of ``word`` in ``vectors`` (0 = most frequent).

        Raises:
            VocabularyError: ``word`` is not in the vocabulary; the message names it
                and suggests case variants that are present.
        """
        try:
            return self.key_to_index[word]
        except (KeyError, TypeError):
            variants = []
            if isinstance(word, str):
                variants = [
                    v for v in dict.fromkeys((word.lower(), word.upper(), word.capitalize()))
                    if v != word and v in self.key_to_index
                ]
            hint = (
                f"did you mean {', '.join(repr(v) for v in variants)}?"
                if variants
                else "check spelling/case, or lower min_count when training"
            )
            raise VocabularyError(f"word {word!r} is not in the vocabulary of {len(self)} words; {hint}") from None

    def vector(self, word: str, norm: bool = False) -> np.ndarray:
        """The ``(D,) float32`` vector of ``word`` (read-only); unit length if ``norm``.

        Raises:
            VocabularyError: unknown word.
        """
        i = self.index(word)
        return self.unit[i] if norm else self.vectors[i]

    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words, in [-1, 1] (0 when either vector is zero).

        Same as gensim's ``KeyedVectors.similarity``: ``dot(unit(v1), unit(v2))``.

        Raises:
            VocabularyError: unknown word.
        """
        return float(np.dot(self.unit[self.index(w1)], self.unit[self.index(w2)]))

    # --------------------------------------------------------------- queries
    def restricted_size(self, restrict_vocab: int | None) -> int:
        """How many leading words ``restrict_vocab`` keeps: ``min(restrict_vocab, N)``; ``None``/0 -> ``N``.

        Raises:
            ReplearnInputError: ``restrict_vocab`` is negative or not an int.
        """
        if restrict_vocab is None or restrict_vocab == 0:  # gensim: `if restrict_vocab:`
            return len(self)
        if isinstance(restrict_vocab, bool) or not isinstance(restrict_vocab, (int, np.integer)) or restrict_vocab < 0:
            raise ReplearnInputError(
                f"restrict_vocab must be a positive int or None, got {restrict_vocab!r}"
            )
        return min(int(restrict_vocab), len(self))

    def query_vector(
        self, positive: QueryItem | Iterable[QueryItem] = (), negative: QueryItem | Iterable[QueryItem] = ()
    ) -> tuple[np.ndarray, list[int]]:
        """The unit query vector of ``most_similar`` and the rows of its input words.

        ``q = unit( sum_i w_i * unit(v_i) / sum_i |w_i| )`` with ``w_i = +1`` for
        positive and ``-1`` for negative items unless given as ``(item, weight)``
        (gensim 4's ``get_mean_vector(pre_normalize=True, post_normalize=True)``).
        Raw ``(D,)`` arrays enter as they are (not normalised), as in gensim.

        Returns:
            ``(q, rows)``: ``q`` is ``(D,) float32`` of norm 1 (or 0);
            ``rows`` are the indices of the word items (to exclude from results).

        Raises:
            ReplearnInputError: no items at all, or an array of the wrong shape.
            VocabularyError: an unknown word.
        """
        positive = _ensure_list(positive)
        negative = _ensure_list(negative)
        items = positive + negative
        if not items:
            raise ReplearnInputError("most_similar needs at least one positive or negative word")
        weights = np.concatenate((np.ones(len(positive)), -np.ones(len(negative)))).astype(np.float32)
        keys = []
        for k, item in enumerate(items):
            if isinstance(item, tuple):
                keys.append(item[0])
                weights[k] = item[1]
            else:
                keys.append(item)

        mean = np.zeros(self.vector_size, dtype=np.float32)
        total = np.float32(0)
        rows: list[int] = []
        for key, w in zip(keys, weights):
            if isinstance(key, np.ndarray):
                if key.shape != (self.vector_size,):
                    raise ReplearnInputError(
                        f"query vector has shape {key.shape}, expected ({self.vector_size},)"
                    )
                vec = key.astype(np.float32, copy=False)
            else:
                i = self.index(key)
                rows.append(i)
                vec = self.unit[i]
            mean += w * vec
            total += abs(w)
        if total > 0:
            mean = mean / total
        n = np.linalg.norm(mean)
        if n > 0:
            mean = (mean / n).astype(np.float32)
        return mean, rows

    def most_similar(
        self,
        positive: QueryItem | Iterable[QueryItem] = (),
        negative: QueryItem | Iterable[QueryItem] = (),
        topn: int | None = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]] | np.ndarray:
        """The ``topn`` words closest in cosine to the weighted mean of the inputs.

        Exactly gensim 4's ``KeyedVectors.most_similar`` (which follows the
        ``distance``/``word-analogy`` tools of Mikolov et al. 2013, word2vec C):

        1. ``q = unit(mean_i w_i * unit(v_i))`` with ``w = +1`` for ``positive``
           and ``-1`` for ``negative`` (see ``query_vector``);
        2. ``sim_j = cos(v_j, q) = unit(v_j) . q`` for ``j < restrict_vocab``;
        3. return the ``topn`` best ``(word, sim)`` pairs, highest first,
           leaving out the input words themselves.

        Args:
            positive: words (or ``(word, weight)``, or ``(D,)`` arrays) pulling towards.
                A single word may be passed bare.
            negative: words pushing away.
            topn: number of results (>= 1); ``< 1`` returns ``[]``; ``None`` returns
                the ``(restrict_vocab,) float32`` array of all similarities
                (input words included), as gensim does.
            restrict_vocab: search only the first ``restrict_vocab`` words
                (the most frequent ones); ``None``/0 searches all.

        Returns:
            ``list[(word, similarity)]`` with similarity in [-1, 1], descending;
            may be shorter than ``topn`` when the vocabulary is small.

        Raises:
            VocabularyError: an input word is not in the vocabulary.
            ReplearnInputError: no input words, or a bad ``restrict_vocab``.
        """
        if topn is not None and topn < 1:
            return []
        q, rows = self.query_vector(positive, negative)
        end = self.restricted_size(restrict_vocab)
        if topn is None:
            return self.unit[:end] @ q
        D, I = exact_topk(q[None, :], self.unit[:end], int(topn), "ip", exclude=[list(rows)])
        return self._pairs(D[0], I[0])

    def _pairs(self, sims: np.ndarray, rows: np.ndarray) -> list[tuple[str, float]]:
        """``[(word, similarity)]`` for one row of :func:`exact_topk` output, its empty (-1) slots dropped."""
        return [(self.words[j], float(d)) for j, d in zip(rows.tolist(), sims.tolist()) if j >= 0]

    def most_similar_batch(
        self, words: Sequence[str], topn: int = 10, restrict_vocab: int | None = None, batch_size: int = 1024
    ) -> list[list[tuple[str, float]]]:
        """``[most_similar(positive=[w], topn=topn, restrict_vocab=restrict_vocab) for w in words]``,
        computed with one matrix product per batch of ``batch_size`` words.

        Returns:
            one list of ``(word, cosine)`` per input word, descending, the word itself left out.

        Raises:
            VocabularyError: an input word is unknown.
        """
        if topn < 1:
            return [[] for _ in words]
        rows = np.asarray([self.index(w) for w in words], dtype=np.int64)
        end = self.restricted_size(restrict_vocab)
        D, I = exact_topk(self.unit[rows], self.unit[:end], int(topn), "ip", exclude=rows[:, None], batch=batch_size)
        return [self._pairs(d, i) for d, i in zip(D, I)]

    # ------------------------------------------------------------ interop
    @classmethod
    def from_gensim(cls, kv: Any) -> "KeyedVectors":
        """Build from a ``gensim.models.KeyedVectors`` (its ``index_to_key`` order and ``vectors``)."""
        return cls([str(k) for k in kv.index_to_key], np.asarray(kv.vectors, dtype=np.float32))

    def to_gensim(self) -> Any:
        """A ``gensim.models.KeyedVectors`` with the same words (same order) and a copy of the vectors."""
        from gensim.models import KeyedVectors as GensimKV

        kv = GensimKV(vector_size=self.vector_size, count=0, dtype=np.float32)
        kv.add_vectors(list(self.words), np.array(self.vectors, dtype=np.float32))
        return kv


def from_gensim(kv: Any) -> KeyedVectors:
    """Module-level alias of ``KeyedVectors.from_gensim``."""
    return KeyedVectors.from_gensim(kv)
