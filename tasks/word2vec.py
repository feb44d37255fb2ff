"""Prefect tasks for skip-gram: encode the corpus to ids, train, save the matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import task
from prefect.logging import get_run_logger

from replearn.lib.errors import ReplearnInputError
from replearn.lib.store.atomic import atomic_write_npz, read_npz
from replearn.lib.text.vocab import keep_probability, noise_distribution, read_vocabulary
from replearn.lib.word2vec.config import Word2VecConfig
from replearn.lib.word2vec.corpus import EncodedCorpus, encode_corpus
from replearn.lib.word2vec.trainer import StepLog, train_sgns
from replearn.lib.word2vec.warm_start import grow_matrices
from replearn.infra.caching import STAGE_CACHE
from replearn.infra.checkpoints import training_checkpoints
from replearn.infra.stage_outputs import Encoded, Trained
from replearn.infra.plots import log_step_loss
from replearn.infra.tracking import log_metrics, log_params


@task(name="encode-corpus", cache_policy=STAGE_CACHE, persist_result=True)
def encode_task(token_dir: str, vocab_path: str, out_dir: str, max_sentence_tokens: int | None) -> Encoded:
    """Map token shards to vocabulary ids (out-of-vocabulary words removed) under ``out_dir``."""
    vocab = read_vocabulary(Path(vocab_path))
    shards = sorted(Path(token_dir).glob("*.parquet"))
    corpus = encode_corpus(shards, vocab.words, Path(out_dir), max_sentence_tokens=max_sentence_tokens)
    return Encoded(path=str(corpus.path), n_tokens=corpus.n_tokens, n_sentences=corpus.n_sentences,
                   raw_tokens=corpus.raw_tokens)


@task(name="train-word2vec", cache_policy=STAGE_CACHE, persist_result=True)
def train_task(encoded_dir: str, vocab_path: str, config: dict, checkpoint_dir: str, out_path: str,
               tracking_uri: str, run_id: str, init: dict[str, str] | None = None) -> Trained:
    """Train skip-gram (negative sampling or full softmax); log loss per step and a loss plot to MLflow.

    ``init``: a warm start (negative sampling only) from the files of a registered model (tasks/init_model.py:
    ``vectors``, the .npz of its input and context matrices, and ``vocabulary``): its words keep their rows, new
    words start as word2vec.c starts every word (lib/word2vec/warm_start.py), the learning rate restarts at
    ``alpha``.

    Writes ``out_path`` (.npz with ``input`` = V and ``context`` = U, float32 (V, D)) atomically.
    A run killed mid-training resumes from the last epoch checkpoint in ``checkpoint_dir``. The task holds an
    exclusive lock on that folder while it trains (lib/store/folder_lock.py): an identical run started meanwhile
    checkpoints to ``<checkpoint_dir>.1`` (and says so) instead of sharing, and deleting, this run's checkpoints.
    """
    with training_checkpoints(checkpoint_dir) as folder:
        return _train(encoded_dir, vocab_path, config, folder, out_path, tracking_uri, run_id, init)


def _warm_start(init: dict[str, str], words: tuple[str, ...], cfg: Word2VecConfig) -> tuple[np.ndarray, np.ndarray]:
    """The starting matrices of a warm start from ``init``'s files (:func:`grow_matrices`).

    Raises:
        ReplearnInputError: the model's dimension is not ``cfg.dim``; the objective is not negative sampling.
    """
    if cfg.objective != "negative_sampling":
        raise ReplearnInputError("--init-from continues negative-sampling models only; leave --objective softmax out")
    old = read_npz(init["vectors"])
    if old["input"].shape[1] != cfg.dim:
        raise ReplearnInputError(f"the model to continue from has {old['input'].shape[1]}-dimensional vectors; "
                                 f"--dim {cfg.dim} differs: pass --dim {old['input'].shape[1]}")
    syn0, syn1, known = grow_matrices(words, read_vocabulary(Path(init["vocabulary"])).words, old["input"],
                                      old["context"], cfg.seed)
    kept = int(known.sum())
    get_run_logger().info("warm start: %d of %d words keep their vectors, %d are new", kept, len(words),
                          len(words) - kept)
    return syn0, syn1


def _train(encoded_dir: str, vocab_path: str, config: dict, checkpoint_dir: Path, out_path: str, tracking_uri: str,
           run_id: str, init: dict[str, str] | None = None) -> Trained:
    """The body of :func:`train_task`, with the checkpoint folder locked."""
    cfg = Word2VecConfig.from_dict(config)
    vocab = read_vocabulary(Path(vocab_path))
    corpus = EncodedCorpus.open(Path(encoded_dir))
    keep = keep_probability(vocab.counts, cfg.sample)
    start = _warm_start(init, vocab.words, cfg) if init else None
    log_params(tracking_uri, run_id, cfg.to_dict(), prefix="train.")

    def on_step(s: StepLog) -> None:
        log_metrics(tracking_uri, run_id, {"train.loss": s.loss, "train.alpha": s.alpha, "train.words": s.words},
                    step=s.step)

    if cfg.objective == "softmax":
        from replearn.lib.word2vec.softmax import train_softmax  # torch: imported only for this objective

        result = train_softmax(corpus, vocab.counts, cfg, keep_prob=keep, on_step=on_step, progress=True)
    else:
        result = train_sgns(corpus, vocab.counts, cfg, keep_prob=keep,
                            noise_probs=noise_distribution(vocab.counts, cfg.ns_exponent),
                            checkpoint_dir=checkpoint_dir, on_step=on_step, progress=True, init=start)
    atomic_write_npz(out_path, input=result.syn0, context=result.syn1)
    raw_wps = corpus.raw_tokens / corpus.n_tokens * result.words_per_second if corpus.n_tokens else 0.0
    figures = {"train.seconds": result.seconds, "train.words_per_second": raw_wps,
               "train.resumed_from_epoch": result.resumed_from_epoch}
    log_metrics(tracking_uri, run_id, figures)
    if result.steps:
        log_step_loss(tracking_uri, run_id, result.steps, "mean loss per pair (nats)", "skip-gram training loss")
    trained = cfg.epochs - result.resumed_from_epoch
    resumed = f" after resuming from the epoch-{result.resumed_from_epoch} checkpoint" if result.resumed_from_epoch else ""
    get_run_logger().info("trained %d epoch(s) in %.1f s (%.0f corpus words/s)%s", trained, result.seconds, raw_wps,
                          resumed)
    return Trained(path=out_path, figures={**figures, "final_loss": result.steps[-1].loss if result.steps else None})
