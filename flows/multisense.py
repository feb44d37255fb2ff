"""The multi-sense flow: tokenize -> vocabulary -> encode -> (pseudo-words) -> train (EM) -> evaluate -> export ->
publish."""

from __future__ import annotations

from prefect import flow

from replearn.flows.params import MultisenseParams
from replearn.flows.publish import Champion, publish, run_summary
from replearn.flows.text_stages import TOKENIZER, corpus_stages
from replearn.infra.caching import reuse_or_rerun
from replearn.infra.home import data_home
from replearn.infra.run_context import family_run
from replearn.infra.runners import ShardRunner
from replearn.tasks.inputs import corpus_task, fingerprint_task
from replearn.tasks.text import digest_memo
from replearn.tasks.multisense import (
    evaluate_multisense_task,
    export_multisense_task,
    pseudowords_task,
    train_multisense_task,
)

#: Sentences longer than this are cut when the corpus is encoded to ids.
MAX_SENTENCE_TOKENS = 1000


@flow(name="multisense", log_prints=True)
def multisense_flow(params: MultisenseParams = MultisenseParams()) -> dict:
    """Multi-sense skip-gram trained by maximum marginal likelihood (Tian et al. 2014; AdaGram, Bartunov et al.
    2016): sense vectors, context vectors and a prior per word; evaluated on word similarity (prior-weighted
    average and MaxSim), the neighbours of each sense and, with ``pseudo_pairs``, pseudo-word disambiguation;
    exported one row per (word, sense) and published (champion by pseudo-word accuracy when measured, else
    SimLex-999 Spearman).

    Tokenization runs as word2vec's does (flows/text_stages.py), its partitions on the runner that
    ``params.runner`` / ``address`` / ``workers`` name (infra/runners.py). Every stage is cached on its inputs' content and its source (infra/caching.py); checkpoints
    under ``<home>/checkpoints/multisense/<corpus+settings key>/`` let a killed run resume.
    """
    home = str(data_home(params.home))
    corpus = corpus_task(params.corpus, home)
    tokenizer = {**TOKENIZER, "text_column": params.text_column}
    cfg = params.train_config()
    fp = fingerprint_task(corpus, {"tokenizer": tokenizer, **cfg, "pseudo_pairs": params.pseudo_pairs},
                          str(digest_memo(home)))
    with ShardRunner(params.runner, params.address, params.workers) as runner, \
            family_run("multisense", home, tags={"corpus": corpus, "source_hash": fp.source_hash}) as run:
        tokens, vocab, encoded = corpus_stages(run, corpus, tokenizer, fp.source_hash, params.min_count, None,
                                               MAX_SENTENCE_TOKENS, runner)
        train_dir, train_vocab, pseudo = encoded.path, vocab.path, None
        if params.pseudo_pairs:
            pseudo = reuse_or_rerun(pseudowords_task, encoded.path, vocab.path, run.stage_out("pseudo"),
                                    params.pseudo_pairs, params.seed, run.tracking_uri, run.run_id, params.threads)
            train_dir, train_vocab = pseudo.encoded, pseudo.vocab
        trained = reuse_or_rerun(train_multisense_task, train_dir, train_vocab, cfg, run.checkpoint_dir(fp.key),
                                 run.stage_out("multisense.npz"), run.tracking_uri, run.run_id)
        ev = reuse_or_rerun(evaluate_multisense_task, trained.path, run.tracking_uri, run.run_id, params.probes,
                            pseudo)
        exported = reuse_or_rerun(export_multisense_task, trained.path, run.stage_out("embeddings", "senses.parquet"),
                                  {"train": cfg, "tokenizer": tokenizer}, run.run_id, fp.source_hash)
        metric = "pseudoword_accuracy" if pseudo is not None else "simlex999_avg_spearman"
        published = publish(run, exported, Champion(
            params.model_name, metric, ev.metrics[metric],
            eval_data=(f"{fp.source_hash}; {params.pseudo_pairs} pseudo-word pairs" if pseudo is not None
                       else "WordSim-353, SimLex-999"),
            artifacts={"model": trained.path}), probes=params.probes)
    return run_summary(run, published, corpus=corpus,
                       metrics={k: v for k, v in ev.metrics.items() if isinstance(v, float)},
                       neighbours=ev.tables["neighbours"], pseudowords=ev.tables["pseudowords"],
                       pruned=trained.figures["pruned"],
                       stage_outputs={"tokens": tokens.path, "vocabulary": vocab.path, "encoded": encoded.path,
                                      "model": trained.path})
