"""MultiSenseVectors: the light query object over trained multi-sense vectors.

Holds the words, each word's sense vectors v(x, z) and prior p(z|x), the
context vectors u(y) and the noise distribution (both needed by the
posterior), and answers: posterior over senses given context words, nearest
words of each sense, single-sense word vectors, export rows. Saved as one
``.npz`` whose ``meta`` records the :class:`.config.MultiSenseConfig`.

Shapes: V words, S = sum_x K_x sense rows, D dimensions. Word x owns sense rows
``sense_start[x] : sense_start[x + 1]``.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replearn.lib.errors import EmbeddingsError, VocabularyError
from replearn.lib.multisense.config import MultiSenseConfig
from replearn.lib.multisense.posterior import context_log_likelihood, sense_posterior
from replearn.lib.topk import exact_topk
from replearn.lib.vectors import KeyedVectors, unit_rows

logger = logging.getLogger(__name__)

FELL_BACK_NOTE = "fell back to prior: no context word is in the vocabulary"


class UnknownWordError(VocabularyError):
    """The queried word is not in the multi-sense vocabulary."""


@dataclass(frozen=True)
class SensePosterior:
    """Posterior over the senses of one occurrence.

    Attributes:
        word: the queried word.
        probs: float64 (K,) p(z | word, context), summing to 1.
        prior: float64 (K,) p(z | word).
        used: context words that were in the vocabulary (in order, repeats kept).
        ignored: context words not in the vocabulary (ignored).
        fell_back_to_prior: True when no context word was usable, so ``probs == prior``.
        note: a human-readable remark ("" or :data:`FELL_BACK_NOTE`).
    """

    word: str
    probs: np.ndarray
    prior: np.ndarray
    used: tuple[str, ...]
    ignored: tuple[str, ...]
    fell_back_to_prior: bool
    note: str = ""

    @property
    def best(self) -> int:
        """Index of the most probable sense."""
        return int(np.argmax(self.probs))


class MultiSenseVectors:
    """Trained multi-sense vectors (see module docstring).

    Args:
        words: V distinct words, most frequent first. counts: int (V,) corpus counts.
        sense_start: int64 (V + 1,) offsets, non-decreasing, every word >= 1 sense.
        vectors: (S, D) sense vectors v(x, z). prior: (S,) p(z|x), each word's rows summing to ~1.
        context: (V, D) context vectors u(y). noise_probs: (V,) noise distribution q.
        config: the training configuration.

    Raises:
        EmbeddingsError: inconsistent shapes, a word without senses, or non-finite values.
    """

    def __init__(self, words: Sequence[str], counts: np.ndarray, sense_start: np.ndarray, vectors: np.ndarray,
                 prior: np.ndarray, context: np.ndarray, noise_probs: np.ndarray, config: MultiSenseConfig) -> None:
        self.words = tuple(words)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.sense_start = np.asarray(sense_start, dtype=np.int64)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.prior = np.asarray(prior, dtype=np.float64)
        self.context = np.ascontiguousarray(context, dtype=np.float32)
        self.noise_probs = np.asarray(noise_probs, dtype=np.float64)
        self.config = config
        V, S = len(self.words), self.vectors.shape[0]
        if (len(self.counts) != V or self.sense_start.shape != (V + 1,) or self.sense_start[0] != 0
                or self.sense_start[-1] != S or self.prior.shape != (S,) or self.context.shape[0] != V
                or self.context.shape[1] != self.vectors.shape[1] or self.noise_probs.shape != (V,)):
            raise EmbeddingsError(
                f"inconsistent multi-sense arrays: {V} words, sense_start {self.sense_start.shape}, vectors "
                f"{self.vectors.shape}, prior {self.prior.shape}, context {self.context.shape}, "
                f"noise {self.noise_probs.shape}")
        if V and np.diff(self.sense_start).min() < 1:
            raise EmbeddingsError("every word needs at least one sense (sense_start must be strictly increasing)")
        if not (np.isfinite(self.vectors).all() and np.isfinite(self.context).all() and np.isfinite(self.prior).all()):
            raise EmbeddingsError("multi-sense vectors hold NaN or Inf; check training for divergence")
        self.index = {w: i for i, w in enumerate(self.words)}
        self._word_kv: KeyedVectors | None = None

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    @property
    def dim(self) -> int:
        """D, the vector dimension."""
        return self.vectors.shape[1]

    def word_id(self, word: str) -> int:
        """Row of ``word``. Raises UnknownWordError (a VocabularyError) when it is not in the vocabulary."""
        try:
            return self.index[word]
        except KeyError:
            raise UnknownWordError(
                f"word {word!r} is not in the multi-sense vocabulary ({len(self.words)} words, min_count="
                f"{self.config.min_count}); check spelling/case or lower min_count") from None

    def n_senses(self, word: str) -> int:
        """K_x, senses of ``word`` after pruning (>= 1)."""
        x = self.word_id(word)
        return int(self.sense_start[x + 1] - self.sense_start[x])

    def sense_vectors(self, word: str) -> np.ndarray:
        """float32 (K, D) sense vectors of ``word`` (a view)."""
        x = self.word_id(word)
        return self.vectors[self.sense_start[x]:self.sense_start[x + 1]]

    def sense_prior(self, word: str) -> np.ndarray:
        """float64 (K,) prior p(z | word)."""
        x = self.word_id(word)
        return self.prior[self.sense_start[x]:self.sense_start[x + 1]].copy()

    # ------------------------------------------------------------------ posterior
    def context_table(self, word: str) -> np.ndarray:
        """float64 (K, V) log-likelihood of each word as context of each sense (see :mod:`.posterior`)."""
        return context_log_likelihood(self.sense_vectors(word), self.context, self.noise_probs, self.config.negative)

    def posterior(self, word: str, context: Sequence[str]) -> SensePosterior:
        """p(z | word, context) (Tian et al. 2014, eq. 5; formula in :mod:`.posterior`).

        Context words not in the vocabulary are ignored; when none remains the
        result is the prior with ``fell_back_to_prior=True`` (and a WARNING is logged).

        Args:
            word: the ambiguous word. context: the words around it (any order, any length).

        Returns:
            :class:`SensePosterior`.

        Raises:
            UnknownWordError: ``word`` is not in the vocabulary.
        """
        x = self.word_id(word)
        if isinstance(context, str):
            context = context.split()
        used = [c for c in context if c in self.index]
        ignored = [c for c in context if c not in self.index]
        prior = self.prior[self.sense_start[x]:self.sense_start[x + 1]].copy()
        if not used:
            logger.warning("posterior(%r): %s (%d word(s) ignored)", word, FELL_BACK_NOTE, len(ignored))
            return SensePosterior(word, prior.copy(), prior, (), tuple(ignored), True, FELL_BACK_NOTE)
        ids = np.array([self.index[c] for c in used], dtype=np.int64)
        probs = sense_posterior(np.log(prior), self.context_table(word), ids)
        return SensePosterior(word, probs, prior, tuple(used), tuple(ignored), False, "")

    # ------------------------------------------------------------------ single-sense views
    def average_vectors(self) -> np.ndarray:
        """float32 (V, D): each word's prior-weighted average sense vector sum_z p(z|x) v(x,z)."""
        owner = np.repeat(np.arange(len(self.words)), np.diff(self.sense_start))
        out = np.zeros((len(self.words), self.dim), dtype=np.float64)
        np.add.at(out, owner, self.vectors * self.prior[:, None])
        return out.astype(np.float32)

    def word_vectors(self) -> KeyedVectors:
        """KeyedVectors of :meth:`average_vectors` (cached), for similarity and neighbour queries."""
        if self._word_kv is None:
            self._word_kv = KeyedVectors(self.words, self.average_vectors())
        return self._word_kv

    def sense_neighbours(self, word: str, topn: int = 10, against: str = "words") -> list[list[tuple[str, float]]]:
        """The nearest words of each sense of ``word`` by cosine.

        Args:
            word: the probe. topn: neighbours per sense, >= 1.
            against: ``"words"`` (default) compares v(x,z) with every other word's
                prior-weighted average sense vector (paradigmatic neighbours:
                words that could stand in its place); ``"context"`` compares it
                with the context vectors u(y) (syntagmatic: words that occur
                around this sense, what the posterior looks at).

        Returns:
            One list per sense (sense order) of (word, cosine in [-1, 1]) pairs, best first;
            ``word`` itself excluded.

        Raises:
            UnknownWordError: ``word`` not in the vocabulary. ValueError: bad ``against`` or topn < 1.
        """
        if topn < 1:
            raise ValueError(f"topn must be >= 1, got {topn}")
        x = self.word_id(word)
        if against == "words":
            ref = self.word_vectors().unit
        elif against == "context":
            ref = unit_rows(self.context)[0]
        else:
            raise ValueError(f"against must be 'words' or 'context', got {against!r}")
        q = unit_rows(self.sense_vectors(word))[0]
        if len(ref) < 2:  # the word itself is the only candidate
            return [[] for _ in q]
        D, I = exact_topk(q, ref, min(topn, len(ref) - 1), "ip", exclude=np.full((len(q), 1), x))
        return [[(self.words[i], float(d)) for i, d in zip(ii.tolist(), dd.tolist())] for dd, ii in zip(D, I)]

    # ------------------------------------------------------------------ export
    def export_rows(self) -> dict[str, np.ndarray | list]:
        """One row per (word, sense), for the embeddings table.

        Returns:
            dict of columns, S rows each: ``key`` (list of str, the word), ``sense``
            (int16, 0-based within the word), ``vector`` (float32 (S, D)), ``prior`` (float64, p(z|x)),
            ``count`` (int64, the word's corpus count).
        """
        K = np.diff(self.sense_start)
        owner = np.repeat(np.arange(len(self.words)), K)
        sense = (np.arange(len(owner)) - self.sense_start[owner]).astype(np.int16)
        return {"key": [self.words[i] for i in owner], "sense": sense, "vector": self.vectors.copy(),
                "prior": self.prior.copy(), "count": self.counts[owner]}

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> Path:
        """Write everything (config included) to ``path`` (.npz) atomically; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}.npz"
        meta = json.dumps({"format": "replearn.multisense/1", "config": self.config.to_dict(), "words": self.words})
        try:
            np.savez(tmp, counts=self.counts, sense_start=self.sense_start, vectors=self.vectors, prior=self.prior,
                     context=self.context, noise_probs=self.noise_probs, meta=np.array(meta))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: Path) -> "MultiSenseVectors":
        """Read a file written by :meth:`save`.

        Raises:
            EmbeddingsError: the file is missing or not a multi-sense model.
        """
        try:
            with np.load(Path(path)) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != "replearn.multisense/1":
                    raise KeyError("format")
                return cls(meta["words"], z["counts"], z["sense_start"], z["vectors"], z["prior"], z["context"],
                           z["noise_probs"], MultiSenseConfig.from_dict(meta["config"]))
        except (OSError, KeyError, ValueError) as exc:
            if isinstance(exc, EmbeddingsError):
                raise
            raise EmbeddingsError(f"{path} is not a readable multi-sense model file ({exc!r})") from exc
