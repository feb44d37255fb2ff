"""Probes on frozen features: each accuracy equals scikit-learn run directly; kNN is perfect on separated
clusters; PCA baseline shapes and train-only fitting; input errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from replearn.lib.errors import EmbeddingsError
from replearn.lib.eval.probe import (knn_accuracy, linear_svm_accuracy, logistic_accuracy, pca_baseline,
                                     probe_accuracies)
from replearn.lib.metric.images import load_digits_8x8


@pytest.fixture(scope="module")
def digits():
    ds = load_digits_8x8()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(ds))[:600]
    tr, te = idx[:400], idx[400:]
    return ds.images[tr], ds.labels[tr], ds.images[te], ds.labels[te]


def test_accuracies_equal_sklearn_directly(digits):
    xtr_img, ytr, xte_img, yte = digits
    got = probe_accuracies(xtr_img, ytr, xte_img, yte, k=3)  # images are flattened to raw pixels
    assert set(got) == {"logreg_accuracy", "linear_svm_accuracy", "knn_accuracy"}
    assert all(0.0 <= v <= 1.0 for v in got.values())

    xtr, xte = xtr_img.reshape(400, -1).astype(np.float64), xte_img.reshape(200, -1).astype(np.float64)
    sc = StandardScaler().fit(xtr)
    sc.scale_ = np.maximum(sc.scale_, 0.1 * sc.scale_.max())  # the floor of _scaled
    s_tr, s_te = sc.transform(xtr), sc.transform(xte)
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(s_tr, ytr)
    svm = LinearSVC(C=1.0, max_iter=5000, random_state=0, dual="auto").fit(xtr, ytr)  # features as given
    knn = KNeighborsClassifier(n_neighbors=3).fit(xtr, ytr)
    assert got["logreg_accuracy"] == pytest.approx((lr.predict(s_te) == yte).mean())
    assert got["linear_svm_accuracy"] == pytest.approx((svm.predict(xte) == yte).mean())
    assert got["knn_accuracy"] == pytest.approx(knn.score(xte, yte))
    assert got["logreg_accuracy"] > 0.85 and got["knn_accuracy"] > 0.9  # digits are easy

    unscaled = logistic_accuracy(xtr, ytr, xte, yte, C=0.5, standardize=False)
    assert unscaled == pytest.approx(LogisticRegression(C=0.5, max_iter=1000).fit(xtr, ytr).score(xte, yte))
    assert set(probe_accuracies(xtr, ytr, xte, yte, prefix="test/")) == {
        "test/logreg_accuracy", "test/linear_svm_accuracy", "test/knn_accuracy"}


def test_knn_is_perfect_on_separated_clusters():
    rng = np.random.default_rng(1)
    centres = np.eye(4, 8) * 10.0  # 4 classes, 10 apart
    y = np.repeat(np.arange(4), 30)
    x = centres[y] + rng.normal(scale=0.3, size=(len(y), 8))
    ytr, yte = y[::2], y[1::2]
    assert knn_accuracy(x[::2], ytr, x[1::2], yte, k=5) == 1.0
    assert knn_accuracy(x[::2], ytr, x[1::2], yte, k=1, metric="cos") == 1.0
    labels = np.array(["a", "b", "c", "d"])[y]  # string labels work too
    assert knn_accuracy(x[::2], labels[::2], x[1::2], labels[1::2]) == 1.0
    assert linear_svm_accuracy(x[::2], ytr, x[1::2], yte) == 1.0


def test_knn_majority_vote_can_be_wrong():
    xtr = np.array([[0.0], [1.0], [1.1], [1.2]])
    ytr = np.array([0, 1, 1, 1])
    assert knn_accuracy(xtr, ytr, np.array([[0.0]]), np.array([0]), k=1) == 1.0
    assert knn_accuracy(xtr, ytr, np.array([[0.0]]), np.array([0]), k=3) == 0.0


def test_pca_baseline_fits_on_train_only(digits):
    xtr, _, xte, _ = digits
    ztr, zte = pca_baseline(xtr, xte, dim=16)
    assert ztr.shape == (400, 16) and zte.shape == (200, 16) and ztr.dtype == np.float32
    ref = PCA(n_components=16, random_state=0).fit(xtr.reshape(400, -1).astype(np.float64))
    np.testing.assert_allclose(zte, ref.transform(xte.reshape(200, -1)), atol=1e-4)
    np.testing.assert_allclose(ztr.mean(0), 0.0, atol=1e-4)  # centred by the train mean


def test_bad_inputs_raise_embeddings_error():
    x = np.zeros((4, 3))
    y = np.array([0, 1, 0, 1])
    with pytest.raises(EmbeddingsError, match="NaN/Inf.*\\[2\\]"):
        bad = x.copy()
        bad[2, 1] = np.nan
        knn_accuracy(bad, y, x, y, k=1)
    with pytest.raises(EmbeddingsError, match="dimension 3 but test_x has 2"):
        knn_accuracy(x, y, np.zeros((4, 2)), y, k=1)
    with pytest.raises(EmbeddingsError, match="single class"):
        logistic_accuracy(x, np.zeros(4), x, y)
    with pytest.raises(EmbeddingsError, match="k=9"):
        knn_accuracy(x, y, x, y, k=9)
    with pytest.raises(EmbeddingsError, match="one per row"):
        knn_accuracy(x, y[:3], x, y, k=1)
    with pytest.raises(EmbeddingsError, match="dim=5"):
        pca_baseline(x, x, dim=5)


def test_max_train_fits_on_a_seeded_sample(digits):
    xtr_img, ytr, xte_img, yte = digits
    xtr = xtr_img.reshape(len(xtr_img), -1).astype(np.float64)
    keep = np.sort(np.random.default_rng(3).choice(len(xtr), size=100, replace=False))
    want = LogisticRegression(max_iter=1000).fit(xtr[keep], ytr[keep]).score(xte_img.reshape(len(xte_img), -1), yte)
    got = logistic_accuracy(xtr_img, ytr, xte_img, yte, max_train=100, seed=3, standardize=False)
    assert got == pytest.approx(want)
    with pytest.raises(EmbeddingsError, match="max_train"):
        linear_svm_accuracy(xtr_img, ytr, xte_img, yte, max_train=1)
