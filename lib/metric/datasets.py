"""Where a metric-learning (or digit-caption) data set comes from: routing a source name to its loader, the
content hash of the files it reads, and the seeded splits the metric flow evaluates on.

Sources (the ``data`` setting of the metric and CLIP flows):

* ``digits``: scikit-learn's bundled 8x8 digits (:func:`~replearn.lib.metric.images.load_digits_8x8`);
* ``mnist:<folder>``: the MNIST test set in IDX format (``<folder>/t10k-*``);
* a ``.parquet`` file of (image, label) rows;
* otherwise a folder with one sub-folder per class.

:func:`source_hash` names a source by content, so a stage cache keyed on it
reloads the data when the files change and reuses it when they are only moved.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from replearn.lib.metric.images import (
    ImageDataset,
    load_digits_8x8,
    load_image_folder,
    load_image_parquet,
    load_mnist_test,
    split_by_classes,
)
from replearn.lib.store.embeddings_table import content_hash

DIGITS_HASH = "sklearn-digits-8x8"
"""The source hash of ``digits``: the data ships inside scikit-learn and never changes."""

MNIST_PREFIX = "mnist:"


def load_dataset(source: str, image_column: str = "image", label_column: str = "label") -> ImageDataset:
    """``digits`` (scikit-learn 8x8), ``mnist:<folder>`` (IDX test set), a folder of class sub-folders, or Parquet.

    Returns:
        :class:`~replearn.lib.metric.images.ImageDataset`: images float32 (N, 1, H, W) in [0, 1], labels int64 (N,).

    Raises:
        ImageDataError / ReplearnInputError: from the loader (missing folder or file, bad columns, nothing readable).
    """
    if source == "digits":
        return load_digits_8x8()
    if source.startswith(MNIST_PREFIX):
        return load_mnist_test(source.split(":", 1)[1])
    path = Path(source)
    if path.suffix == ".parquet":
        return load_image_parquet(path, image_column, label_column)
    return load_image_folder(path)


def source_files(source: str) -> list[Path]:
    """The files a source is read from, sorted by path: none for ``digits``; the ``t10k-*`` IDX files of
    ``mnist:<folder>``; the file itself (Parquet, CSV); every non-hidden file below a folder. A path that does
    not exist gives ``[]`` (the loader reports it)."""
    if source == "digits":
        return []
    if source.startswith(MNIST_PREFIX):
        folder = Path(source.split(":", 1)[1])
        return sorted(folder.glob("t10k-*")) if folder.is_dir() else []
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*")
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    return []


def source_hash(source: str) -> str:
    """A SHA-256 hex digest (64 chars) naming the content of ``source``.

    ``digits`` gives :data:`DIGITS_HASH`. Otherwise the hash covers each file's path relative to the source
    (in a class folder the sub-folder name is the label) and its bytes (``content_hash``), so it changes when a
    file changes, is added, removed or renamed, and not when the whole source moves. A table of image *paths*
    (CSV, Parquet) is hashed as the table: the images it points to are not read. A missing source hashes its
    name (the loader then raises its usual error).
    """
    if source == "digits":
        return DIGITS_HASH
    files = source_files(source)
    root = Path(source.split(":", 1)[1]) if source.startswith(MNIST_PREFIX) else Path(source)
    h = hashlib.sha256()
    if not files:
        h.update(f"missing:{source}".encode())
    for f in files:
        rel = f.name if f == root else f.relative_to(root).as_posix()
        h.update(f"{rel}\0{content_hash(f)}\n".encode())
    return h.hexdigest()


def probe_split(n: int, seed: int, train_fraction: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``n`` items for classifiers on frozen features: (train, test) index arrays, int64.

    The first ``int(train_fraction * n)`` of a permutation drawn with ``numpy.random.default_rng(seed)`` train,
    the rest test (not sorted: the permutation's order).

    Raises:
        ValueError: ``n < 0`` or ``train_fraction`` outside (0, 1).
    """
    if n < 0 or not 0 < train_fraction < 1:
        raise ValueError(f"probe_split needs n >= 0 and 0 < train_fraction < 1, got n={n}, {train_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(train_fraction * n)
    return perm[:cut], perm[cut:]


def dataset_arrays(ds: ImageDataset, train_classes: int) -> dict[str, np.ndarray]:
    """The arrays the metric flow stores for ``ds`` (one ``.npz``): ``images`` (N, 1, H, W), ``labels`` (N,),
    ``train_idx`` / ``test_idx`` (seen / unseen classes, :func:`~replearn.lib.metric.images.split_by_classes`),
    ``keys`` (N,) strings and ``names`` (C,): the class names, so that ``names[labels]`` names every image.

    Raises:
        ReplearnInputError: from ``split_by_classes`` (a split leaving no seen or no unseen class).
    """
    train_idx, test_idx = split_by_classes(ds.labels, train_classes)
    return dict(images=ds.images, labels=ds.labels, train_idx=train_idx, test_idx=test_idx, keys=np.array(ds.keys),
                names=np.array(ds.classes.names))
