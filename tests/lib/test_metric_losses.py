"""Every loss against a plain loop over its triplets/pairs, and against pytorch-metric-learning (to 1e-5)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.distances import DISTANCES, l2_normalize
from replearn.lib.metric.losses import InfoNCELoss, SmoothTripletLoss, SupConLoss, TripletHingeLoss
from replearn.lib.metric.miners import batch_hard, semi_hard

LABELS = [0, 1, 2, 0, 1, 2, 0, 1, 3, 0, 2, 4]        # B = 12; classes 3 and 4 have one member
B = len(LABELS)


def emb(seed: int = 0, n: int = B, dim: int = 6, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def d(u, v, kind: str) -> float:
    if kind == "euclidean":
        return math.sqrt(float(((u - v) ** 2).sum()))
    if kind == "squared_euclidean":
        return float(((u - v) ** 2).sum())
    if kind == "cosine_distance":
        return float(1 - u @ v / (u.norm() * v.norm()))
    return float(-(u @ v))


def loop_triplets(labels):
    n = len(labels)
    return [(a, p, q) for a in range(n) for p in range(n) for q in range(n)
            if a != p and labels[a] == labels[p] and labels[q] != labels[a]]


def grouped(triplets):
    """{(a, p): [n, ...]} in first-seen order."""
    out: dict = {}
    for a, p, n in triplets:
        out.setdefault((a, p), []).append(n)
    return out


# --- triplet hinge -----------------------------------------------------------------------------

def ref_hinge(x, triplets, margin, kind, reduction):
    if reduction == "mean":
        return sum(max(0.0, d(x[a], x[p], kind) - d(x[a], x[n], kind) + margin) for a, p, n in triplets) / len(triplets)
    g = grouped(triplets)
    total = 0.0
    for (a, p), negs in g.items():
        dp = d(x[a], x[p], kind)
        if reduction == "sum_negatives":
            total += sum(max(0.0, dp - d(x[a], x[n], kind) + margin) for n in negs)
        else:
            total += max(0.0, max(dp - d(x[a], x[n], kind) for n in negs) + margin)
    return total / len(g)


@pytest.mark.parametrize("kind", DISTANCES)
@pytest.mark.parametrize("reduction", ["mean", "sum_negatives", "max_negative"])
def test_triplet_hinge_matches_loop(kind, reduction):
    x = emb(1)
    margin = 0.3 if kind == "cosine_distance" else 1.0
    loss_fn = TripletHingeLoss(margin, distance=kind, reduction=reduction)
    got = loss_fn(x, LABELS)
    trip = loop_triplets(LABELS)
    assert float(got) == pytest.approx(ref_hinge(x, trip, margin, kind, reduction), rel=1e-9, abs=1e-12)
    assert loss_fn.n_valid == (len(trip) if reduction == "mean" else len(grouped(trip)))
    assert loss_fn.n_active == sum(d(x[a], x[p], kind) - d(x[a], x[n], kind) + margin > 0 for a, p, n in trip)


@pytest.mark.parametrize("reduction", ["mean", "sum_negatives", "max_negative"])
def test_triplet_hinge_on_mined_triplets_matches_loop(reduction):
    x = emb(2)
    idx = semi_hard(x, LABELS, margin=1.0)
    trip = list(zip(*(t.tolist() for t in idx)))
    assert len(trip) > 5
    got = TripletHingeLoss(1.0, reduction=reduction)(x, indices=idx)
    assert float(got) == pytest.approx(ref_hinge(x, trip, 1.0, "euclidean", reduction), rel=1e-9)


@pytest.mark.parametrize("kind", DISTANCES)
@pytest.mark.parametrize("loss_fn", [TripletHingeLoss(0.5, reduction="mean"), TripletHingeLoss(0.5, reduction="sum_negatives"),
                                     TripletHingeLoss(0.5, reduction="max_negative"),
                                     SmoothTripletLoss(0.5, form="softmax"), SmoothTripletLoss(0.5, form="softplus")],
                         ids=["mean", "sum_negatives", "max_negative", "softmax", "softplus"])
def test_all_triplets_shortcut_equals_listed_triplets(kind, loss_fn):
    """Labels alone take the O(B^2 log B) path; listing every triplet takes the O(T) path: same value and gradient."""
    from replearn.lib.metric.miners import all_triplets

    loss_fn.distance = kind
    labels = (torch.arange(40) % 6).tolist()
    x = emb(30, n=40, dim=8).requires_grad_()
    fast = loss_fn(x, labels)
    n_fast, act_fast = loss_fn.n_valid, getattr(loss_fn, "n_active", None)
    (g_fast,) = torch.autograd.grad(fast, x)
    slow = loss_fn(x, indices=all_triplets(labels))
    (g_slow,) = torch.autograd.grad(slow, x)
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(g_fast, g_slow, rtol=1e-8, atol=1e-12)
    assert n_fast == loss_fn.n_valid and act_fast == getattr(loss_fn, "n_active", None)


def pml_distance(kind):
    from pytorch_metric_learning.distances import CosineSimilarity, DotProductSimilarity, LpDistance

    return {"euclidean": LpDistance(normalize_embeddings=False), "cosine_distance": CosineSimilarity(),
            "squared_euclidean": LpDistance(normalize_embeddings=False, power=2),
            "inner_product": DotProductSimilarity(normalize_embeddings=False)}[kind]


@pytest.mark.parametrize("kind", DISTANCES)
def test_triplet_hinge_mean_equals_pml_triplet_margin_loss(kind):
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    from pytorch_metric_learning.reducers import MeanReducer

    x, y = emb(3, dtype=torch.float32), torch.tensor(LABELS)
    theirs = losses.TripletMarginLoss(margin=0.2, distance=pml_distance(kind), reducer=MeanReducer(),
                                      swap=False, smooth_loss=False)
    ours = TripletHingeLoss(0.2, distance=kind, reduction="mean")
    torch.testing.assert_close(ours(x, y), theirs(x, y), atol=1e-5, rtol=1e-5)
    idx = batch_hard(x, y, distance=kind)                                       # same mined triplets
    torch.testing.assert_close(ours(x, indices=idx), theirs(x, y, indices_tuple=idx), atol=1e-5, rtol=1e-5)
    # PML's default AvgNonZeroReducer divides by the triplets with a positive hinge: our n_active
    ours(x, y)
    n_trip = ours.n_valid
    torch.testing.assert_close(ours(x, y) * n_trip / ours.n_active,
                               losses.TripletMarginLoss(margin=0.2, distance=pml_distance(kind))(x, y),
                               atol=1e-5, rtol=1e-5)


def test_triplet_hinge_mean_equals_pml_at_batch_256():
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    from pytorch_metric_learning.reducers import MeanReducer

    x, y = emb(20, n=256, dim=32, dtype=torch.float32).requires_grad_(), torch.arange(256) % 10
    ours = TripletHingeLoss(0.5)(x, y)
    theirs = losses.TripletMarginLoss(0.5, distance=pml_distance("euclidean"), reducer=MeanReducer())(x, y)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    g_ours, = torch.autograd.grad(ours, x)
    g_theirs, = torch.autograd.grad(theirs, x)
    torch.testing.assert_close(g_ours, g_theirs, atol=1e-6, rtol=1e-4)


def test_triplet_hinge_pml_default_lp_distance_normalises():
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    from pytorch_metric_learning.reducers import MeanReducer

    x = emb(4, dtype=torch.float32)
    theirs = losses.TripletMarginLoss(margin=0.1, reducer=MeanReducer())(x, torch.tensor(LABELS))
    torch.testing.assert_close(TripletHingeLoss(0.1)(l2_normalize(x), LABELS), theirs, atol=1e-5, rtol=1e-5)


# --- smooth triplet ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["euclidean", "cosine_distance", "inner_product"])
@pytest.mark.parametrize("tau", [0.1, 1.0])
def test_smooth_triplet_softplus_matches_loop(kind, tau):
    x = emb(5)
    g = grouped(loop_triplets(LABELS))
    ref = sum(tau * math.log1p(math.exp((d(x[a], x[p], kind) - d(x[a], x[n], kind)) / tau))
              for (a, p), negs in g.items() for n in negs) / len(g)
    loss_fn = SmoothTripletLoss(tau, distance=kind, form="softplus")
    assert float(loss_fn(x, LABELS)) == pytest.approx(ref, rel=1e-9)
    assert loss_fn.n_valid == len(g)


@pytest.mark.parametrize("kind", ["euclidean", "cosine_distance"])
@pytest.mark.parametrize("tau", [0.05, 1.0])
def test_smooth_triplet_softmax_matches_loop_and_cross_entropy(kind, tau):
    x = emb(6)
    g = grouped(loop_triplets(LABELS))
    ref_formula, ref_ce = 0.0, 0.0
    for (a, p), negs in g.items():
        dp = d(x[a], x[p], kind)
        dns = [d(x[a], x[n], kind) for n in negs]
        ref_formula += -math.log(math.exp(-dp / tau) / (math.exp(-dp / tau) + sum(math.exp(-dn / tau) for dn in dns)))
        logits = -torch.tensor([dp] + dns, dtype=torch.float64) / tau          # class 0 = the positive
        ref_ce += float(F.cross_entropy(logits.unsqueeze(0), torch.tensor([0])))
    got = float(SmoothTripletLoss(tau, distance=kind, form="softmax")(x, LABELS))
    assert got == pytest.approx(ref_formula / len(g), rel=1e-9)
    assert got == pytest.approx(ref_ce / len(g), rel=1e-9)


def test_smooth_triplet_softmax_on_mined_triplets():
    x = emb(7)
    idx = semi_hard(x, LABELS, margin=2.0)
    g = grouped(list(zip(*(t.tolist() for t in idx))))
    ref = sum(math.log1p(sum(math.exp(d(x[a], x[p], "euclidean") - d(x[a], x[n], "euclidean")) for n in negs))
              for (a, p), negs in g.items()) / len(g)
    assert float(SmoothTripletLoss(1.0, form="softmax")(x, indices=idx)) == pytest.approx(ref, rel=1e-9)


def test_smooth_triplet_softplus_equals_pml_smooth_loss():
    """tau = 1, margin 0: PML's smooth_loss averages softplus over triplets; ours sums over negatives per pair."""
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    from pytorch_metric_learning.reducers import MeanReducer

    x, y = emb(8, dtype=torch.float32), torch.tensor(LABELS)
    theirs = losses.TripletMarginLoss(margin=0.0, smooth_loss=True, reducer=MeanReducer(),
                                      distance=pml_distance("euclidean"))(x, y)
    ours = SmoothTripletLoss(1.0, form="softplus")
    value = ours(x, y)
    torch.testing.assert_close(value * ours.n_valid / len(loop_triplets(LABELS)), theirs, atol=1e-5, rtol=1e-5)


# --- NT-Xent / InfoNCE -------------------------------------------------------------------------

def ref_ntxent(z1, z2, tau, kind):
    z = torch.cat([z1, z2])
    n = z.size(0)
    half = n // 2
    total = 0.0
    for i in range(n):
        j = (i + half) % n
        num = math.exp(-d(z[i], z[j], kind) / tau)
        den = sum(math.exp(-d(z[i], z[k], kind) / tau) for k in range(n) if k != i)
        total += -math.log(num / den)
    return total / n


@pytest.mark.parametrize("kind", DISTANCES)
def test_info_nce_matches_loop(kind):
    z1, z2 = emb(9, n=6), emb(10, n=6)
    tau = 0.5
    loss_fn = InfoNCELoss(tau, distance=kind)
    assert float(loss_fn(z1, z2)) == pytest.approx(ref_ntxent(z1, z2, tau, kind), rel=1e-9)
    assert loss_fn.n_valid == 12


# Unnormalised inner products at small tau underflow PML's float32 ``log(num / den + tiny)`` (it saturates
# near 87); ours works in log space. So inner_product is compared at temperatures where neither saturates.
@pytest.mark.parametrize(("kind", "tau"), [("cosine_distance", 0.07), ("cosine_distance", 0.5),
                                           ("inner_product", 0.5), ("inner_product", 2.0)])
def test_info_nce_equals_pml_ntxent(kind, tau):
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    z1, z2 = emb(11, n=6, dtype=torch.float32), emb(12, n=6, dtype=torch.float32)
    y = torch.arange(6).repeat(2)                                               # view i and view i + B share a label
    kwargs = {} if kind == "cosine_distance" else {"distance": pml_distance(kind)}
    theirs = losses.NTXentLoss(temperature=tau, **kwargs)(torch.cat([z1, z2]), y)
    torch.testing.assert_close(InfoNCELoss(tau, distance=kind)(z1, z2), theirs, atol=1e-5, rtol=1e-5)


def test_info_nce_rejects_mismatched_views():
    with pytest.raises(ReplearnInputError, match="views"):
        InfoNCELoss()(torch.randn(4, 3), torch.randn(5, 3))


# --- SupCon ------------------------------------------------------------------------------------

def ref_supcon(x, labels, tau, kind):
    n = len(labels)
    losses = []
    for i in range(n):
        P = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not P or all(labels[k] == labels[i] for k in range(n)):
            continue
        den = sum(math.exp(-d(x[i], x[k], kind) / tau) for k in range(n) if k != i)
        losses.append(-sum(math.log(math.exp(-d(x[i], x[p], kind) / tau) / den) for p in P) / len(P))
    return sum(losses) / len(losses), len(losses)


@pytest.mark.parametrize("kind", DISTANCES)
def test_supcon_matches_loop(kind):
    x = emb(13)
    tau = 0.1 if kind == "cosine_distance" else 2.0
    loss_fn = SupConLoss(tau, distance=kind)
    ref, n_anchors = ref_supcon(x, LABELS, tau, kind)
    assert float(loss_fn(x, LABELS)) == pytest.approx(ref, rel=1e-9)
    assert loss_fn.n_valid == n_anchors == 10


@pytest.mark.parametrize("tau", [0.07, 0.1, 0.5])
def test_supcon_equals_pml(tau):
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    x = emb(14, dtype=torch.float32)
    names = ["ant", "bee", "cat", "dog", "emu"]
    ours = SupConLoss(tau)(x, [names[c] for c in LABELS])                      # string labels
    torch.testing.assert_close(ours, losses.SupConLoss(temperature=tau)(x, torch.tensor(LABELS)), atol=1e-5, rtol=1e-5)
    ours_l2 = SupConLoss(tau, distance="euclidean")(x, LABELS)
    theirs_l2 = losses.SupConLoss(temperature=tau, distance=pml_distance("euclidean"))(x, torch.tensor(LABELS))
    torch.testing.assert_close(ours_l2, theirs_l2, atol=1e-5, rtol=1e-5)


# --- robustness --------------------------------------------------------------------------------

def label_losses():
    return [TripletHingeLoss(0.2), TripletHingeLoss(0.2, reduction="sum_negatives"),
            TripletHingeLoss(0.2, reduction="max_negative"), SmoothTripletLoss(form="softplus"),
            SmoothTripletLoss(form="softmax"), SupConLoss()]


@pytest.mark.parametrize("labels", [list(range(8)), ["same"] * 8], ids=["all-distinct", "one-class"])
@pytest.mark.parametrize("i", range(6))
def test_empty_batches_give_zero_with_grad(labels, i):
    loss_fn = label_losses()[i]
    x = emb(15, n=8, dtype=torch.float32).requires_grad_()
    loss = loss_fn(x, labels)
    assert loss.dim() == 0 and float(loss.detach()) == 0.0
    assert loss.requires_grad and loss_fn.n_valid == 0 and loss_fn.empty
    loss.backward()
    assert x.grad is not None and torch.all(x.grad == 0)


def test_empty_index_tuple_and_single_pair_info_nce():
    x = emb(16, n=4).requires_grad_()
    empty = tuple(torch.empty(0, dtype=torch.long) for _ in range(3))
    loss_fn = TripletHingeLoss()
    loss = loss_fn(x, indices=empty)
    assert float(loss.detach()) == 0.0 and loss_fn.empty
    loss.backward()
    nce = InfoNCELoss()
    loss = nce(x[:1], x[1:2])                                                   # one pair, no negatives
    assert float(loss.detach()) == 0.0 and nce.empty
    loss.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("kind", DISTANCES)
def test_all_zero_embeddings_have_finite_gradients(kind):
    for loss_fn in label_losses():
        loss_fn.distance = kind
        z = torch.zeros(B, 6, requires_grad=True)
        loss = loss_fn(z, LABELS)
        (g,) = torch.autograd.grad(loss, z)
        assert torch.isfinite(loss) and torch.isfinite(g).all(), (loss_fn, kind)
    z1, z2 = torch.zeros(5, 6, requires_grad=True), torch.zeros(5, 6, requires_grad=True)
    loss = InfoNCELoss(distance=kind)(z1, z2)
    g1, g2 = torch.autograd.grad(loss, (z1, z2))
    assert torch.isfinite(loss) and torch.isfinite(g1).all() and torch.isfinite(g2).all()


def test_bad_arguments():
    x = emb(0)
    with pytest.raises(ReplearnInputError, match="labels or an"):
        TripletHingeLoss()(x)
    with pytest.raises(ReplearnInputError, match=r"\[0, 12\)"):
        TripletHingeLoss()(x, indices=(torch.tensor([0]), torch.tensor([3]), torch.tensor([12])))
    with pytest.raises(ReplearnInputError, match="reduction"):
        TripletHingeLoss(reduction="sum")
    with pytest.raises(ReplearnInputError, match="distance"):
        SupConLoss(distance="l1")
    with pytest.raises(ReplearnInputError, match="labels"):
        SupConLoss()(x, LABELS[:5])
    with pytest.raises(ReplearnInputError, match="tau"):
        SmoothTripletLoss(tau=0.0)
