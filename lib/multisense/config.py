"""Multi-sense training configuration, saved inside every checkpoint and export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from replearn.lib.dataclass_config import ThreadedConfig, check_fields
from replearn.lib.errors import ReplearnInputError


EStep = Literal["soft", "sample"]
EStepNoise = Literal["expected", "sampled", "none"]
SenseInit = Literal["cluster", "noise"]
ClusterFeatures = Literal["input", "context"]


class SenseConfigError(ReplearnInputError):
    """A multi-sense hyperparameter is out of range (e.g. ``max_senses < 1``)."""


@dataclass(frozen=True)
class MultiSenseConfig(ThreadedConfig):
    """Hyperparameters of multi-sense skip-gram (Tian et al. 2014; Bartunov et al. 2016).

    Model: every word x has K_x sense vectors v(x, z), z = 0..K_x-1, a prior
    p(z|x), and every word y one context vector u(y). An occurrence of x draws
    one sense z ~ p(z|x) that generates all the words y of its window with the
    skip-gram likelihood (negative sampling, Mikolov et al. 2013, eq. 4):

        log p(y|x,z) ~ log sigma(<u(y), v(x,z)>) + sum_{n in noise} log sigma(-<u(n), v(x,z)>)

    and training maximises the marginal likelihood
    log sum_z p(z|x) prod_{y in window} p(y|x,z) (see :mod:`.kernel`).

    Attributes:
        dim: embedding dimension D, >= 1.
        window: maximum window (dynamic window 1..window as word2vec.c), >= 1.
        negative: noise words per (centre, context) pair, >= 1.
        ns_exponent: power of the unigram noise distribution (0.75).
        sample: frequent-word subsampling threshold in [0, 1); 0 disables it.
        epochs: passes over the corpus, >= 1.
        alpha: initial learning rate of the vectors, decays linearly to ``min_alpha``.
        min_alpha: final learning rate, 0 <= min_alpha <= alpha.
        min_count: words rarer than this are dropped from the vocabulary (>= 1);
            used by the flow that builds the vocabulary, recorded here for provenance.
        max_senses: the most senses any word gets, >= 1 (1 = plain skip-gram).
        sense_min_count: words with count < sense_min_count get 1 sense (>= 1).
        sense_count_base: the number of senses grows by one each time the count
            is multiplied by this factor (> 1): K_x = min(max_senses,
            2 + floor(log(count / sense_min_count) / log(sense_count_base))) for
            count >= sense_min_count (see :func:`.senses.senses_per_word`).
        prior_smoothing: beta > 0, the pseudo-count per sense of the prior's
            M-step p(z|x) = (n(x,z) + beta) / (n(x) + K_x beta), i.e. the MAP
            estimate under a symmetric Dirichlet(1 + beta) prior.
        prune_threshold: at the end of every epoch from ``prune_from_epoch`` on,
            senses whose prior is below this (in [0, 1)) are removed and
            reported; 0 disables pruning.
        prune_from_epoch: first epoch (1-based) after which pruning happens, >= 1.
        init_noise: symmetry breaking. After the warm-up, every sense of word x
            starts at x's single-sense vector v_x plus Gaussian noise of standard
            deviation init_noise * |v_x| / sqrt(D) per coordinate (so |noise| is
            about init_noise * |v_x|); without warm-up, at word2vec's initial
            vector plus uniform noise in [-init_noise/D, init_noise/D). >= 0.
            Default 0.02: with the cluster init the direction, not the size, of
            the offset breaks the symmetry, and a large offset costs word
            similarity. Books corpus (bench/multisense_pseudowords.py, 4 epochs,
            SimLex-999 MaxSim / average vs skip-gram; pseudo-word accuracy
            +-5 words / sentence): 0.3: -0.049 / -0.025, 0.64 / 0.71;
            0.1: -0.034 / -0.026, 0.71 / 0.68; 0.05: -0.031 / -0.024,
            0.71 / 0.73; 0.02: -0.021 / -0.022, 0.73 / 0.72 (a rerun, with the
            same pairs as the 0.3 run: -0.017 / -0.019, 0.69 / 0.71).
        sense_init: how the senses start after the warm-up (symmetry breaking).
            ``"cluster"`` (default, :mod:`.cluster`): the occurrences of every
            multi-sense word are clustered by their context vectors (K_x-means
            on sum_y u(y) over +-``cluster_window`` words) and sense z starts at
            v_x + init_noise * |v_x| * (unit direction of cluster z), so the
            senses follow the word's contexts; ``"noise"``: v_x + Gaussian noise
            (see ``init_noise``). Without warm-up the init is always noise.
        cluster_features: what the clustering compares (:mod:`.cluster`, step 2):
            ``"input"`` (default) the subsampling-weighted sum of the context
            words' unit input vectors, ``"context"`` the sum of their context
            vectors u(y).
        cluster_window: context words each side in the clustering (>= 1).
        cluster_occurrences: occurrences drawn per word for the clustering (>= 1).
        warmup_epochs: first epochs trained as plain skip-gram (every word one
            sense), in [0, epochs). The E-step needs informative context vectors
            u; from a cold start all senses receive the same gradient and stay
            mixed. A warm start is necessary but, measured on the books
            pseudo-words (bench/multisense_pseudowords.py, 1 warm-up + 3 EM
            epochs), not sufficient: with the noise init the two senses of a
            merged token split by book/genre (held-out accuracy 0.60, majority
            0.57); with the cluster init (init_noise 0.02) 0.69 over +-5 words
            and 0.71 over the whole held-out sentence (majority 0.57, ceiling
            0.86).
        estep: ``"soft"``: every sense gets the gradient weighted by its
            responsibility r_z (the exact gradient of the marginal likelihood);
            ``"sample"``: one sense z ~ r takes the whole step (stochastic EM,
            Celeux & Diebolt 1985: the same gradient in expectation, cheaper).
        estep_negatives: include the sampled noise words' terms in the E-step
            scores a_z (then the kernel's step is exactly -alpha * dNLL of
            :mod:`.objective`). Default False: the noise words are drawn
            independently of the occurrence and carry no evidence about its
            sense, only variance (they are 5x as many as the window words), so
            responsibilities use the window words only,
            a_z = log p(z|x) + sum_y log sigma(<u(y), v(x,z)>), and the noise
            terms enter the M-step weighted by r_z.
        estep_window: words each side of the centre that the E-step reads as
            evidence about the sense (>= 0). 0: the window words of the update
            itself, i.e. word2vec's dynamic window of 1..``window`` words, so the
            responsibilities are exactly those of the marginal likelihood of the
            pairs updated. > 0: every kept word within this fixed distance, and
            the M-step still updates only the dynamic-window pairs. This is the
            marginal likelihood of a model whose sense generates the whole
            +-estep_window span, with the positive-pair part of its gradient
            subsampled by the dynamic window. Why: with the dynamic window the
            number of evidence words varies 1..2*window between occurrences, and
            EM split senses along that nuisance (the size of sum_y u(y)), not
            along meaning (books pseudo-words: chance accuracy); a fixed, wider
            span removes that and gives sharper responsibilities.
        max_sentence_tokens: pseudo-sentence cap used when encoding the corpus
            (see Word2VecConfig); provenance only.
        threads: worker threads (Hogwild SGD), >= 1.
        seed: seed of every random draw; with threads=1 two runs give identical vectors.
        chunk_tokens: corpus tokens per training step; the prior is re-estimated
            after every step.
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
    max_senses: int = 5
    sense_min_count: int = 200
    sense_count_base: float = 10.0
    prior_smoothing: float = 1.0
    prune_threshold: float = 0.02
    prune_from_epoch: int = 1
    init_noise: float = 0.02
    sense_init: SenseInit = "cluster"
    cluster_features: ClusterFeatures = "input"
    cluster_window: int = 5
    cluster_occurrences: int = 300
    warmup_epochs: int = 1
    estep: EStep = "soft"
    estep_noise: EStepNoise = "expected"
    estep_window: int = 0
    max_sentence_tokens: int | None = 1000
    threads: int = 2
    seed: int = 1
    chunk_tokens: int = 500_000

    def __post_init__(self) -> None:
        if not isinstance(self.max_senses, int) or self.max_senses < 1:
            raise SenseConfigError(
                f"max_senses must be an integer >= 1 (1 = plain skip-gram), got {self.max_senses!r}")
        checks = {
            "dim": self.dim >= 1,
            "window": self.window >= 1,
            "negative": self.negative >= 1,
            "sample": 0.0 <= self.sample < 1.0,
            "epochs": self.epochs >= 1,
            "alpha": self.alpha > 0,
            "min_alpha": 0 <= self.min_alpha <= self.alpha,
            "min_count": self.min_count >= 1,
            "sense_min_count": self.sense_min_count >= 1,
            "sense_count_base": self.sense_count_base > 1,
            "prior_smoothing": self.prior_smoothing > 0,
            "prune_threshold": 0 <= self.prune_threshold < 1,
            "prune_from_epoch": self.prune_from_epoch >= 1,
            "init_noise": self.init_noise >= 0,
            "warmup_epochs": 0 <= self.warmup_epochs < self.epochs or (self.warmup_epochs == 0),
            "estep": self.estep in ("soft", "sample"),
            "sense_init": self.sense_init in ("cluster", "noise"),
            "cluster_features": self.cluster_features in ("input", "context"),
            "cluster_window": isinstance(self.cluster_window, int) and self.cluster_window >= 1,
            "cluster_occurrences": isinstance(self.cluster_occurrences, int) and self.cluster_occurrences >= 1,
            "estep_noise": self.estep_noise in ("expected", "sampled", "none"),
            "estep_window": isinstance(self.estep_window, int) and self.estep_window >= 0,
            "max_sentence_tokens": self.max_sentence_tokens is None or self.max_sentence_tokens >= 1,
            "threads": self.threads >= 1,
            "chunk_tokens": self.chunk_tokens >= 1,
        }
        try:
            check_fields(self, checks)
        except ValueError as exc:
            raise SenseConfigError(str(exc)) from None
