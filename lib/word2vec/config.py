"""Skip-gram training configuration, saved inside every checkpoint and export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from replearn.lib.dataclass_config import ThreadedConfig, check_fields

Objective = Literal["negative_sampling", "softmax"]


@dataclass(frozen=True)
class Word2VecConfig(ThreadedConfig):
    """Hyperparameters of skip-gram word vectors (Mikolov et al. 2013).

    Attributes:
        dim: embedding dimension D of the input (V) and context (U) matrices, >= 1.
        window: maximum distance between centre and context word, >= 1. Each
            centre word draws its effective window uniformly from 1..window
            ("dynamic window", word2vec.c).
        negative: noise words per positive pair for negative sampling, >= 1.
        ns_exponent: power of the unigram noise distribution (0.75 in the paper).
        sample: frequent-word subsampling threshold t in [0, 1); 0 disables it.
            Keep probability (sqrt(f/t) + 1) * t / f as in word2vec.c.
        epochs: passes over the corpus, >= 1.
        alpha: initial learning rate, decays linearly to ``min_alpha``.
        min_alpha: final learning rate, 0 <= min_alpha <= alpha.
        min_count: words seen fewer times are dropped from the vocabulary.
        max_vocab: keep at most this many most frequent words (None: no cap).
        max_sentence_tokens: consecutive documents (lines) are joined into
            pseudo-sentences of at most this many tokens, so windows cross line
            breaks as in the text8 / gensim set-up; a single document longer
            than this is kept whole, never truncated. None keeps every
            document as its own sentence.
        objective: ``"negative_sampling"`` (default, any vocabulary size) or
            ``"softmax"``, the full softmax p(y|x) = exp(<u(y),v(x)>) /
            sum_y' exp(<u(y'),v(x)>) for small vocabularies (<= softmax_max_vocab).
            It costs O(V * D) per pair (about 2,000 pairs/s at V = 2,000 on 2
            cores) and keeps no epoch checkpoints.
        softmax_batch: pairs per optimiser step for the softmax objective.
        softmax_max_vocab: refuse the softmax objective above this vocabulary size
            (default 2,000; use --max-vocab to cap the vocabulary).
        threads: worker threads for the negative-sampling kernel (Hogwild SGD).
        seed: seed of every random draw; with threads=1 two runs give identical vectors.
        chunk_tokens: corpus tokens per training step (one loss value is logged per step).
    """

    dim: int = 100
    window: int = 5
    negative: int = 5
    ns_exponent: float = 0.75
    sample: float = 1e-3
    epochs: int = 5
    alpha: float = 0.025
    min_alpha: float = 0.0001
    min_count: int = 5
    max_vocab: int | None = None
    max_sentence_tokens: int | None = 1000
    objective: Objective = "negative_sampling"
    softmax_batch: int = 1024
    softmax_max_vocab: int = 2_000
    threads: int = 2
    seed: int = 1
    chunk_tokens: int = 500_000

    def __post_init__(self) -> None:
        checks = {
            "dim": self.dim >= 1,
            "window": self.window >= 1,
            "negative": self.negative >= 1,
            "sample": 0.0 <= self.sample < 1.0,
            "epochs": self.epochs >= 1,
            "alpha": self.alpha > 0,
            "min_alpha": 0 <= self.min_alpha <= self.alpha,
            "min_count": self.min_count >= 1,
            "max_vocab": self.max_vocab is None or self.max_vocab >= 1,
            "max_sentence_tokens": self.max_sentence_tokens is None or self.max_sentence_tokens >= 1,
            "objective": self.objective in ("negative_sampling", "softmax"),
            "softmax_batch": self.softmax_batch >= 1,
            "threads": self.threads >= 1,
            "chunk_tokens": self.chunk_tokens >= 1,
        }
        check_fields(self, checks)
