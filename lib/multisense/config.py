"""Multi-sense training configuration, saved inside every checkpoint and export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from replearn.lib.dataclass_config import Config, ConfigError, check_fields, range_checks, setting
from replearn.lib.errors import ReplearnInputError
from replearn.lib.word2vec.config import Kernel


EStep = Literal["soft", "sample"]
EStepNoise = Literal["expected", "sampled", "none"]
SenseInit = Literal["cluster", "noise"]
ClusterFeatures = Literal["input", "context"]
PriorKind = Literal["dirichlet", "stick_breaking"]


class SenseConfigError(ReplearnInputError):
    """A multi-sense hyperparameter is out of range (e.g. ``max_senses < 1``)."""


@dataclass(frozen=True)
class MultiSenseConfig(Config):
    """Hyperparameters of multi-sense skip-gram (Tian et al. 2014; Bartunov et al. 2016).

    Model: every word x has K_x sense vectors v(x, z), z = 0..K_x-1, a prior
    p(z|x), and every word y one context vector u(y). An occurrence of x draws
    one sense z ~ p(z|x) that generates all the words y of its window with the
    skip-gram likelihood (negative sampling, Mikolov et al. 2013, eq. 4):

        log p(y|x,z) ~ log sigma(<u(y), v(x,z)>) + sum_{n in noise} log sigma(-<u(n), v(x,z)>)

    and training maximises the marginal likelihood
    log sum_z p(z|x) prod_{y in window} p(y|x,z) (see :mod:`.kernel`).

    Every field is declared with :func:`~replearn.lib.dataclass_config.setting`
    (default, one-line help, range): the flow parameters and CLI options are
    generated from it.

    Attributes:
        dim: embedding dimension D, 1..4096.
        window: maximum window (dynamic window 1..window as word2vec.c), >= 1.
        negative: noise words per (centre, context) pair, >= 1.
        ns_exponent: power of the unigram noise distribution (0.75).
        sample: frequent-word subsampling threshold in [0, 1); 0 disables it.
        epochs: passes over the corpus, 1..1000, warm-up included (default 4: the
            bench/README.md books figures are all at 4 epochs, and 7 epochs raised
            pseudo-word accuracy only from 0.692 to 0.713 while SimLex-999 fell
            0.034 below skip-gram).
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
        prior: the prior over a word's senses and its M-step.
            ``"dirichlet"`` (default): p(z|x) = (n(x,z) + beta) / (n(x) + K_x beta),
            the MAP estimate under a symmetric Dirichlet(1 + beta) prior
            (:func:`.objective.prior_from_counts`). ``"stick_breaking"``: AdaGram's
            truncated Dirichlet process, p(z = k|x) = beta_k prod_{j<k}(1 - beta_j),
            beta_k ~ Beta(1, ``dp_alpha``), used through exp E[log p(z|x)] under the
            mean-field posterior of the betas (:func:`.objective.stick_breaking_prior`):
            a sense the data does not use gets a prior near 0 and is pruned, so
            give words many senses (``max_senses``, ``sense_count_base`` near 1)
            and the data decides how many each keeps.
        prior_smoothing: beta > 0, the pseudo-count per sense of the Dirichlet prior's M-step.
        dp_alpha: the stick-breaking concentration alpha > 0 (AdaGram: 0.1); larger
            keeps more senses.
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
        kernel: how a centre occurrence's targets are drawn. ``"pair"``: word2vec.c's,
            ``negative`` noise words for each (centre, context) pair, m (1 + negative)
            targets for m context words. ``"shared"``: the m pairs share one draw of
            ``negative`` noise words per ``noise_share`` context words, weighted so
            they stand for the m * negative terms (Ji et al. 2016, as the word2vec
            kernel of that name; same expected gradient, fewer dot products per
            sense, more variance).
        noise_share: context words per draw of ``negative`` noise words with the
            ``"shared"`` kernel (>= 1; 50 = the whole window shares one draw).
            Books corpus, 1 seed (bench/README.md): sharing over the whole window
            ran at 0.69x skip-gram's words/s but cost 0.06 of SimLex-999; 3
            context words a draw: 0.54x, SimLex within 0.024.
        max_sentence_tokens: pseudo-sentence cap used when encoding the corpus
            (see Word2VecConfig); provenance only.
        threads: worker threads (Hogwild SGD), >= 1.
        seed: seed of every random draw; with threads=1 two runs give identical vectors.
        chunk_tokens: corpus tokens per training step; the prior is re-estimated
            after every step.
    """

    dim: int = setting(100, help="Embedding dimension", ge=1, le=4096)
    window: int = setting(5, help="Maximum context window (dynamic: 1..window per centre word)", ge=1, le=50)
    negative: int = setting(5, help="Noise words per (centre, context) pair", ge=1, le=50)
    ns_exponent: float = setting(0.75, help="Power of the unigram noise distribution (1 = by frequency, 0 = "
                                            "uniform)", ge=0.0, le=10.0)
    sample: float = setting(1e-3, help="Frequent-word subsampling threshold t (0 = off)", ge=0.0, lt=1.0)
    epochs: int = setting(4, help="Passes over the corpus, the warm-up epochs included", ge=1, le=1000)
    alpha: float = setting(0.025, help="Initial learning rate of the vectors (linear decay to min_alpha)", gt=0.0,
                           le=1.0)
    min_alpha: float = setting(0.0001, help="Final learning rate (<= alpha)", ge=0.0)
    min_count: int = setting(5, help="Drop words seen fewer times", ge=1)
    max_senses: int = setting(5, help="Most senses a word may have (frequent words get more; 1 = skip-gram)",
                              ge=1, le=50)
    sense_min_count: int = setting(200, help="Words seen fewer times keep one sense", ge=1)
    sense_count_base: float = setting(10.0, help="A word gets one more sense each time its count grows by this "
                                                 "factor", gt=1.0)
    prior: PriorKind = setting("dirichlet", help="Prior over a word's senses: 'dirichlet' (smoothed counts) or "
                                                 "'stick_breaking' (AdaGram's Dirichlet process: unused senses fade)")
    prior_smoothing: float = setting(1.0, help="Pseudo-count per sense in the Dirichlet prior's M-step (--prior "
                                                      "dirichlet only)", gt=0.0)
    dp_alpha: float = setting(0.1, help="Concentration of the stick-breaking prior, larger keeps more senses "
                                        "(--prior stick_breaking only)", gt=0.0, le=100.0)
    prune_threshold: float = setting(0.02, help="Senses whose prior falls below this are pruned (0 = off)",
                                     ge=0.0, lt=1.0)
    prune_from_epoch: int = setting(1, help="First epoch after which senses are pruned", ge=1)
    init_noise: float = setting(0.02, help="Symmetry-breaking offset of the senses, relative to the word's vector",
                                ge=0.0)
    sense_init: SenseInit = setting("cluster", help="How senses start after the warm-up: cluster the word's "
                                                    "contexts, or random noise")
    cluster_features: ClusterFeatures = setting("input", help="What the sense clustering compares: the context "
                                                              "words' input or context vectors")
    cluster_window: int = setting(5, help="Context words each side in the sense clustering", ge=1)
    cluster_occurrences: int = setting(300, help="Occurrences drawn per word for the sense clustering", ge=1)
    warmup_epochs: int = setting(1, help="First epochs trained as plain skip-gram (< epochs)", ge=0)
    estep: EStep = setting("soft", help="E-step: every sense weighted by its responsibility, or one sampled sense")
    estep_noise: EStepNoise = setting("expected", help="How the noise words enter the update: weighted by the "
                                                       "responsibilities, sampled, or not at all")
    estep_window: int = setting(0, help="Words each side the E-step reads as evidence (0 = the update's dynamic "
                                        "window)", ge=0)
    kernel: Kernel = setting("pair", help="Noise words: 'pair' (negative per context word, as word2vec.c) or "
                                          "'shared' (one draw per centre word shared by its window: faster)")
    noise_share: int = setting(3, help="Context words per draw of noise words (--kernel shared only)", ge=1,
                               le=100)
    max_sentence_tokens: int | None = setting(1000, help="Join consecutive lines (documents) into pseudo-sentences "
                                                         "of up to this many tokens when encoding the corpus; 0 or "
                                                         "empty = one line, one sentence", ge=0)
    threads: int = setting(2, help="Training threads (Hogwild SGD)", ge=1, le=256, in_training_key=False)
    seed: int = setting(1, help="Random seed (threads=1: identical vectors)")
    chunk_tokens: int = setting(500_000, help="Corpus tokens per training step (the prior is re-estimated after "
                                              "each)", ge=1)

    def __post_init__(self) -> None:
        if not isinstance(self.max_senses, int) or self.max_senses < 1:
            raise SenseConfigError(
                f"max_senses must be an integer >= 1 (1 = plain skip-gram), got {self.max_senses!r}")
        checks = range_checks(self)
        checks["min_alpha"] = checks["min_alpha"] and self.min_alpha <= self.alpha
        checks["warmup_epochs"] = checks["warmup_epochs"] and (self.warmup_epochs < self.epochs
                                                               or self.warmup_epochs == 0)
        try:
            check_fields(self, checks)
        except ConfigError as exc:
            err = SenseConfigError(str(exc))
            err.config, err.fields = exc.config, exc.fields  # which settings failed, for the flow parameters
            raise err from None
