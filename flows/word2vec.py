"""The word-vector flow: tokenize -> vocabulary -> encode -> train -> evaluate -> export -> publish."""

from __future__ import annotations

from prefect import flow

from replearn.flows.params import Word2VecParams
from replearn.flows.publish import Champion, publish, run_summary
from replearn.flows.text_stages import TOKENIZER, corpus_stages, export_word_vectors_stage
from replearn.flows.warm_start import corpus_manifest, fetch_model, warm_config, warm_start
from replearn.infra.caching import reuse_or_rerun
from replearn.infra.home import data_home
from replearn.infra.run_context import RunContext, family_run
from replearn.infra.runners import ShardRunner
from replearn.tasks.evaluate_words import evaluate_task
from replearn.tasks.init_model import resolve_init_task
from replearn.tasks.inputs import corpus_task, fingerprint_task
from replearn.tasks.text import digest_memo
from replearn.tasks.what_changed import what_changed_task
from replearn.tasks.word2vec import train_task

#: The scores the what-changed report compares with the champion's (the counts beside them would swamp its chart).
HEADLINE_METRICS = ("analogy_total", "analogy_score", "analogy_semantic", "analogy_syntactic", "wordsim353_spearman",
                    "simlex999_spearman")
#: What a registered word-vector model carries for a later warm start (besides its embeddings and index).
WARM_START_ARTIFACTS = ["vectors", "vocabulary", "token_counts", "corpus_files"]


@flow(name="word2vec", log_prints=True)
def word2vec_flow(params: Word2VecParams = Word2VecParams()) -> dict:
    """Train skip-gram word vectors on a corpus and make them searchable; every stage tracked in MLflow.

    Outputs go to the stage store, ``<home>/stages/<stage>/<inputs key>/<mlflow run id>/`` (tokens,
    vocabulary, vectors, ``embeddings/*.parquet``, ``index.faiss``: infra/caching.py); checkpoints to
    ``<home>/checkpoints/word2vec/<corpus+settings key>/`` so that a killed run,
    started again with the same inputs, resumes after its last finished epoch.
    Every stage is cached on its inputs' content and its source (infra/caching.py); each corpus file is
    tokenized once, however the folder holding it grows.
    Returns the summary of :func:`replearn.flows.publish.run_summary`.

    With ``params.init_from`` (a warm start) the run trains only on the corpus files the model it continues was
    not trained on, from that model's vectors (tasks/init_model.py); with no such file it registers nothing and
    says so. Every run that registers a new version while a champion stands reports what changed against that
    champion (tasks/what_changed.py); a rerun that changed nothing registers nothing and reports nothing.

    ``params.runner`` says where tokenization partitions and export shards run
    (infra/runners.py :class:`~replearn.infra.runners.ShardRunner`), however the
    flow was started (the CLI, a deployment, the pipeline); the outputs are the same.
    """
    home = str(data_home(params.home))
    corpus = corpus_task(params.corpus, home)
    tokenizer = {**TOKENIZER, "text_column": params.text_column}
    train_cfg = params.train_config()
    memo = str(digest_memo(home))
    settings = {"tokenizer": tokenizer, **train_cfg}
    fp = fingerprint_task(corpus, settings, memo)
    with ShardRunner(params.runner, params.address, params.workers) as runner, \
            family_run("word2vec", home, tags={"corpus": corpus, "source_hash": fp.source_hash}) as run:
        start = warm_start(run, params.init_from, corpus, settings, memo, fp, WARM_START_ARTIFACTS,
                           params.model_name)
        if start.unchanged is not None:
            return start.summary(run, corpus)
        init, files, fp = start.init, start.files, start.fp
        train_cfg = warm_config(train_cfg, start, params.warm_alpha)
        tokens, vocab, encoded = corpus_stages(run, corpus, tokenizer, fp.source_hash, params.min_count,
                                               params.max_vocab, params.max_sentence_tokens, runner, files=files,
                                               base_counts=start.base_counts)
        trained = reuse_or_rerun(train_task, encoded.path, vocab.path, train_cfg, run.checkpoint_dir(fp.key),
                                 run.stage_out("vectors.npz"), run.tracking_uri, run.run_id,
                                 init={k: init.files[k] for k in ("vectors", "vocabulary")} if init else None)
        ev = evaluate_task(trained.path, vocab.path, run.tracking_uri, run.run_id, probes=params.probes)
        trained_on = corpus_manifest(run, corpus, start, memo)
        champion = resolve_init_task(run.tracking_uri, f"{params.model_name}@champion", optional=True)
        exported = export_word_vectors_stage(trained.path, vocab.path, run.stage_out("embeddings"),
                                             list(dict.fromkeys(["input", *params.export_matrices])),
                                             {"train": train_cfg, "tokenizer": tokenizer}, run.run_id, fp.source_hash,
                                             shards=runner.shards, runner=runner)
        published = publish(run, exported, Champion(
            params.model_name, "analogy_score", ev.metrics["analogy_score"],
            eval_data="questions-words.txt, WordSim-353, SimLex-999",
            artifacts={"vectors": trained.path, "vocabulary": vocab.path, "token_counts": vocab.counts,
                       "corpus_files": trained_on.path}),
            probes=params.probes)
        changed = (_what_changed(run, champion, params.model_name, trained.path, vocab.path, tokens.path, ev.metrics)
                   if champion is not None and published.model.new_version else None)
    return run_summary(run, published, corpus=corpus, tokens=tokens.tokens, vocab_size=vocab.vocab_size,
                       words_per_second=trained.figures["train.words_per_second"], metrics=ev.metrics,
                       neighbours=ev.tables["neighbours"], new_files=files,
                       init_from=start.label,
                       what_changed=changed,
                       stage_outputs={"tokens": tokens.path, "vocabulary": vocab.path, "encoded": encoded.path,
                                      "vectors": trained.path})


def _what_changed(run: RunContext, champion: dict, model_name: str, vectors: str, vocab: str, tokens: str,
                  metrics: dict) -> str:
    """The what-changed report of a run that registered a new version of ``model_name`` against ``champion``, the
    version that was champion before (:func:`resolve_init_task`'s dict); returns the report's path."""
    files = fetch_model(run, champion, ["embeddings"]).files
    after = {k: metrics[k] for k in HEADLINE_METRICS if k in metrics}
    before = {k: v for k, v in champion["metrics"].items() if k in after}
    return reuse_or_rerun(what_changed_task, vectors, vocab, tokens, after,
                          f"{model_name} v{champion['version']}", files["embeddings"], before,
                          run.stage_out("what_changed.md"), run.tracking_uri, run.run_id).path
