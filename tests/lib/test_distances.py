"""pairwise_distance, l2_normalize, mean_pairwise_distance: against loops, torch.cdist and pytorch-metric-learning."""

from __future__ import annotations

import pytest
import torch

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.distances import DISTANCES, l2_normalize, mean_pairwise_distance, pairwise_distance


def ref_dist(u: torch.Tensor, v: torch.Tensor, kind: str) -> float:
    """One pair, straight from the definition."""
    if kind == "euclidean":
        return float(torch.sqrt(((u - v) ** 2).sum()))
    if kind == "squared_euclidean":
        return float(((u - v) ** 2).sum())
    if kind == "cosine_distance":
        return float(1 - (u @ v) / (u.norm() * v.norm()))
    return float(-(u @ v))


@pytest.fixture
def xy():
    g = torch.Generator().manual_seed(0)
    return torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kind", DISTANCES)
def test_matches_loop(xy, kind):
    x, y = xy
    D = pairwise_distance(x, y, kind=kind)
    assert D.shape == (7, 4)
    ref = torch.tensor([[ref_dist(x[i], y[j], kind) for j in range(4)] for i in range(7)], dtype=torch.float64)
    torch.testing.assert_close(D, ref, atol=1e-10, rtol=1e-10)
    Dxx = pairwise_distance(x, kind=kind)
    ref = torch.tensor([[ref_dist(x[i], x[j], kind) for j in range(7)] for i in range(7)], dtype=torch.float64)
    torch.testing.assert_close(Dxx, ref, atol=1e-10, rtol=1e-10)


def test_larger_is_farther(xy):
    x, _ = xy
    near, far = x[0] + 0.01, 3 * x[0] + torch.ones(5, dtype=x.dtype)
    y = torch.stack([near, far])
    for kind in ("euclidean", "squared_euclidean", "cosine_distance"):
        D = pairwise_distance(x[:1], y, kind=kind)
        assert D[0, 0] < D[0, 1], kind
    # inner product: the more similar (larger <x, y>) pair has the smaller "distance"
    D = pairwise_distance(x[:1], torch.stack([x[0], -x[0]]), kind="inner_product")
    assert D[0, 0] < D[0, 1]


def test_self_distance_diagonal_is_exactly_zero():
    x = torch.randn(50, 64) * 100
    D = pairwise_distance(x, kind="euclidean")
    assert torch.all(D.diagonal() == 0)
    assert torch.all(pairwise_distance(x, kind="squared_euclidean").diagonal() == 0)


def test_euclidean_matches_cdist_float32():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(12, 16, generator=g), torch.randn(9, 16, generator=g)
    torch.testing.assert_close(pairwise_distance(x, y), torch.cdist(x, y), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", DISTANCES)
def test_finite_gradient_at_zero_distance(kind):
    x = torch.randn(4, 3, dtype=torch.float64)
    x = torch.cat([x, x[:1], torch.zeros(2, 3, dtype=torch.float64)]).requires_grad_()  # duplicate + zero rows
    (g,) = torch.autograd.grad(pairwise_distance(x, kind=kind).sum(), x)
    assert torch.isfinite(g).all()
    z = torch.zeros(5, 3, requires_grad=True)
    (g,) = torch.autograd.grad(pairwise_distance(z, z * 1.0, kind=kind).sum(), z)
    assert torch.isfinite(g).all()


def test_euclidean_gradcheck_away_from_zero():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_distance(a, b, kind="euclidean"), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: pairwise_distance(a, b, kind="cosine_distance"), (x, y))


def test_l2_normalize_unit_rows_and_zero_rows():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1e-30, 0.0]], requires_grad=True)
    xn = l2_normalize(x)
    assert not torch.isnan(xn).any()
    torch.testing.assert_close(xn[0], torch.tensor([0.6, 0.8]))
    assert torch.all(xn[1] == 0)
    (g,) = torch.autograd.grad(xn.sum(), x)
    assert torch.isfinite(g).all()


def test_mean_pairwise_distance():
    x = torch.randn(6, 4, dtype=torch.float64)
    ref = sum(ref_dist(x[i], x[j], "euclidean") for i in range(6) for j in range(6) if i != j) / 30
    assert float(mean_pairwise_distance(x)) == pytest.approx(ref, rel=1e-10)
    collapsed = torch.ones(6, 4, requires_grad=True)
    m = mean_pairwise_distance(collapsed)
    assert float(m.detach()) == 0.0
    (g,) = torch.autograd.grad(m, collapsed)
    assert torch.isfinite(g).all()
    assert float(mean_pairwise_distance(torch.randn(1, 4))) == 0.0
    assert float(mean_pairwise_distance(torch.ones(3, 4), kind="cosine_distance")) == pytest.approx(0.0, abs=1e-6)


def test_bad_input():
    x = torch.randn(3, 4)
    with pytest.raises(ReplearnInputError, match="unknown distance"):
        pairwise_distance(x, kind="manhattan")
    with pytest.raises(ReplearnInputError, match="dimensions differ"):
        pairwise_distance(x, torch.randn(2, 5))
    with pytest.raises(ReplearnInputError, match="2-D"):
        pairwise_distance(torch.randn(3, 4, 2))


def test_same_as_pytorch_metric_learning_distances():
    pml = pytest.importorskip("pytorch_metric_learning.distances")
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(12, 8, generator=g), torch.randn(10, 8, generator=g)
    close = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pairwise_distance(x, y, "euclidean"), pml.LpDistance(normalize_embeddings=False)(x, y), **close)
    torch.testing.assert_close(pairwise_distance(x, y, "squared_euclidean"),
                               pml.LpDistance(normalize_embeddings=False, power=2)(x, y), **close)
    torch.testing.assert_close(pairwise_distance(l2_normalize(x), l2_normalize(y)), pml.LpDistance()(x, y), **close)
    torch.testing.assert_close(1 - pairwise_distance(x, y, "cosine_distance"), pml.CosineSimilarity()(x, y), **close)
    torch.testing.assert_close(-pairwise_distance(x, y, "inner_product"),
                               pml.DotProductSimilarity(normalize_embeddings=False)(x, y), **close)


@pytest.mark.parametrize("kind", ["euclidean", "squared_euclidean", "cosine_distance", "inner_product"])
def test_nan_embeddings_give_nan_distances_not_zero(kind):
    x = torch.randn(4, 3)
    x[1, 2] = float("nan")
    D = pairwise_distance(x, kind=kind)
    assert torch.isnan(D[1, [0, 2, 3]]).all() and torch.isnan(D[[0, 2, 3], 1]).all()
    assert not torch.isnan(D[0, 2])
