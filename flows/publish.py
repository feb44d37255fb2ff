"""The publish stages every family shares: FAISS index -> kNN graph -> embedding map -> registry with the champion gate.

Each family's flow exports its embeddings (its own task: word vectors, senses,
images, images and captions) into the common embeddings table (docs/design.md, "The
embeddings table") and hands the :class:`~replearn.infra.stage_outputs.Embeddings`
to :func:`publish`, which runs the same four stages for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from replearn.infra.caching import reuse_or_rerun
from replearn.infra.run_context import RunContext
from replearn.infra.stage_outputs import Embeddings, Published
from replearn.tasks.export import embedding_map_task, index_task, knn_graph_task
from replearn.tasks.register import register_task


@dataclass(frozen=True)
class Champion:
    """How a family's registered versions compete for the ``champion`` alias.

    Attributes:
        model_name: the registered model's name.
        metric: the MLflow metric compared (higher is better), e.g. ``analogy_score``.
        value: this run's value of ``metric``.
        eval_data: what the metric was measured on; versions measured on other data never compete.
        artifacts: files the pyfunc needs besides the embeddings, index and graph (``{name: path}``).
    """

    model_name: str
    metric: str
    value: float
    eval_data: str
    artifacts: dict[str, str] = field(default_factory=dict)


def publish(run: RunContext, embeddings: Embeddings, champion: Champion,
            probes: list[str] | None = None) -> Published:
    """Index, graph, map and register ``embeddings`` (their main table) in ``run``; each stage cached.

    ``probes``: the words a word-vector map shows with their neighbours (None: the default probes).
    """
    index = reuse_or_rerun(index_task, embeddings.path, run.stage_out("index.faiss"), run.tracking_uri, run.run_id)
    graph = reuse_or_rerun(knn_graph_task, embeddings.path, index.path, run.stage_out("knn_graph.parquet"),
                           run.tracking_uri, run.run_id)
    emap = reuse_or_rerun(embedding_map_task, embeddings.path, run.stage_out("embedding_map.png"), run.tracking_uri,
                          run.run_id, probes=probes)
    artifacts = {"embeddings": embeddings.path, "index": index.path, "index_meta": index.sidecar,
                 "graph": graph.path, **champion.artifacts}
    model = register_task(run.tracking_uri, run.run_id, champion.model_name, run.family, artifacts,
                          champion.metric, champion.value, eval_data=champion.eval_data)
    return Published(embeddings=embeddings, index=index, graph=graph, map=emap, model=model)


def run_summary(run: RunContext, published: Published, **family: object) -> dict:
    """The flow's return value (JSON-serialisable; the CLI prints it, ``--json`` writes it): the MLflow run,
    the main embeddings table and every exported table, the index and its recall@10, the registered model, and
    the family's own figures (``family``; ``stage_outputs``: where its main stage outputs are, in the stage store
    ``<home>/stages/``, whichever run made them)."""
    return {"mlflow_run_id": run.run_id, "mlflow_experiment_id": run.experiment_id, "tracking_uri": run.tracking_uri,
            "embeddings": published.embeddings.path, "embedding_tables": dict(published.embeddings.tables),
            "index": published.index.path, "recall_at_10": published.index.recall_at_10,
            "knn_graph": published.graph.path, "embedding_map": published.map.path,
            "model": published.model.to_dict(), **family}
