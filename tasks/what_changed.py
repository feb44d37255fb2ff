"""Prefect task: the "what changed" report of a retrain against the champion, in MLflow and as a Prefect artifact."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger

from replearn.infra.caching import STAGE_CACHE
from replearn.infra.plots import what_changed_figure
from replearn.infra.stage_outputs import Artifact
from replearn.infra.tracking import client, log_metrics
from replearn.lib.eval.what_changed import build_what_changed
from replearn.lib.store.atomic import atomic_write_text, read_npz
from replearn.lib.store.embeddings_table import read_vectors
from replearn.lib.text.vocab import count_tokens, read_vocabulary

__all__ = ["what_changed_task"]


@task(name="what-changed", cache_policy=STAGE_CACHE, persist_result=True)
def what_changed_task(vectors_path: str, vocab_path: str, token_dir: str, metrics: dict, champion: str,
                      champion_embeddings: str, champion_metrics: dict, out_path: str, tracking_uri: str,
                      run_id: str) -> Artifact:
    """Compare this run's word vectors with the champion's and report it (lib/eval/what_changed.py).

    Args:
        vectors_path, vocab_path: this run's matrices (.npz, ``input`` (V, D)) and vocabulary.
        token_dir: the token shards of the text this run trained on (its out-of-vocabulary rate against the
            champion's words).
        metrics: this run's evaluation metrics; ``champion_metrics``: the champion's, for the deltas.
        champion: the champion's label (``replearn-word2vec v1``); ``champion_embeddings``: its embeddings table.
        out_path: the report (markdown) to write.

    Logs ``report/what_changed.md`` and ``report/what_changed.png`` and the ``changed.*`` figures to the MLflow run,
    and a Prefect markdown artifact ``what-changed``.
    """
    words, _, old_vectors, _ = read_vectors(champion_embeddings)
    vocab = read_vocabulary(Path(vocab_path))
    report = build_what_changed(
        champion=champion, old_words=words, old_vectors=old_vectors, new_words=vocab.words, new_counts=vocab.counts,
        new_vectors=read_npz(vectors_path)["input"], after_metrics=_numbers(metrics),
        before_metrics=_numbers(champion_metrics), token_counts=count_tokens(Path(token_dir)))
    text = report.to_markdown()
    atomic_write_text(out_path, text)
    c = client(tracking_uri)
    c.log_text(run_id, text, "report/what_changed.md")
    c.log_figure(run_id, what_changed_figure(report), "report/what_changed.png")
    log_metrics(tracking_uri, run_id, report.summary_metrics())
    create_markdown_artifact(markdown=text, key="what-changed", description=f"what changed against {champion}")
    oov = report.oov
    get_run_logger().info("what changed against %s: %d new words, %.1f %% of the new tokens out of its vocabulary, "
                          "mean top-10 Jaccard %s", champion, report.n_new_words_total, 100 * oov["oov_token_rate"],
                          "n/a" if report.mean_jaccard is None else f"{report.mean_jaccard:.3f}")
    return Artifact(path=out_path)


def _numbers(metrics: dict) -> dict[str, float]:
    """The numeric metrics of an evaluation (the tables and NaN-free numbers the report compares)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
