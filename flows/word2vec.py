"""The word-vector flow: tokenize -> vocabulary -> encode -> train -> evaluate -> export -> publish."""

from __future__ import annotations

from prefect import flow

from replearn.flows.params import Word2VecParams
from replearn.flows.publish import Champion, publish, run_summary
from replearn.flows.text_stages import TOKENIZER, corpus_stages, export_word_vectors_stage
from replearn.infra.caching import reuse_or_rerun
from replearn.infra.home import data_home
from replearn.infra.run_context import family_run
from replearn.infra.runners import ShardRunner
from replearn.tasks.evaluate_words import evaluate_task
from replearn.tasks.inputs import corpus_task, fingerprint_task
from replearn.tasks.text import digest_memo
from replearn.tasks.word2vec import train_task


@flow(name="word2vec", log_prints=True)
def word2vec_flow(params: Word2VecParams = Word2VecParams()) -> dict:
    """Train skip-gram word vectors on a corpus and make them searchable; every stage tracked in MLflow.

    Outputs go to the stage store, ``<home>/stages/<stage>/<inputs key>/<mlflow run id>/`` (tokens,
    vocabulary, vectors, ``embeddings/*.parquet``, ``index.faiss``: infra/caching.py); checkpoints to
    ``<home>/checkpoints/word2vec/<corpus+settings key>/`` so that a killed run,
    started again with the same inputs, resumes after its last finished epoch.
    Every stage is cached on its inputs' content and its source (infra/caching.py).
    Returns the summary of :func:`replearn.flows.publish.run_summary`.

    ``params.runner`` says where tokenization partitions and export shards run
    (infra/runners.py :class:`~replearn.infra.runners.ShardRunner`), however the
    flow was started (the CLI, a deployment, the pipeline); the outputs are the same.
    """
    home = str(data_home(params.home))
    corpus = corpus_task(params.corpus, home)
    tokenizer = {**TOKENIZER, "text_column": params.text_column}
    train_cfg = params.train_config()
    fp = fingerprint_task(corpus, {"tokenizer": tokenizer, **train_cfg}, str(digest_memo(home)))
    with ShardRunner(params.runner, params.address, params.workers) as runner, \
            family_run("word2vec", home, tags={"corpus": corpus, "source_hash": fp.source_hash}) as run:
        tokens, vocab, encoded = corpus_stages(run, corpus, tokenizer, fp.source_hash, params.min_count,
                                               params.max_vocab, params.max_sentence_tokens, runner)
        trained = reuse_or_rerun(train_task, encoded.path, vocab.path, train_cfg, run.checkpoint_dir(fp.key),
                                 run.stage_out("vectors.npz"), run.tracking_uri, run.run_id)
        ev = evaluate_task(trained.path, vocab.path, run.tracking_uri, run.run_id, probes=params.probes)
        exported = export_word_vectors_stage(trained.path, vocab.path, run.stage_out("embeddings"),
                                             list(dict.fromkeys(["input", *params.export_matrices])),
                                             {"train": train_cfg, "tokenizer": tokenizer}, run.run_id, fp.source_hash,
                                             shards=runner.shards, runner=runner)
        published = publish(run, exported, Champion(
            params.model_name, "analogy_score", ev.metrics["analogy_score"],
            eval_data="questions-words.txt, WordSim-353, SimLex-999"), probes=params.probes)
    return run_summary(run, published, corpus=corpus, tokens=tokens.tokens, vocab_size=vocab.vocab_size,
                       words_per_second=trained.figures["train.words_per_second"], metrics=ev.metrics,
                       neighbours=ev.tables["neighbours"],
                       stage_outputs={"tokens": tokens.path, "vocabulary": vocab.path, "encoded": encoded.path,
                                      "vectors": trained.path})
