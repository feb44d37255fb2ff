"""NN-graph distance between two items of a registered version, from its local artifacts folder (no MLflow)."""

from __future__ import annotations

from pathlib import Path


def graph_distance_in(folder: Path | str, name: str, version: str, a: str, b: str, weighted: bool = False) -> dict:
    """The shortest path between items ``a`` and ``b`` over the exported k-nearest-neighbour graph (undirected).

    Args:
        folder: the version's artifacts folder (``knn_graph*.parquet`` and the embeddings ``.parquet``).
        name, version: the registered model, for messages and the result.
        a, b: keys (word, image path, caption), or row ids when not a key.
        weighted: sum of edge lengths (1 - cosine) instead of hops.

    Returns:
        ``{"a", "b", "id_a", "id_b", "distance" (hops or summed 1 - cosine; inf when a and b are in different
        components), "weighted", "k", "version"}``.

    Raises:
        LookupError: a version registered without a graph, or a key that is not in the embeddings table.
    """
    from replearn.lib.store.embeddings_table import read_vectors
    from replearn.lib.store.knn_graph import nn_graph_distance, read_knn_graph

    folder = Path(folder)
    graphs = sorted(folder.glob("knn_graph*.parquet"))
    if not graphs:
        raise LookupError(f"{name} version {version} was registered without a kNN graph; retrain it")
    keys, ids, _, _ = read_vectors(next(p for p in folder.iterdir() if p.name.endswith(".parquet")
                                        and not p.name.startswith("knn_graph")))
    id_of = {k: int(i) for k, i in zip(keys, ids)}

    def resolve(x: str) -> int:
        if x in id_of:
            return id_of[x]
        if x.lstrip("-").isdigit() and int(x) in set(int(i) for i in ids):
            return int(x)
        raise LookupError(f"{x!r} is neither a key nor an id of {name} version {version}")

    src, dst, sim, meta = read_knn_graph(graphs[0])
    ia, ib = resolve(a), resolve(b)
    d = nn_graph_distance((src, dst, sim), ia, ib, metric=meta.get("metric", "cos"), weighted=weighted)
    return {"a": a, "b": b, "id_a": ia, "id_b": ib, "distance": float(d), "weighted": weighted,
            "k": meta.get("k"), "version": version}
