"""Skip-gram training loop: epochs, chunks, learning-rate decay, checkpoints, resume.

The trained state is two matrices, input vectors V (``syn0``) and context
vectors U (``syn1``), both float32 (V_size, D). Initialisation follows
word2vec.c: V uniform in [-0.5/D, 0.5/D), U zero.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from replearn.lib.checkpoint import NPZ, latest_checkpoint, save_checkpoint
from replearn.lib.errors import TrainingError
from replearn.lib.word2vec.config import Word2VecConfig
from replearn.lib.word2vec.corpus import EncodedCorpus
from replearn.lib.word2vec.hogbatch import train_block_shared
from replearn.lib.word2vec.sgns import alias_table, train_block_pair, train_chunk

#: The compiled block kernel of each ``Word2VecConfig.kernel``.
KERNELS = {"shared": train_block_shared, "pair": train_block_pair}


@dataclass(frozen=True)
class StepLog:
    """One training step (one chunk of about ``chunk_tokens`` tokens).

    Attributes:
        step: global step index, from 0. epoch: epoch index, from 0.
        words: corpus tokens processed so far over all epochs.
        loss: mean loss per positive pair in this step (nats), not cumulative.
        alpha: learning rate at the end of the step.
    """

    step: int
    epoch: int
    words: int
    loss: float
    alpha: float


@dataclass
class TrainResult:
    """Trained matrices and run figures.

    Attributes:
        syn0: float32 (V, D) input vectors v(x). syn1: float32 (V, D) context vectors u(y).
        steps: per-step logs of this process (resumed epochs excluded).
        seconds: wall-clock training time of this process.
        words: corpus tokens trained by this process (epochs x tokens).
        resumed_from_epoch: epochs loaded from a checkpoint (0 if fresh).
    """

    syn0: np.ndarray
    syn1: np.ndarray
    steps: list[StepLog] = field(default_factory=list)
    seconds: float = 0.0
    words: int = 0
    resumed_from_epoch: int = 0

    @property
    def words_per_second(self) -> float:
        """Corpus tokens per wall-clock second of this process."""
        return self.words / self.seconds if self.seconds > 0 else 0.0


def init_matrices(vocab_size: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """word2vec.c initialisation: V ~ U[-0.5/D, 0.5/D), U = 0; float32 (V, D) each."""
    rng = np.random.default_rng(seed)
    syn0 = ((rng.random((vocab_size, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    syn1 = np.zeros((vocab_size, dim), dtype=np.float32)
    return syn0, syn1


def _checkpoint_key(config: Word2VecConfig, vocab_size: int) -> dict:
    """What a checkpoint must match to be resumed: the training config (threads excluded) and V."""
    return {"vocab_size": vocab_size, "config": config.training_key()}


def train_sgns(corpus: EncodedCorpus, counts: np.ndarray, config: Word2VecConfig, *,
               keep_prob: np.ndarray, noise_probs: np.ndarray, checkpoint_dir: Path | str | None = None,
               on_step: Callable[[StepLog], None] | None = None, progress: bool = False,
               init: tuple[np.ndarray, np.ndarray] | None = None) -> TrainResult:
    """Train skip-gram with negative sampling on an encoded corpus.

    Args:
        corpus: the encoded corpus (ids in [0, V)).
        counts: int64 (V,) vocabulary counts (defines V).
        config: hyperparameters; ``config.objective`` must be "negative_sampling".
        keep_prob: float64 (V,) subsampling keep probabilities (see vocab.keep_probability).
        noise_probs: float64 (V,) noise distribution (unigram^0.75, normalised).
        checkpoint_dir: where a checkpoint (``epoch-NNNN.npz``, :mod:`replearn.lib.checkpoint`) is
            written after each epoch; if it holds one made with the same training config and
            vocabulary size, training resumes after that epoch.
        on_step: called after every step with its :class:`StepLog`.
        progress: show a tqdm progress bar over corpus tokens.
        init: the starting (input, context) matrices, float32 (V, D) each (a warm start:
            lib/word2vec/warm_start.py); None: word2vec.c's random initialisation. Copied, never changed.

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: empty corpus, objective not "negative_sampling", or ``init`` not (V, config.dim) each.
        TrainingError: the vectors became NaN/Inf (a learning rate too high for the data).
    """
    if config.objective != "negative_sampling":
        raise ValueError(f"train_sgns needs objective='negative_sampling', got {config.objective!r}")
    if corpus.n_tokens == 0:
        raise ValueError(f"encoded corpus {corpus.path} holds no in-vocabulary tokens; lower min_count")
    V = len(counts)
    if init is None:
        syn0, syn1 = init_matrices(V, config.dim, config.seed)
    else:
        if any(m.shape != (V, config.dim) for m in init):
            raise ValueError(f"init matrices {[m.shape for m in init]} do not match ({V}, {config.dim})")
        syn0, syn1 = (np.array(m, dtype=np.float32, order="C", copy=True) for m in init)
    start_epoch = 0
    key = _checkpoint_key(config, V)
    if checkpoint_dir is not None:
        found = latest_checkpoint(checkpoint_dir, key=key, fmt=NPZ, max_epoch=config.epochs, fields=("syn0", "syn1"))
        if found is not None:
            start_epoch, syn0, syn1 = found.epoch, found.payload["syn0"], found.payload["syn1"]
    noise = alias_table(noise_probs)
    keep_prob = np.ascontiguousarray(keep_prob, dtype=np.float64)
    total = float(corpus.n_tokens) * config.epochs
    result = TrainResult(syn0, syn1, resumed_from_epoch=start_epoch)
    step = start_epoch * -(-corpus.n_tokens // config.chunk_tokens)
    bar = tqdm(total=int(total), initial=int(start_epoch * corpus.n_tokens), unit="w", unit_scale=True,
               disable=not progress, desc="sgns")
    pool = ThreadPoolExecutor(config.threads) if config.threads > 1 else None
    t0 = time.perf_counter()
    try:
        for epoch in range(start_epoch, config.epochs):
            done = epoch * corpus.n_tokens
            for chunk, (ids, bounds) in enumerate(corpus.iter_chunks(config.chunk_tokens)):
                loss, pairs, words = train_chunk(
                    syn0, syn1, ids, bounds, keep_prob=keep_prob, noise=noise, window=config.window,
                    negative=config.negative, alpha0=config.alpha, alpha1=config.min_alpha, progress0=done / total,
                    total_words=total, seed=config.seed, epoch=epoch, chunk=chunk, executor=pool,
                    block=KERNELS[config.kernel])
                done += words
                result.words += words
                alpha = config.alpha - (config.alpha - config.min_alpha) * min(done / total, 1.0)
                log = StepLog(step, epoch, done, loss / max(pairs, 1), alpha)
                result.steps.append(log)
                if on_step is not None:
                    on_step(log)
                bar.update(words)
                bar.set_postfix(loss=f"{log.loss:.3f}", alpha=f"{alpha:.4f}")
                step += 1
            if not np.isfinite(syn0).all() or not np.isfinite(syn1).all():
                raise TrainingError(f"skip-gram diverged: non-finite vectors after epoch {epoch + 1} at learning "
                                    f"rate {config.alpha}; lower --alpha (default 0.025)")
            if checkpoint_dir is not None:
                save_checkpoint(checkpoint_dir, epoch + 1, {"syn0": syn0, "syn1": syn1}, key=key, fmt=NPZ)
    finally:
        if pool is not None:
            pool.shutdown()
    result.seconds = time.perf_counter() - t0
    bar.close()
    return result
