"""Classification accuracy of frozen features: linear probes, kNN, and the PCA / raw-pixel baselines.

A representation is judged by how well a simple classifier does on top of it
without changing it (the "linear evaluation protocol" of Zhang et al. 2016 and
Chen et al. 2020, "SimCLR", sec. 4; the weighted kNN monitor of Wu et al. 2018).
Fit on the train features, score on the test features. The baselines that a
learned embedding must beat are the raw pixels and PCA of the pixels to the
same dimension as the embedding (:func:`pca_baseline`).

Plain functions over numpy arrays in the faiss-contrib style: features
``(N, D)`` (anything of higher rank, e.g. images (N, 1, H, W), is flattened to
(N, -1)), labels ``(N,)`` of any comparable type.
"""

from __future__ import annotations

import numpy as np

from replearn.lib.errors import EmbeddingsError


def _features(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim < 2:
        raise EmbeddingsError(f"{name}: expected features (N, D) or images (N, ...), got shape {a.shape}")
    a = a.reshape(len(a), -1).astype(np.float64, copy=False)  # (N, ...) -> (N, D)
    if len(a) == 0:
        raise EmbeddingsError(f"{name} is empty; pass at least one row")
    if not np.isfinite(a).all():
        rows = np.flatnonzero(~np.isfinite(a).all(axis=1))
        raise EmbeddingsError(f"{name} has NaN/Inf in {len(rows)} row(s), first rows {rows[:5].tolist()}; "
                              f"check the encoder's output")
    return a


def _check_xy(train_x, train_y, test_x, test_y) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    xtr, xte = _features(train_x, "train_x"), _features(test_x, "test_x")
    ytr, yte = np.asarray(train_y), np.asarray(test_y)
    if ytr.shape != (len(xtr),) or yte.shape != (len(xte),):
        raise EmbeddingsError(f"labels must be 1-d with one per row: train_x {xtr.shape} / train_y {ytr.shape}, "
                              f"test_x {xte.shape} / test_y {yte.shape}")
    if xtr.shape[1] != xte.shape[1]:
        raise EmbeddingsError(f"train_x has dimension {xtr.shape[1]} but test_x has {xte.shape[1]}")
    if len(np.unique(ytr)) < 2:
        raise EmbeddingsError("train_y has a single class; a classifier needs at least two")
    return xtr, ytr, xte, yte


def _scaled(xtr: np.ndarray, xte: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """z-score with train statistics (sklearn ``StandardScaler``), each feature's std floored at 10 % of the largest.

    The floor keeps near-constant inputs (MNIST's border pixels, inked in a
    handful of images) from being blown up a hundredfold, which made lbfgs crawl;
    for embeddings, whose coordinates have similar spreads, it changes nothing.
    """
    if not standardize:
        return xtr, xte
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(xtr)  # statistics of the train set only
    scaler.scale_ = np.maximum(scaler.scale_, 0.1 * scaler.scale_.max())
    return scaler.transform(xtr), scaler.transform(xte)


def _subsample(xtr: np.ndarray, ytr: np.ndarray, max_train: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_train`` train rows, a seeded uniform sample (all rows when None or fewer)."""
    if max_train is None or len(xtr) <= max_train:
        return xtr, ytr
    if max_train < 2:
        raise EmbeddingsError(f"max_train={max_train}; a classifier needs at least 2 train rows")
    keep = np.sort(np.random.default_rng(seed).choice(len(xtr), size=max_train, replace=False))
    return xtr[keep], ytr[keep]


def logistic_accuracy(train_x, train_y, test_x, test_y, C: float = 1.0, max_iter: int = 1000,
                      standardize: bool = True, max_train: int | None = 5000, seed: int = 0) -> float:
    """Accuracy in [0, 1] of multinomial logistic regression (sklearn ``LogisticRegression``, lbfgs).

    Args:
        C: inverse L2 regularisation strength, > 0 (sklearn's default 1.0).
        max_iter: lbfgs iterations, >= 1.
        standardize: z-score each feature with the train set's mean and std first
            (std floored at 10 % of the largest, see :func:`_scaled`), so that C means the
            same for unit-norm embeddings and for pixels; without it, C = 1 underfits
            32-d unit vectors badly.
        max_train: fit on at most this many train rows (a seeded sample; None = all),
            which bounds the cost on large sets (5,000 rows: a few seconds at D = 784).
        seed: seed of that sample.
    """
    from sklearn.linear_model import LogisticRegression

    xtr, ytr, xte, yte = _check_xy(train_x, train_y, test_x, test_y)
    xtr, ytr = _subsample(xtr, ytr, max_train, seed)
    xtr, xte = _scaled(xtr, xte, standardize)
    clf = LogisticRegression(C=C, max_iter=max_iter).fit(xtr, ytr)
    return float(np.mean(clf.predict(xte) == yte))


def linear_svm_accuracy(train_x, train_y, test_x, test_y, C: float = 1.0, max_iter: int = 5000,
                        standardize: bool = False, seed: int = 0, max_train: int | None = 5000) -> float:
    """Accuracy in [0, 1] of a one-vs-rest linear SVM (sklearn ``LinearSVC``, squared hinge, liblinear).

    liblinear solves the primal when there are more rows than features and the
    dual otherwise (``dual="auto"``), the faster of the two.

    Args:
        C: inverse regularisation strength, > 0.
        max_iter: liblinear iterations, >= 1.
        standardize: z-score features first (off by default: liblinear converges in
            seconds on the features as given but takes minutes on scaled raw MNIST pixels).
        seed: ``random_state`` of liblinear's coordinate order and of the row sample.
        max_train: fit on at most this many train rows (seeded sample; None = all).
    """
    from sklearn.svm import LinearSVC

    xtr, ytr, xte, yte = _check_xy(train_x, train_y, test_x, test_y)
    xtr, ytr = _subsample(xtr, ytr, max_train, seed)
    xtr, xte = _scaled(xtr, xte, standardize)
    clf = LinearSVC(C=C, max_iter=max_iter, random_state=seed, dual="auto").fit(xtr, ytr)
    return float(np.mean(clf.predict(xte) == yte))


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 5, metric: str = "l2") -> float:
    """Accuracy in [0, 1] of a k-nearest-neighbour majority vote (sklearn ``KNeighborsClassifier``).

    Args:
        k: neighbours, 1 <= k <= number of train rows. Ties between classes go
            to the smallest label (sklearn's rule).
        metric: ``"l2"`` (Euclidean) or ``"cos"`` (cosine distance). For
            L2-normalised embeddings both give the same neighbours.
    """
    from sklearn.neighbors import KNeighborsClassifier

    xtr, ytr, xte, yte = _check_xy(train_x, train_y, test_x, test_y)
    if not 1 <= k <= len(xtr):
        raise EmbeddingsError(f"knn: k={k} but there are {len(xtr)} train rows; use 1 <= k <= {len(xtr)}")
    if metric not in ("l2", "cos"):
        raise ValueError(f"knn metric must be 'l2' or 'cos', got {metric!r}")
    clf = KNeighborsClassifier(n_neighbors=k, metric="euclidean" if metric == "l2" else "cosine", n_jobs=1)
    clf.fit(xtr, ytr)
    return float(np.mean(clf.predict(xte) == yte))


def probe_accuracies(train_x, train_y, test_x, test_y, k: int = 5, prefix: str = "") -> dict[str, float]:
    """Logistic-regression, linear-SVM and kNN accuracy of frozen features, each in [0, 1].

    Uses the defaults of :func:`logistic_accuracy`, :func:`linear_svm_accuracy`
    (standardised / as given, at most 5,000 train rows) and :func:`knn_accuracy` (Euclidean, ``k``, all rows).

    Args:
        train_x, test_x: (N, D) features (higher rank is flattened), finite.
        train_y, test_y: (N,) labels; train_y has at least two classes.
        k: neighbours for kNN.
        prefix: prepended to every key (e.g. ``"test/"`` for MLflow).

    Returns:
        ``{prefix+"logreg_accuracy", prefix+"linear_svm_accuracy", prefix+"knn_accuracy"}`` -> float.

    Raises:
        EmbeddingsError: shape mismatch, NaN/Inf, a single train class, or k out of range.
    """
    return {
        f"{prefix}logreg_accuracy": logistic_accuracy(train_x, train_y, test_x, test_y),
        f"{prefix}linear_svm_accuracy": linear_svm_accuracy(train_x, train_y, test_x, test_y),
        f"{prefix}knn_accuracy": knn_accuracy(train_x, train_y, test_x, test_y, k=k),
    }


def pca_baseline(train_x, test_x, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PCA of the train rows to ``dim`` components, applied to both sets: the same-dimension baseline.

    Args:
        train_x, test_x: (N, D) features or images (N, 1, H, W) (flattened to raw pixels).
        dim: components, 1 <= dim <= min(N_train, D).
        seed: ``random_state`` of sklearn's PCA (used by its randomised solver on large inputs).

    Returns:
        (train_z float32 (N_train, dim), test_z float32 (N_test, dim)), centred by
        the train mean, not whitened.

    Raises:
        EmbeddingsError: dimension mismatch, NaN/Inf, or dim out of range.
    """
    from sklearn.decomposition import PCA

    xtr, xte = _features(train_x, "train_x"), _features(test_x, "test_x")
    if xtr.shape[1] != xte.shape[1]:
        raise EmbeddingsError(f"train_x has dimension {xtr.shape[1]} but test_x has {xte.shape[1]}")
    limit = min(xtr.shape)
    if not 1 <= dim <= limit:
        raise EmbeddingsError(f"pca_baseline: dim={dim} but at most min(N_train, D) = {limit} components exist")
    pca = PCA(n_components=dim, random_state=seed).fit(xtr)
    return pca.transform(xtr).astype(np.float32), pca.transform(xte).astype(np.float32)
