"""Prefect task: evaluate word vectors (analogies, word similarity, nearest neighbours)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.logging import get_run_logger

from replearn.lib.errors import ReplearnInputError
from replearn.lib.eval.analogy import evaluate_analogies
from replearn.lib.eval.neighbours import default_probes, nearest_neighbours
from replearn.lib.eval.similarity import SimilarityResult, evaluate_word_pairs, simlex999_path, wordsim353_path
from replearn.lib.text.vocab import read_vocabulary
from replearn.lib.vectors import KeyedVectors
from replearn.infra.caching import STAGE_CACHE
from replearn.infra.stage_outputs import Evaluation
from replearn.infra.tracking import client, log_metrics


def load_keyed_vectors(vectors_path: str, vocab_path: str, matrix: str = "input") -> KeyedVectors:
    """KeyedVectors from a training output (.npz with ``input`` / ``context``) and its vocabulary."""
    vocab = read_vocabulary(Path(vocab_path))
    with np.load(vectors_path) as z:
        m = z["input"] if matrix == "input" else z["context"] if matrix == "context" else (z["input"] + z["context"]) / 2
    return KeyedVectors(vocab.words, m)


def similarity_or_nan(score: Callable[[], SimilarityResult], prefix: str) -> dict[str, float]:
    """``score()``'s Spearman / Pearson / pairs as ``{prefix}spearman`` ...; NaN (with a warning) when the vocabulary
    covers fewer than 2 pairs of the set: a small or specialised corpus is not an error, its vectors just cannot be
    scored on it (word2vec and multi-sense alike)."""
    try:
        return score().to_dict(prefix)
    except ReplearnInputError as e:
        get_run_logger().warning("%s not scored: %s", prefix.rstrip("_"), e)
        return {f"{prefix}spearman": float("nan"), f"{prefix}pearson": float("nan"), f"{prefix}n_pairs": 0.0}


def _similarity(kv: KeyedVectors, path, prefix: str) -> dict[str, float]:
    """:func:`similarity_or_nan` of the word vectors ``kv`` on the word-pair set ``path``."""
    return similarity_or_nan(lambda: evaluate_word_pairs(kv, path), prefix)


@task(name="evaluate-word-vectors", cache_policy=STAGE_CACHE, persist_result=True)
def evaluate_task(vectors_path: str, vocab_path: str, tracking_uri: str, run_id: str,
                  probes: list[str] | None = None, restrict_vocab: int = 30000) -> Evaluation:
    """3CosAdd analogies (semantic / syntactic / total / OOV), WordSim-353 and SimLex-999 Spearman,
    and a nearest-neighbour table; all logged to MLflow and shown as a Prefect table artifact.

    Returns the metrics and the neighbour table (``tables['neighbours']``, a list of rows).
    """
    kv = load_keyed_vectors(vectors_path, vocab_path)
    analogy = evaluate_analogies(kv, restrict_vocab=restrict_vocab)
    metrics = {**analogy.to_dict(), **_similarity(kv, wordsim353_path(), "wordsim353_"),
               **_similarity(kv, simlex999_path(), "simlex999_")}
    log_metrics(tracking_uri, run_id, metrics)
    table = list(nearest_neighbours(kv, probes or default_probes(kv), topn=5))
    rows = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in table]
    summary = [{"metric": k, "value": round(float(v), 4)} for k, v in metrics.items()]
    if rows:
        client(tracking_uri).log_table(run_id, {k: [r[k] for r in rows] for k in rows[0]}, "eval/neighbours.json")
    client(tracking_uri).log_table(run_id, {"metric": [s["metric"] for s in summary],
                                            "value": [s["value"] for s in summary]}, "eval/metrics.json")
    create_table_artifact(key="word2vec-evaluation", table=summary,
                          description="Word-vector evaluation: 3CosAdd analogies (questions-words.txt), "
                                      "Spearman on WordSim-353 and SimLex-999")
    if rows:
        create_table_artifact(key="word2vec-neighbours", table=rows, description="Nearest neighbours of probe words")
    get_run_logger().info("analogy total %.3f (semantic %.3f, syntactic %.3f, %d OOV questions); "
                          "WordSim-353 %.3f; SimLex-999 %.3f", analogy.total, analogy.semantic, analogy.syntactic,
                          analogy.n_oov, metrics["wordsim353_spearman"], metrics["simlex999_spearman"])
    return Evaluation(metrics=metrics, tables={"neighbours": rows})
