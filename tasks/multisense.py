"""Prefect tasks for multi-sense word vectors: pseudo-words, train (EM), evaluate, export one row per (word, sense)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.logging import get_run_logger

from replearn.lib.eval.similarity import simlex999_path, wordsim353_path
from replearn.lib.multisense.config import MultiSenseConfig
from replearn.lib.multisense.model import MultiSenseVectors
from replearn.lib.multisense.pseudoword_store import VOCAB_FILE, load_pseudoword_data, save_pseudoword_data
from replearn.lib.multisense.pair_choice import choose_unrelated_pairs
from replearn.lib.multisense.pseudowords import build_pseudoword_corpus
from replearn.lib.multisense.similarity import evaluate_average, evaluate_maxsim
from replearn.lib.multisense.trainer import StartState, StepLog, train_multisense
from replearn.lib.multisense.warm_start import grow_state
from replearn.lib.multisense.wsi_mapping import MAP_FRACTION, evaluate_mapped, mean_scores
from replearn.lib.store.embeddings_table import EmbeddingsMetadata, write_embeddings
from replearn.lib.text.vocab import keep_probability, noise_distribution, read_vocabulary
from replearn.lib.word2vec.corpus import EncodedCorpus
from replearn.infra.caching import STAGE_CACHE
from replearn.infra.checkpoints import training_checkpoints
from replearn.infra.plots import log_step_loss
from replearn.infra.stage_outputs import Embeddings, Evaluation, Pseudowords, Trained
from replearn.infra.tracking import client, log_metrics, log_params
from replearn.tasks.evaluate_words import similarity_or_nan

AMBIGUOUS = ("bank", "spring", "bear", "fair", "light", "ring", "well", "bark", "match", "rock")


@task(name="pseudo-words", cache_policy=STAGE_CACHE, persist_result=True)
def pseudowords_task(encoded_dir: str, vocab_path: str, out_dir: str, n_pairs: int, seed: int, tracking_uri: str,
                     run_id: str, threads: int = 2) -> Pseudowords:
    """Merge ``n_pairs`` pairs of similarly frequent, unrelated content words into one token each and hold out
    10 % of the sentences.

    The pairs are those of :func:`~replearn.lib.multisense.pair_choice.choose_unrelated_pairs`: cosine below 0.2
    in a reference skip-gram trained on the *unmerged* corpus (``seed``, ``threads``); the cosines go to MLflow.

    Writes the training corpus, its vocabulary and the occurrences of the merged
    tokens (training and held-out) under ``out_dir``
    (:mod:`~replearn.lib.multisense.pseudoword_store`); evaluation reads them back.
    """
    vocab = read_vocabulary(Path(vocab_path))
    corpus = EncodedCorpus.open(Path(encoded_dir))
    pairs, cosines = choose_unrelated_pairs(corpus, vocab, n_pairs, seed, threads)
    data = build_pseudoword_corpus(corpus, vocab, pairs, Path(out_dir) / "corpus", seed=seed)
    save_pseudoword_data(data, Path(out_dir))
    log_params(tracking_uri, run_id, {"pairs": " ".join(data.merged), "reference_cosines": json.dumps(cosines)},
               prefix="pseudowords.")
    log_metrics(tracking_uri, run_id, {"pseudowords.pairs": float(len(pairs)),
                                       "pseudowords.test_sentences": float(data.test_sentences)})
    return Pseudowords(dir=out_dir, encoded=str(data.corpus.path), vocab=str(Path(out_dir) / VOCAB_FILE),
                       pairs=[list(p) for p in pairs])


@task(name="train-multisense", cache_policy=STAGE_CACHE, persist_result=True)
def train_multisense_task(encoded_dir: str, vocab_path: str, config: dict, checkpoint_dir: str, out_path: str,
                          tracking_uri: str, run_id: str, init: str | None = None) -> Trained:
    """Train sense vectors, context vectors and priors by EM; log loss per step, pruned senses; save the model.

    ``init``: a warm start from the model file (.npz, :meth:`MultiSenseVectors.save`) of a registered model
    (tasks/init_model.py): its words keep their senses, context vectors and sense statistics at their new ids, new
    words start as a fresh run starts them (lib/multisense/warm_start.py), there is no warm-up, and the learning
    rate restarts at ``alpha``.

    Checkpoints each epoch to ``checkpoint_dir`` (held, then removed once the model is saved:
    infra/checkpoints.py), so a killed run started again with the same inputs resumes.

    Raises:
        ReplearnInputError: the model to continue from has another ``dim`` or ``max_senses``.
    """
    cfg = MultiSenseConfig.from_dict(config)
    vocab = read_vocabulary(Path(vocab_path))
    corpus = EncodedCorpus.open(Path(encoded_dir))
    noise = noise_distribution(vocab.counts, cfg.ns_exponent)
    keep = keep_probability(vocab.counts, cfg.sample)
    start = _warm_start(init, vocab.words, vocab.counts, keep, cfg) if init else None
    log_params(tracking_uri, run_id, cfg.to_dict(), prefix="train.")

    def on_step(s: StepLog) -> None:
        log_metrics(tracking_uri, run_id, {"train.loss": s.loss, "train.alpha": s.alpha,
                                           "train.senses": float(s.senses)}, step=s.step)

    with training_checkpoints(checkpoint_dir) as folder:
        result = train_multisense(corpus, vocab.counts, cfg, keep_prob=keep, noise_probs=noise, checkpoint_dir=folder,
                                  on_step=on_step, progress=True, init=start)
        model = result.to_vectors(list(vocab.words), vocab.counts, noise, cfg)
        model.save(Path(out_path))
    pruned = [{"word": vocab.words[p.word], "sense": p.sense, "prior": round(p.prior, 4), "epoch": p.epoch}
              for p in result.pruned]
    client(tracking_uri).log_text(run_id, json.dumps(pruned, indent=1), "train/pruned_senses.json")
    log_metrics(tracking_uri, run_id, {"train.words_per_second": result.words_per_second,
                                       "train.resumed_from_epoch": float(result.resumed_from_epoch),
                                       "train.pruned_senses": float(len(pruned)),
                                       "train.sense_rows": float(len(model.vectors))})
    if result.steps:
        log_step_loss(tracking_uri, run_id, result.steps, "window NLL per centre word (nats)", "multi-sense skip-gram (marginal likelihood)")
    get_run_logger().info("trained %d sense vectors for %d words; %d senses pruned (prior below threshold)",
                          len(model.vectors), len(vocab), len(pruned))
    return Trained(path=out_path, figures={"pruned": pruned, "words_per_second": result.words_per_second})


def _warm_start(init: str, words: tuple[str, ...], counts: np.ndarray, keep: np.ndarray,
                cfg: MultiSenseConfig) -> StartState:
    """The starting state of a warm start from the model file ``init`` (:func:`grow_state`).

    Raises:
        ReplearnInputError: its dimension or ``max_senses`` is not ``cfg``'s.
    """
    start, kept = grow_state(words, counts, keep, MultiSenseVectors.load(Path(init)), cfg)
    get_run_logger().info("warm start: %d of %d words keep their senses, %d are new (%d sense rows)", kept, len(words),
                          len(words) - kept, len(start.sv))
    return start


@task(name="evaluate-multisense", cache_policy=STAGE_CACHE, persist_result=True)
def evaluate_multisense_task(model_path: str, tracking_uri: str, run_id: str, probes: list[str] | None = None,
                             pseudo: Pseudowords | None = None) -> Evaluation:
    """WS-353 / SimLex-999 (prior-weighted average and MaxSim), each sense's neighbours for ambiguous words, and,
    when pseudo-words were merged, how well the senses recover the original words -> MLflow metrics, tables and a
    Prefect artifact.

    Pseudo-words are scored as SemEval-2010 WSI scores sense induction (:mod:`replearn.lib.multisense.wsi_mapping`):
    each pair's held-out occurrences are split 80/20 by a hash of the occurrence; each sense is mapped to the word
    it most often stands for on the 80 %; the argmax of the posterior is scored on the 20 %. Metrics:
    ``pseudoword_mapped_accuracy`` (the champion metric), ``pseudoword_one_to_one`` (the two most used senses,
    the better bijection) and ``pseudoword_majority`` (always the more frequent word), means over the pairs with
    scored occurrences; nan when none has any.
    """
    model = MultiSenseVectors.load(Path(model_path))
    metrics: dict[str, float] = {}
    for name, path in (("wordsim353", wordsim353_path()), ("simlex999", simlex999_path())):
        for kind, score in (("avg", evaluate_average), ("maxsim", evaluate_maxsim)):
            metrics[f"{name}_{kind}_spearman"] = similarity_or_nan(lambda: score(model, path), f"{name}_{kind}_")[
                f"{name}_{kind}_spearman"]
    table = []
    for word in probes or AMBIGUOUS:
        if word not in model:
            continue
        prior = model.sense_prior(word)
        for z, nbrs in enumerate(model.sense_neighbours(word, topn=8)):
            table.append({"word": word, "sense": z, "prior": round(float(prior[z]), 3),
                          "neighbours": ", ".join(w for w, _ in nbrs)})
    pairs_table = []
    if pseudo is not None:
        results = evaluate_mapped(model, load_pseudoword_data(Path(pseudo.dir)))
        for r in results:
            pairs_table.append({"pseudo_word": r.merged, "senses": model.n_senses(r.merged),
                                "prior": " ".join(f"{p:.2f}" for p in model.sense_prior(r.merged)),
                                "mapped_on": r.n_map, "scored_on": r.n_eval, "mapped": round(r.mapped, 4),
                                "one_to_one": round(r.one_to_one, 4), "majority": round(r.majority, 4)})
        means = mean_scores(results)
        metrics.update({"pseudoword_mapped_accuracy": means["mapped"], "pseudoword_one_to_one": means["one_to_one"],
                        "pseudoword_majority": means["majority"]})
        if not any(r.n_eval for r in results):
            get_run_logger().warning("no pseudo-word has a held-out occurrence left to score: all %d held-out "
                                     "occurrences fell in the 80 %% that maps senses to words, so the corpus is too "
                                     "small for pseudo-word figures (nan); use a larger corpus",
                                     sum(r.n_map for r in results))
    log_metrics(tracking_uri, run_id, metrics)
    c = client(tracking_uri)
    c.log_text(run_id, json.dumps(table, indent=1), "eval/sense_neighbours.json")
    create_table_artifact(key="sense-neighbours", table=table or [{"word": "", "sense": 0}],
                          description="Nearest words of each sense (cosine to prior-weighted word vectors)")
    if pairs_table:
        c.log_text(run_id, json.dumps(pairs_table, indent=1), "eval/pseudowords.json")
        create_table_artifact(key="pseudo-words", table=pairs_table,
                              description=f"Which original word stood in held-out contexts: senses mapped to words on "
                                          f"{MAP_FRACTION:.0%} of the held-out occurrences, the argmax of "
                                          f"p(z|x, context) scored on the rest (SemEval-2010 WSI)")
    return Evaluation(metrics=metrics, tables={"neighbours": table, "pseudowords": pairs_table})


@task(name="export-multisense", cache_policy=STAGE_CACHE, persist_result=True)
def export_multisense_task(model_path: str, out_path: str, config: dict, run_id: str, source_hash: str | None) -> Embeddings:
    """One row per (word, sense): ``key`` the word, ``sense`` its index; priors and counts in the file metadata."""
    model = MultiSenseVectors.load(Path(model_path))
    rows = model.export_rows()
    priors = {f"{k}#{int(z)}": round(float(p), 5) for k, z, p in zip(rows["key"], rows["sense"], rows["prior"])
              if model.n_senses(k) > 1}
    meta = EmbeddingsMetadata(family="multisense", dim=int(rows["vector"].shape[1]), normalized=False,
                              similarity="cos", mlflow_run_id=run_id, source_hash=source_hash,
                              config={**config, "priors_of_multi_sense_words": priors})
    write_embeddings(Path(out_path), rows["key"], rows["vector"], meta,
                     ids=np.arange(len(rows["key"]), dtype=np.int64), sense=rows["sense"])
    return Embeddings(tables={"senses": out_path}, main="senses")
