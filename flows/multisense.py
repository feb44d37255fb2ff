"""The multi-sense flow: tokenize -> vocabulary -> encode -> (pseudo-words) -> train (EM) -> evaluate -> export ->
publish."""

from __future__ import annotations

from prefect import flow

from replearn.flows.params import MultisenseParams
from replearn.flows.publish import Champion, publish, run_summary
from replearn.flows.text_stages import TOKENIZER, corpus_stages
from replearn.flows.warm_start import corpus_manifest, warm_config, warm_start
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

#: What a registered multi-sense model carries for a later warm start (besides its embeddings and index), and what
#: a warm start fetches of it: the model file (senses, context vectors, priors, counts), every token's count, the
#: corpus files it has seen. (``vocabulary``, the training vocabulary, is registered too, as word2vec's is.)
WARM_START_ARTIFACTS = ["model", "token_counts", "corpus_files"]


@flow(name="multisense", log_prints=True)
def multisense_flow(params: MultisenseParams = MultisenseParams()) -> dict:
    """Multi-sense skip-gram trained by maximum marginal likelihood (Tian et al. 2014; AdaGram, Bartunov et al.
    2016): sense vectors, context vectors and a prior per word; evaluated on word similarity (prior-weighted
    average and MaxSim), the neighbours of each sense and, with ``pseudo_pairs``, pseudo-word disambiguation;
    exported one row per (word, sense) and published (champion by pseudo-word accuracy when measured, else
    SimLex-999 Spearman).

    Tokenization runs as word2vec's does (flows/text_stages.py), its partitions on the runner that
    ``params.runner`` / ``address`` / ``workers`` name (infra/runners.py). Every stage is cached on its inputs'
    content and its source (infra/caching.py); checkpoints under ``<home>/checkpoints/multisense/<corpus+settings
    key>/`` let a killed run resume.

    With ``params.init_from`` (a warm start, as word2vec's: flows/warm_start.py) the run trains only on the corpus
    files the model it continues was not trained on, over a vocabulary of merged counts, from that model's senses,
    context vectors and sense statistics (lib/multisense/warm_start.py); with no such file it registers nothing and
    says so (the summary then holds the run, ``new_files: []``, ``init_from`` and the standing ``model`` only).
    """
    home = str(data_home(params.home))
    corpus = corpus_task(params.corpus, home)
    tokenizer = {**TOKENIZER, "text_column": params.text_column}
    cfg = params.train_config()
    memo = str(digest_memo(home))
    settings = {"tokenizer": tokenizer, **cfg, "pseudo_pairs": params.pseudo_pairs}
    fp = fingerprint_task(corpus, settings, memo)
    with ShardRunner(params.runner, params.address, params.workers) as runner, \
            family_run("multisense", home, tags={"corpus": corpus, "source_hash": fp.source_hash}) as run:
        start = warm_start(run, params.init_from, corpus, settings, memo, fp, WARM_START_ARTIFACTS,
                           params.model_name)
        if start.unchanged is not None:
            return start.summary(run, corpus)
        fp, cfg = start.fp, warm_config(cfg, start, params.warm_alpha)
        tokens, vocab, encoded = corpus_stages(run, corpus, tokenizer, fp.source_hash, params.min_count, None,
                                               MAX_SENTENCE_TOKENS, runner, files=start.files,
                                               base_counts=start.base_counts)
        train_dir, train_vocab, pseudo = encoded.path, vocab.path, None
        if params.pseudo_pairs:
            pseudo = reuse_or_rerun(pseudowords_task, encoded.path, vocab.path, run.stage_out("pseudo"),
                                    params.pseudo_pairs, params.seed, run.tracking_uri, run.run_id, params.threads)
            train_dir, train_vocab = pseudo.encoded, pseudo.vocab
        trained = reuse_or_rerun(train_multisense_task, train_dir, train_vocab, cfg, run.checkpoint_dir(fp.key),
                                 run.stage_out("multisense.npz"), run.tracking_uri, run.run_id,
                                 init=start.init.files["model"] if start.init else None)
        ev = reuse_or_rerun(evaluate_multisense_task, trained.path, run.tracking_uri, run.run_id, params.probes,
                            pseudo)
        trained_on = corpus_manifest(run, corpus, start, memo)
        exported = reuse_or_rerun(export_multisense_task, trained.path, run.stage_out("embeddings", "senses.parquet"),
                                  {"train": cfg, "tokenizer": tokenizer}, run.run_id, fp.source_hash)
        metric = "pseudoword_mapped_accuracy" if pseudo is not None else "simlex999_avg_spearman"
        published = publish(run, exported, Champion(
            params.model_name, metric, ev.metrics[metric],
            eval_data=(f"{fp.source_hash}; {params.pseudo_pairs} pseudo-word pairs, senses mapped on 80 %" if pseudo is not None
                       else "WordSim-353, SimLex-999"),
            artifacts={"model": trained.path, "vocabulary": vocab.path, "token_counts": vocab.counts,
                       "corpus_files": trained_on.path}), probes=params.probes)
    return run_summary(run, published, corpus=corpus, tokens=tokens.tokens, vocab_size=vocab.vocab_size,
                       metrics={k: v for k, v in ev.metrics.items() if isinstance(v, float)},
                       neighbours=ev.tables["neighbours"], pseudowords=ev.tables["pseudowords"],
                       pruned=trained.figures["pruned"], new_files=start.files, init_from=start.label,
                       stage_outputs={"tokens": tokens.path, "vocabulary": vocab.path, "encoded": encoded.path,
                                      "model": trained.path})
