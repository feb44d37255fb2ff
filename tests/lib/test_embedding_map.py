"""Embedding map: PCA / t-SNE to a PNG, written atomically, coloured by label."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.lib.errors import EmbeddingsError
from replearn.lib.store.embedding_map import embedding_map, project_2d

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 10)) * 5
    y = rng.integers(0, 3, 300)
    return (centres[y] + rng.standard_normal((300, 10))).astype(np.float32), y


def test_pca_separates_clusters(data):
    x, y = data
    xy = project_2d(x, "pca")
    assert xy.shape == (300, 2) and xy.dtype == np.float32
    means = np.array([xy[y == c].mean(0) for c in range(3)])
    spread = max(xy[y == c].std(0).max() for c in range(3))
    assert min(np.linalg.norm(means[i] - means[j]) for i in range(3) for j in range(i)) > 2 * spread


def test_map_with_labels_writes_png_atomically(tmp_path, data):
    x, y = data
    labels = [f"class {c}" for c in y]
    labels[5] = None  # unknown
    p = embedding_map(x, tmp_path / "maps" / "map.png", labels=labels, title="digits")
    assert p.read_bytes()[:8] == PNG and p.stat().st_size > 5000
    assert [q.name for q in p.parent.iterdir()] == ["map.png"]  # no temporary left behind
    p2 = embedding_map(x, p, max_points=50)  # overwrite, subsampled, no labels
    assert p2.read_bytes()[:8] == PNG


def test_tsne_small(tmp_path, data):
    x, y = data
    p = embedding_map(x[:40], tmp_path / "t.png", labels=[str(c) for c in y[:40]], method="tsne")
    assert p.read_bytes()[:8] == PNG


def test_errors(tmp_path, data):
    x, _ = data
    with pytest.raises(EmbeddingsError, match="method must be"):
        embedding_map(x, tmp_path / "m.png", method="mds")
    with pytest.raises(EmbeddingsError, match="one entry per vector"):
        embedding_map(x, tmp_path / "m.png", labels=["a"])
    bad = x.copy()
    bad[3, 3] = np.inf
    with pytest.raises(EmbeddingsError, match="positions 3"):
        embedding_map(bad, tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()
