"""Multi-sense training loop: epochs, chunks, prior re-estimation, pruning, checkpoints, resume.

State: sense vectors ``sv`` float32 (S, D), context vectors ``syn1`` float32
(V, D), offsets ``sense_start`` int64 (V + 1,) and the expected sense counts of
the last epoch. Initialisation: every sense of word x starts at word2vec.c's
initial vector of x (uniform in [-0.5/D, 0.5/D)) plus independent noise
uniform in [-init_noise/D, init_noise/D) per sense, so the senses differ and
the E-step can tell them apart (symmetry breaking); u starts at 0. With a
warm-up (the default), the first epochs train plain skip-gram and the senses
then start from the word's vector: by clustering its occurrences' contexts
(``sense_init="cluster"``, :func:`cluster_senses`, :mod:`.cluster`) or with
Gaussian noise (``"noise"``, :func:`expand_senses`).

Prior (EM M-step, :func:`.objective.prior_from_counts`): after every chunk,
p(z|x) = (n(x,z) + beta) / (n(x) + K_x beta) with n the responsibilities summed
over the last epoch's worth of occurrences: this epoch's counts so far plus the
previous epoch's counts times the fraction of the epoch not yet seen ("stepwise
EM" over a one-epoch window). In the first epoch the prior starts uniform.

Pruning: after each epoch from ``prune_from_epoch`` on, senses with prior
below ``prune_threshold`` are removed (each word keeps its most probable sense)
and reported as :class:`.prune.PrunedSense`.

Warm start (``init``, a :class:`StartState` from :func:`.warm_start.grow_state`):
training starts from a trained model's sense vectors, context vectors and
offsets instead, with no warm-up (its context vectors are already informative,
which is what the warm-up is for), and the expected sense counts of the data
that model saw (``StartState.sense_counts``) are added to this run's in every
prior, so the prior of a word the new data barely holds stays what it was.
The learning rate restarts at ``alpha``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from replearn.lib.checkpoint import NPZ, latest_checkpoint, save_checkpoint
from replearn.lib.errors import CorpusError, TrainingError
from replearn.lib.multisense.cluster import cluster_directions, context_features
from replearn.lib.multisense.config import MultiSenseConfig
from replearn.lib.multisense.kernel import NOISE_MODES, train_chunk
from replearn.lib.multisense.model import MultiSenseVectors
from replearn.lib.multisense.objective import prior_from_counts, size_biased_order, stick_breaking_prior
from replearn.lib.multisense.prune import PrunedSense, prune_senses
from replearn.lib.multisense.senses import sense_offsets, senses_per_word
from replearn.lib.word2vec.corpus import EncodedCorpus
from replearn.lib.word2vec.hogbatch import train_block_shared
from replearn.lib.word2vec.sgns import alias_table
from replearn.lib.word2vec.sgns import train_chunk as sgns_train_chunk


@dataclass(frozen=True)
class StepLog:
    """One training step (one chunk).

    Attributes:
        step, epoch: indices from 0. words: corpus tokens processed so far over all epochs.
        loss: mean window NLL per centre occurrence in this step (nats).
        alpha: learning rate at the end of the step. senses: sense rows S at the step.
    """

    step: int
    epoch: int
    words: int
    loss: float
    alpha: float
    senses: int


@dataclass
class MultiSenseTrainResult:
    """Trained state and run figures.

    Attributes:
        sv: float32 (S, D) sense vectors. syn1: float32 (V, D) context vectors.
        sense_start: int64 (V + 1,) offsets. prior: float64 (S,) p(z|x).
        pruned: senses removed, in order (word id, sense index at pruning, prior, epoch).
        steps: per-step logs of this process. seconds: wall-clock time of this process.
        words: corpus tokens trained by this process. resumed_from_epoch: epochs loaded from a checkpoint.
    """

    sv: np.ndarray
    syn1: np.ndarray
    sense_start: np.ndarray
    prior: np.ndarray
    pruned: list[PrunedSense] = field(default_factory=list)
    steps: list[StepLog] = field(default_factory=list)
    seconds: float = 0.0
    words: int = 0
    resumed_from_epoch: int = 0

    @property
    def words_per_second(self) -> float:
        """Corpus tokens (in-vocabulary) per wall-clock second of this process."""
        return self.words / self.seconds if self.seconds > 0 else 0.0

    def to_vectors(self, words, counts: np.ndarray, noise_probs: np.ndarray,
                   config: MultiSenseConfig) -> MultiSenseVectors:
        """The query object over this result (words / counts: the vocabulary used for training)."""
        return MultiSenseVectors(words, counts, self.sense_start, self.sv, self.prior, self.syn1, noise_probs, config)


@dataclass(frozen=True)
class StartState:
    """Where a warm start begins (made by :func:`.warm_start.grow_state`).

    Attributes:
        sv: float32 (S, D) sense vectors. syn1: float32 (V, D) context vectors.
        sense_start: int64 (V + 1,) offsets, every word >= 1 sense.
        sense_counts: float64 (S,) >= 0, expected sense counts n(x, z) of the data seen before (one epoch's worth,
            in kept occurrences), added to this run's counts in every prior.
    """

    sv: np.ndarray
    syn1: np.ndarray
    sense_start: np.ndarray
    sense_counts: np.ndarray

    def check(self, vocab_size: int, config: MultiSenseConfig) -> None:
        """Raises ValueError when the arrays do not fit a vocabulary of ``vocab_size`` words and ``config``."""
        V, D = vocab_size, config.dim
        start = np.asarray(self.sense_start)
        S = int(start[-1]) if start.shape == (V + 1,) else -1
        if (start.shape != (V + 1,) or start[0] != 0 or (V and np.diff(start).min() < 1)
                or np.diff(start).max(initial=1) > config.max_senses or self.sv.shape != (S, D)
                or self.syn1.shape != (V, D) or self.sense_counts.shape != (S,)):
            raise ValueError(f"init state (sense_start {start.shape}, sv {self.sv.shape}, syn1 {self.syn1.shape}, "
                             f"sense_counts {self.sense_counts.shape}) does not fit {V} words of 1..{config.max_senses}"
                             f" senses in {D} dimensions")

    def digest(self) -> str:
        """SHA-256 (hex) of the arrays: tells a warm start's checkpoints from another start's."""
        h = hashlib.sha256()
        for a in (self.sv, self.syn1, self.sense_start, self.sense_counts):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


def init_state(counts: np.ndarray, config: MultiSenseConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial (sv (S, D), syn1 (V, D), sense_start (V + 1,)); see the module docstring."""
    V, D = len(counts), config.dim
    start = sense_offsets(senses_per_word(counts, config.max_senses, config.sense_min_count, config.sense_count_base))
    rng = np.random.default_rng(config.seed)
    base = (rng.random((V, D), dtype=np.float32) - 0.5) / D
    owner = np.repeat(np.arange(V), np.diff(start))
    noise = (rng.random((len(owner), D), dtype=np.float32) - 0.5) * (2 * config.init_noise / D)
    sv = np.ascontiguousarray(base[owner] + noise.astype(np.float32), dtype=np.float32)
    syn1 = np.zeros((V, D), dtype=np.float32)
    return sv, syn1, start


def expand_senses(syn0: np.ndarray, counts: np.ndarray, config: MultiSenseConfig) -> tuple[np.ndarray, np.ndarray]:
    """Sense vectors from single-sense vectors after the warm-up: (sv (S, D), sense_start (V + 1,)).

    Sense z of word x = v_x + N(0, (init_noise |v_x|)^2 / D I), seeded by config.seed.
    """
    start = sense_offsets(senses_per_word(counts, config.max_senses, config.sense_min_count, config.sense_count_base))
    owner = np.repeat(np.arange(len(counts)), np.diff(start))
    rng = np.random.default_rng([config.seed, 1])
    scale = config.init_noise * np.linalg.norm(syn0, axis=1) / np.sqrt(syn0.shape[1])
    noise = rng.standard_normal((len(owner), syn0.shape[1])) * scale[owner, None]
    noise[np.diff(start)[owner] == 1] = 0.0  # single-sense words keep their vector
    return np.ascontiguousarray(syn0[owner] + noise, dtype=np.float32), start


def cluster_senses(syn0: np.ndarray, syn1: np.ndarray, corpus: EncodedCorpus, counts: np.ndarray,
                   config: MultiSenseConfig, keep_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sense vectors after the warm-up by clustering occurrences (:mod:`.cluster`): (sv (S, D), sense_start).

    Sense z of a word x with K_x > 1 = v_x + init_noise |v_x| d_z, d_z the unit
    direction of its z-th context cluster; words that could not be clustered get
    :func:`expand_senses`' noise; single-sense words keep v_x.
    """
    sv, start = expand_senses(syn0, counts, config)
    k = np.diff(start)
    D = syn1.shape[1]
    rows = syn1
    if config.cluster_features == "input":  # [u(y) | keep(y) v(y) / |v(y)|]: one pass gives both features
        nrm = np.linalg.norm(syn0, axis=1, keepdims=True)
        unit = np.divide(syn0, nrm, out=np.zeros_like(syn0), where=nrm > 0)
        rows = np.concatenate([syn1, unit * np.asarray(keep_prob, dtype=np.float32)[:, None]], axis=1)
    words, feats = context_features(corpus, rows, None, k > 1, config.cluster_occurrences, config.cluster_window,
                                    config.seed)
    for x, d in cluster_directions(words, feats[:, -D:], k, direction_feats=feats[:, :D]).items():
        scale = config.init_noise * float(np.linalg.norm(syn0[x]))
        sv[start[x]:start[x + 1]] = (syn0[x][None, :] + scale * d).astype(np.float32)
    return sv, start


_STATE_FIELDS = ("sv", "syn1", "sense_start", "prev_counts", "noise_ll", "pruned")
"""Checkpoint payload fields of :class:`_SenseState` a checkpoint must hold (``base_counts``: zeros when absent)."""


@dataclass
class _SenseState:
    """The state carried from epoch to epoch (module docstring); arrays are replaced on sense init and pruning.

    Attributes:
        sv: float32 (S, D) sense vectors. syn1: float32 (V, D) context vectors.
        start: int64 (V + 1,) sense offsets. prev: float64 (S,) expected sense counts of the last epoch.
        noise_ll: float64 (S,) per-sense noise log-likelihood state of the kernel.
        pruned: senses removed so far, in order.
        base: float64 (S,) expected sense counts of the data seen before this run (a warm start's
            :attr:`StartState.sense_counts`; zeros otherwise), added to the counts in every prior.
    """

    sv: np.ndarray
    syn1: np.ndarray
    start: np.ndarray
    prev: np.ndarray
    noise_ll: np.ndarray
    pruned: list[PrunedSense]
    base: np.ndarray

    def prior(self, counts: np.ndarray, config: MultiSenseConfig) -> np.ndarray:
        """float64 (S,) p(z|x) from this run's expected sense ``counts`` (S,) and :attr:`base`, by
        ``config.prior`` (:func:`.objective.prior_from_counts` or :func:`.objective.stick_breaking_prior`)."""
        if config.prior == "stick_breaking":
            return stick_breaking_prior(self.base + counts, self.start, config.dp_alpha)
        return prior_from_counts(self.base + counts, self.start, config.prior_smoothing)

    def take(self, rows: np.ndarray, start: np.ndarray) -> None:
        """Keep the sense rows ``rows`` (int64 (S',), in that order; pruning or reordering), with offsets ``start``."""
        self.sv = np.ascontiguousarray(self.sv[rows])
        self.prev, self.noise_ll, self.base = self.prev[rows], self.noise_ll[rows], self.base[rows]
        self.start = start

    def payload(self) -> dict:
        """Checkpoint payload: the arrays, and ``pruned`` as JSON-able ``[word, sense, prior, epoch]`` lists."""
        return {"sv": self.sv, "syn1": self.syn1, "sense_start": self.start, "prev_counts": self.prev,
                "noise_ll": self.noise_ll, "pruned": [[p.word, p.sense, p.prior, p.epoch] for p in self.pruned],
                "base_counts": self.base}

    @classmethod
    def from_payload(cls, d: dict) -> _SenseState:
        """Inverse of :meth:`payload` (a checkpoint written before ``base_counts`` existed: zeros)."""
        pruned = [PrunedSense(int(a), int(b), float(c), int(e)) for a, b, c, e in d["pruned"]]
        base = d.get("base_counts")
        return cls(d["sv"], d["syn1"], d["sense_start"], d["prev_counts"], d["noise_ll"], pruned,
                   np.zeros(len(d["sv"]), dtype=np.float64) if base is None else base)


@dataclass(frozen=True)
class _Run:
    """What stays fixed over one :func:`train_multisense` call (its inputs, prepared).

    ``warmup_epochs``: the config's, or 0 for a warm start. ``key``: what a checkpoint must match.
    """

    corpus: EncodedCorpus
    counts: np.ndarray
    config: MultiSenseConfig
    keep_prob: np.ndarray
    noise: tuple[np.ndarray, np.ndarray]
    total: float
    pool: ThreadPoolExecutor | None
    on_step: Callable[[StepLog], None] | None
    bar: tqdm
    checkpoint_dir: Path | str | None
    warmup_epochs: int
    key: dict


def _checkpoint_key(config: MultiSenseConfig, vocab_size: int, init: StartState | None = None) -> dict:
    """What a checkpoint must match to be resumed: the training config (threads excluded), V and, for a warm
    start, its starting state (a digest, inside ``config``: a key is matched field by field, so a fresh run's
    key, which has no such entry, must still differ from a warm start's)."""
    key = config.training_key()
    return {"vocab_size": vocab_size, "config": key if init is None else {**key, "init": init.digest()}}


def _initial_state(counts: np.ndarray, config: MultiSenseConfig, checkpoint_dir: Path | str | None,
                   init: StartState | None, key: dict) -> tuple[_SenseState, int]:
    """(state, epochs done): the newest checkpoint in ``checkpoint_dir`` matching ``key``, else the initial state.

    With a warm-up, the initial state has one sense per word (plain skip-gram); a warm start's is ``init``
    (copied).
    """
    V = len(counts)
    base = None
    if init is not None:
        sv, syn1, start = (np.array(a, dtype=t, order="C", copy=True) for a, t in
                           ((init.sv, np.float32), (init.syn1, np.float32), (init.sense_start, np.int64)))
        base = np.array(init.sense_counts, dtype=np.float64, copy=True)
    elif config.warmup_epochs > 0:
        sv, syn1, _ = init_state(counts, MultiSenseConfig.from_dict({**config.to_dict(), "max_senses": 1}))
        start = np.arange(V + 1, dtype=np.int64)
    else:
        sv, syn1, start = init_state(counts, config)
    state = _SenseState(sv, syn1, start, np.zeros(len(sv), dtype=np.float64), np.full(len(sv), -np.log(2.0)), [],
                        np.zeros(len(sv), dtype=np.float64) if base is None else base)
    if checkpoint_dir is not None:
        found = latest_checkpoint(checkpoint_dir, key=key, fmt=NPZ, max_epoch=config.epochs, fields=_STATE_FIELDS)
        if found is not None:
            return _SenseState.from_payload(found.payload), found.epoch
    return state, 0


def _init_senses(run: _Run, state: _SenseState,
                 after_sense_init: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None] | None) -> None:
    """After the warm-up: senses from the warm-up vectors (``config.sense_init``), counts and noise state reset."""
    syn0 = state.sv
    if run.config.sense_init == "cluster":
        sv, start = cluster_senses(syn0, state.syn1, run.corpus, run.counts, run.config, run.keep_prob)
    else:
        sv, start = expand_senses(syn0, run.counts, run.config)
    if after_sense_init is not None:
        after_sense_init(sv, start, syn0, state.syn1)
    state.sv, state.start = sv, start
    state.prev = _even_counts(run, start)
    state.noise_ll = np.full(len(sv), -np.log(2.0))
    state.base = np.zeros(len(sv), dtype=np.float64)


def _even_counts(run: _Run, start: np.ndarray) -> np.ndarray:
    """The expected sense counts (S,) the first EM epoch starts from, as if the last epoch had been seen.

    Dirichlet prior: zeros (the prior starts uniform). Stick-breaking prior: every word's kept occurrences
    split evenly over its senses; with zeros it would start at p(z > 1|x) of about exp(psi(alpha) - psi(1 +
    alpha)), e^-10 for alpha = 0.1, and every occurrence would go to the first sense before the senses differ.
    """
    if run.config.prior != "stick_breaking":
        return np.zeros(int(start[-1]), dtype=np.float64)
    k = np.diff(start)
    per_sense = np.asarray(run.counts, dtype=np.float64) * run.keep_prob / k
    return np.repeat(per_sense, k)


def _train_epoch(run: _Run, state: _SenseState, result: MultiSenseTrainResult, epoch: int, step: int) -> int:
    """One pass over the corpus, chunk by chunk (stepwise EM prior); returns the next step index.

    Leaves this epoch's expected sense counts, float64 (S,), in ``state.prev``. A warm-up epoch with
    ``kernel="shared"`` is plain skip-gram on word2vec's shared-negatives kernel (:mod:`replearn.lib.word2vec
    .hogbatch`, word2vec.c's orientation; its logged loss is per (centre, context) pair, not per window).
    """
    corpus, config, V = run.corpus, run.config, len(run.counts)
    done = epoch * corpus.n_tokens
    warm = epoch < run.warmup_epochs
    cur = np.zeros(len(state.sv), dtype=np.float64)
    seen = 0
    for chunk, (ids, bounds) in enumerate(corpus.iter_chunks(config.chunk_tokens)):
        if len(ids) and int(ids.max()) >= V:
            raise CorpusError(f"encoded corpus {corpus.path} has word id {int(ids.max())} >= vocabulary "
                              f"size {V}; encode it with the same vocabulary")
        frac_left = max(0.0, 1.0 - seen / corpus.n_tokens)
        log_prior = np.log(state.prior(cur + frac_left * state.prev, config))
        if warm and config.kernel == "shared":  # plain skip-gram: word2vec's shared-negatives kernel
            loss, centres, words = sgns_train_chunk(
                state.sv, state.syn1, ids, bounds, keep_prob=run.keep_prob, noise=run.noise, window=config.window,
                negative=config.negative, alpha0=config.alpha, alpha1=config.min_alpha, progress0=done / run.total,
                total_words=run.total, seed=config.seed, epoch=epoch, chunk=chunk, executor=run.pool,
                block=train_block_shared)
        else:
            loss, centres, words = train_chunk(
                state.sv, state.syn1, state.start, log_prior, cur, ids, bounds, keep_prob=run.keep_prob,
                noise=run.noise, window=config.window, negative=config.negative, alpha0=config.alpha,
                alpha1=config.min_alpha, progress0=done / run.total, total_words=run.total, seed=config.seed, epoch=epoch, chunk=chunk,
                executor=run.pool, sample_sense=config.estep == "sample" and not warm,
                noise_mode=NOISE_MODES[config.estep_noise], noise_ll=state.noise_ll,
                estep_window=0 if warm else config.estep_window, shared=config.kernel == "shared",
                share=config.noise_share)
        seen += words
        done += words
        result.words += words
        alpha = config.alpha - (config.alpha - config.min_alpha) * min(done / run.total, 1.0)
        log = StepLog(step, epoch, done, loss / max(centres, 1), alpha, len(state.sv))
        result.steps.append(log)
        if run.on_step is not None:
            run.on_step(log)
        run.bar.update(words)
        run.bar.set_postfix(loss=f"{log.loss:.3f}", alpha=f"{alpha:.4f}")
        step += 1
    state.prev = cur
    return step


def _end_epoch(run: _Run, state: _SenseState, result: MultiSenseTrainResult, epoch: int) -> None:
    """After epoch ``epoch`` (0-based): NaN guard, pruning by the re-estimated prior, checkpoint."""
    config = run.config
    if not np.isfinite(state.sv).all() or not np.isfinite(state.syn1).all():
        raise TrainingError(f"non-finite vectors after epoch {epoch + 1}; lower alpha (now {config.alpha})",
                            result.steps)
    em = epoch + 1 > run.warmup_epochs
    if em and config.prior == "stick_breaking":
        state.take(size_biased_order(state.base + state.prev, state.start), state.start)
    prior = state.prior(state.prev, config)
    if config.prune_threshold > 0 and epoch + 1 >= max(config.prune_from_epoch, run.warmup_epochs + 1):
        keep, start, gone = prune_senses(prior, state.start, config.prune_threshold, epoch + 1)
        if gone:
            state.take(keep, start)
            state.pruned.extend(gone)
    if run.checkpoint_dir is not None:
        save_checkpoint(run.checkpoint_dir, epoch + 1, state.payload(), key=run.key, fmt=NPZ)


def train_multisense(corpus: EncodedCorpus, counts: np.ndarray, config: MultiSenseConfig, *, keep_prob: np.ndarray,
                     noise_probs: np.ndarray, checkpoint_dir: Path | None = None,
                     on_step: Callable[[StepLog], None] | None = None, progress: bool = False,
                     after_sense_init: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None] | None = None,
                     init: StartState | None = None) -> MultiSenseTrainResult:
    """Train multi-sense skip-gram by maximum marginal likelihood (EM, see :mod:`.kernel`).

    Args:
        corpus: the encoded corpus (ids in [0, V)), e.g. from ``encode_corpus``.
        counts: int64 (V,) vocabulary counts (defines V and the senses per word).
        config: hyperparameters.
        keep_prob: float64 (V,) subsampling keep probabilities (``vocab.keep_probability``).
        noise_probs: float64 (V,) noise distribution (``vocab.noise_distribution``).
        checkpoint_dir: a checkpoint (``epoch-NNNN.npz``, :mod:`replearn.lib.checkpoint`) is written after
            each epoch; one made with the same training config and vocabulary size is resumed from.
        on_step: called after every step. progress: tqdm bar over tokens.
        after_sense_init: called once, right after the senses are initialised from the warm-up, with
            ``(sv (S, D), sense_start (V + 1,), syn0 (V, D) warm-up vectors, syn1 (V, D))``; it may overwrite
            rows of ``sv`` in place. For diagnostics, e.g. the oracle init of bench/multisense_pseudowords.py.
        init: a warm start (:func:`.warm_start.grow_state`): training starts from these arrays (copied, never
            changed), with no warm-up (``after_sense_init`` is not called), its ``sense_counts`` added to the
            counts of every prior; its checkpoints resume only a run with the same start. None: a fresh start
            (module docstring).

    Returns:
        :class:`MultiSenseTrainResult` (call ``.to_vectors(...)`` for the query object).

    Raises:
        CorpusError: the corpus holds no tokens, or its ids exceed the vocabulary.
        TrainingError: vectors became NaN/Inf (lower alpha).
        ValueError: ``init`` does not fit the vocabulary and ``config`` (:meth:`StartState.check`).
    """
    if corpus.n_tokens == 0:
        raise CorpusError(f"encoded corpus {corpus.path} holds no in-vocabulary tokens; lower min_count")
    counts = np.asarray(counts, dtype=np.int64)
    if init is not None:
        init.check(len(counts), config)
    key = _checkpoint_key(config, len(counts), init)
    state, start_epoch = _initial_state(counts, config, checkpoint_dir, init, key)
    noise = alias_table(noise_probs)
    keep_prob = np.ascontiguousarray(keep_prob, dtype=np.float64)
    total = float(corpus.n_tokens) * config.epochs
    result = MultiSenseTrainResult(state.sv, state.syn1, state.start, state.prior(state.prev, config),
                                   pruned=state.pruned, resumed_from_epoch=start_epoch)
    step = start_epoch * -(-corpus.n_tokens // config.chunk_tokens)
    bar = tqdm(total=int(total), initial=int(start_epoch * corpus.n_tokens), unit="w", unit_scale=True,
               disable=not progress, desc="multisense")
    pool = ThreadPoolExecutor(config.threads) if config.threads > 1 else None
    run = _Run(corpus, counts, config, keep_prob, noise, total, pool, on_step, bar, checkpoint_dir,
               0 if init is not None else config.warmup_epochs, key)
    if start_epoch == 0 and init is None and run.warmup_epochs == 0:  # EM from the first epoch
        state.prev = _even_counts(run, state.start)
    t0 = time.perf_counter()
    try:
        for epoch in range(start_epoch, config.epochs):
            if epoch == run.warmup_epochs and run.warmup_epochs > 0:
                _init_senses(run, state, after_sense_init)
            step = _train_epoch(run, state, result, epoch, step)
            _end_epoch(run, state, result, epoch)
    finally:
        if pool is not None:
            pool.shutdown()
    result.sv, result.syn1, result.sense_start = state.sv, state.syn1, state.start
    result.prior = state.prior(state.prev, config)
    result.pruned = state.pruned
    result.seconds = time.perf_counter() - t0
    bar.close()
    return result
