"""Skip-gram training configuration, saved inside every checkpoint and export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from replearn.lib.dataclass_config import Config, check_fields, range_checks, setting

Objective = Literal["negative_sampling", "softmax"]
Kernel = Literal["shared", "pair"]


@dataclass(frozen=True)
class Word2VecConfig(Config):
    """Hyperparameters of skip-gram word vectors (Mikolov et al. 2013).

    Every field is declared with :func:`~replearn.lib.dataclass_config.setting`: its
    default, one-line help and range there are the only ones; the flow
    parameters and CLI options are generated from them.

    Attributes:
        dim: embedding dimension D of the input (V) and context (U) matrices, 1..4096.
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
            than this is cut into sentences of this many tokens (word2vec.c),
            never truncated. None or 0 keeps every document as its own
            sentence, a line of more than 10,000 tokens cut into pieces (gensim).
        objective: ``"negative_sampling"`` (default, any vocabulary size) or
            ``"softmax"``, the full softmax p(y|x) = exp(<u(y),v(x)>) /
            sum_y' exp(<u(y'),v(x)>) for small vocabularies (<= softmax_max_vocab).
            It costs O(V * D) per pair (about 2,000 pairs/s at V = 2,000 on 2
            cores) and keeps no epoch checkpoints.
        kernel: negative-sampling kernel. ``"shared"``: the context words of one
            centre word share its K noise words and are updated together as one
            small matrix product (Ji et al. 2016, "HogBatch"; module
            :mod:`~replearn.lib.word2vec.hogbatch`). ``"pair"``: word2vec.c's update, one
            (centre, context) pair at a time with its own K noise words
            (:mod:`~replearn.lib.word2vec.sgns`).
        softmax_batch: pairs per optimiser step for the softmax objective.
        softmax_max_vocab: refuse the softmax objective above this vocabulary size
            (default 2,000; use --max-vocab to cap the vocabulary).
        threads: worker threads for the negative-sampling kernel (Hogwild SGD).
        seed: seed of every random draw; with threads=1 two runs give identical vectors.
        chunk_tokens: corpus tokens per training step (one loss value is logged per step).
    """

    dim: int = setting(100, help="Embedding dimension", ge=1, le=4096)
    window: int = setting(5, help="Maximum context window (dynamic: 1..window per centre word)", ge=1, le=50)
    negative: int = setting(5, help="Noise words per positive pair", ge=1, le=50)
    ns_exponent: float = setting(0.75, help="Power of the unigram noise distribution (1 = by frequency, 0 = "
                                                  "uniform)", ge=0.0, le=10.0)
    sample: float = setting(1e-3, help="Frequent-word subsampling threshold t (0 = off)", ge=0.0, lt=1.0)
    epochs: int = setting(5, help="Passes over the corpus", ge=1, le=1000)
    alpha: float = setting(0.025, help="Initial learning rate (linear decay to min_alpha)", gt=0.0, le=1.0)
    min_alpha: float = setting(0.0001, help="Final learning rate (<= alpha)", ge=0.0)
    min_count: int = setting(5, help="Drop words seen fewer times", ge=1)
    max_vocab: int | None = setting(None, help="Keep at most this many most frequent words (empty = no cap)", ge=1)
    max_sentence_tokens: int | None = setting(1000, help="Join consecutive lines (documents) into pseudo-sentences "
                                                         "of up to this many tokens, as word2vec.c reads text; 0 or "
                                                         "empty = one line, one sentence", ge=0)
    objective: Objective = setting("negative_sampling", help="Training objective: negative sampling, or the full "
                                                             "softmax for small vocabularies")
    kernel: Kernel = setting("shared", help="Negative-sampling kernel: 'shared' (the context words of a centre word "
                                             "share its noise words, HogBatch) or 'pair' (word2vec.c's per-pair update)")
    softmax_batch: int = setting(1024, help="Pairs per optimiser step of the softmax objective", ge=1)
    softmax_max_vocab: int = setting(2_000, help="Largest vocabulary the softmax objective accepts", ge=1)
    threads: int = setting(2, help="Training threads (Hogwild SGD)", ge=1, le=256, in_training_key=False)
    seed: int = setting(1, help="Random seed (threads=1: identical vectors)")
    chunk_tokens: int = setting(500_000, help="Corpus tokens per training step (one loss value each)", ge=1)

    def __post_init__(self) -> None:
        checks = range_checks(self)
        checks["min_alpha"] = checks["min_alpha"] and self.min_alpha <= self.alpha
        check_fields(self, checks)
