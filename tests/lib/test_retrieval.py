"""P@1, R-Precision, MAP@R against a plain loop and pytorch-metric-learning's AccuracyCalculator."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.eval.retrieval import retrieval_metrics


def loop_metrics(x, y):
    """Musgrave et al. 2020, computed query by query with full sorting."""
    p1, rp, mapr = [], [], []
    for i in range(len(x)):
        d = np.linalg.norm(x - x[i], axis=1)
        d[i] = np.inf
        order = np.argsort(d)
        R = int((y == y[i]).sum()) - 1
        if R == 0:
            continue
        rel = (y[order[:R]] == y[i]).astype(float)
        p1.append(rel[0])
        rp.append(rel.sum() / R)
        mapr.append(sum(rel[:j + 1].sum() / (j + 1) * rel[j] for j in range(R)) / R)
    return np.mean(p1), np.mean(rp), np.mean(mapr)


def _data(seed=0, n=300, d=8, classes=6):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    x = rng.normal(size=(n, d)) + 1.5 * rng.normal(size=(classes, d))[y]
    return x.astype(np.float32), y


def test_equals_plain_loop():
    x, y = _data()
    r = retrieval_metrics(x, y, "l2")
    np.testing.assert_allclose([r.precision_at_1, r.r_precision, r.map_at_r], loop_metrics(x, y), atol=1e-9)
    assert r.n_queries == 300 and r.n_skipped == 0


def test_equals_pytorch_metric_learning_accuracy_calculator():
    pml = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    import torch

    x, y = _data(1, n=400)
    calc = pml.AccuracyCalculator(include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
                                  k="max_bin_count")
    ref = calc.get_accuracy(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x), torch.from_numpy(y),
                            ref_includes_query=True)
    r = retrieval_metrics(x, y, "l2")
    assert abs(r.precision_at_1 - ref["precision_at_1"]) < 1e-5
    assert abs(r.r_precision - ref["r_precision"]) < 1e-5
    assert abs(r.map_at_r - ref["mean_average_precision_at_r"]) < 1e-5


def test_singleton_classes_are_skipped_and_labels_can_be_strings():
    x, y = _data(2, n=50, classes=3)
    labels = np.array([f"c{v}" for v in y] + ["lonely"])
    x = np.vstack([x, np.zeros((1, x.shape[1]), np.float32)])
    r = retrieval_metrics(x, labels, "cos")
    assert r.n_skipped == 1 and r.n_queries == 50


def test_perfect_clusters_score_one_and_bad_input_is_rejected():
    y = np.repeat(np.arange(4), 10)
    x = np.eye(4)[y] * 10 + np.random.default_rng(0).normal(scale=0.01, size=(40, 4))
    r = retrieval_metrics(x, y)
    assert r.precision_at_1 == r.r_precision == r.map_at_r == 1.0
    with pytest.raises(EmbeddingsError, match="non-finite"):
        retrieval_metrics(np.array([[np.nan], [1.0]]), np.array([0, 0]))
    with pytest.raises(EmbeddingsError):
        retrieval_metrics(np.zeros((3, 2)), np.zeros(4))
