"""Miners and label encoding: every index tuple against a brute-force loop over the batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.miners import (all_triplets, batch_hard, encode_labels, negative_pairs, positive_pairs,
                                        semi_hard)

LABELS = [0, 1, 2, 0, 1, 2, 0, 1, 3, 0, 2, 4]        # B = 12; classes 3 and 4 have one member


def emb(seed: int = 0, B: int = 12, dim: int = 6) -> torch.Tensor:
    return torch.randn(B, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def dist(x, i, j, kind="euclidean") -> float:
    if kind == "euclidean":
        return float((x[i] - x[j]).norm())
    return float(1 - x[i] @ x[j] / (x[i].norm() * x[j].norm()))


def as_list(t) -> list[tuple[int, ...]]:
    return list(zip(*(v.tolist() for v in t)))


def test_encode_labels_kinds():
    assert encode_labels(["b", "a", "b", "c"]).tolist() == [1, 0, 1, 2]
    assert encode_labels(np.array(["b", "a", "b"])).tolist() == [1, 0, 1]
    assert encode_labels(np.array(["x", 7, "x"], dtype=object)).tolist()[0] == encode_labels(
        np.array(["x", 7, "x"], dtype=object)).tolist()[2]
    assert encode_labels([5, 9, 5]).tolist() == [5, 9, 5]                      # integers keep their values
    assert encode_labels(torch.tensor([2.0, 3.0])).dtype == torch.int64
    assert encode_labels(np.array([1.0, 2.0])).tolist() == [1, 2]
    out = encode_labels(torch.tensor([1, 2], dtype=torch.int32))
    assert out.dtype == torch.int64


@pytest.mark.parametrize("bad", [[0.5, 1.0], np.array([1.0, np.nan]), ["a", None], np.zeros((2, 2)), torch.zeros(2, 2)])
def test_encode_labels_rejects(bad):
    with pytest.raises(ReplearnInputError):
        encode_labels(bad)


def test_pairs_match_loop():
    B = len(LABELS)
    a, p = positive_pairs(LABELS)
    assert a.dtype == p.dtype == torch.int64
    assert as_list((a, p)) == [(i, j) for i in range(B) for j in range(B) if i != j and LABELS[i] == LABELS[j]]
    a, n = negative_pairs(LABELS)
    assert as_list((a, n)) == [(i, j) for i in range(B) for j in range(B) if LABELS[i] != LABELS[j]]


def test_all_triplets_match_loop_and_string_labels():
    B = len(LABELS)
    ref = [(i, j, k) for i in range(B) for j in range(B) for k in range(B)
           if i != j and LABELS[i] == LABELS[j] and LABELS[k] != LABELS[i]]
    t = all_triplets(torch.tensor(LABELS))
    assert all(v.dtype == torch.int64 for v in t)
    assert as_list(t) == ref
    names = np.array(["cat", "dog", "emu", "ant", "bee"])[LABELS]
    assert as_list(all_triplets(names)) == ref
    assert as_list(all_triplets(list(names))) == ref


@pytest.mark.parametrize("kind", ["euclidean", "cosine_distance"])
def test_batch_hard_matches_loop(kind):
    x, B = emb(1), len(LABELS)
    ref = []
    for i in range(B):
        P = [j for j in range(B) if j != i and LABELS[j] == LABELS[i]]
        N = [k for k in range(B) if LABELS[k] != LABELS[i]]
        if P and N:
            ref.append((i, max(P, key=lambda j: dist(x, i, j, kind)), min(N, key=lambda k: dist(x, i, k, kind))))
    assert as_list(batch_hard(x, LABELS, distance=kind)) == ref
    assert len(ref) == 10                                                       # the two singletons have no positive


def test_batch_hard_same_as_pytorch_metric_learning():
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
    from pytorch_metric_learning.distances import LpDistance

    x = emb(2).float()
    theirs = pml_miners.BatchHardMiner(distance=LpDistance(normalize_embeddings=False))(x, torch.tensor(LABELS))
    assert as_list(batch_hard(x, LABELS)) == sorted(as_list(theirs))


@pytest.mark.parametrize("margin", [0.1, 0.5, 2.0])
def test_semi_hard_matches_loop(margin):
    x, B = emb(3), len(LABELS)
    ref = [(i, j, k) for i in range(B) for j in range(B) for k in range(B)
           if i != j and LABELS[i] == LABELS[j] and LABELS[k] != LABELS[i]
           and dist(x, i, j) < dist(x, i, k) < dist(x, i, j) + margin]
    got = as_list(semi_hard(x, LABELS, margin=margin))
    assert got == ref
    assert len(ref) > 0


def test_semi_hard_grows_with_margin():
    x = emb(4)
    sizes = [len(semi_hard(x, LABELS, margin=m)[0]) for m in (0.0, 0.3, 1.0, 100.0)]
    assert sizes[0] == 0 and sizes == sorted(sizes)


@pytest.mark.parametrize("labels", [list(range(8)), [3] * 8])
def test_no_positive_or_single_class_gives_empty_tuples(labels):
    x = emb(5, B=8)
    for t in (all_triplets(labels), batch_hard(x, labels), semi_hard(x, labels, margin=1.0)):
        assert len(t) == 3 and all(v.numel() == 0 and v.dtype == torch.int64 for v in t)
    if len(set(labels)) == 8:
        assert positive_pairs(labels)[0].numel() == 0
    else:
        assert negative_pairs(labels)[0].numel() == 0


def test_miners_need_one_label_per_row():
    with pytest.raises(ReplearnInputError, match="labels"):
        batch_hard(emb(0), LABELS[:-1])
    with pytest.raises(ReplearnInputError, match=r"\(batch, dim\)"):
        semi_hard(torch.randn(12), LABELS)


def test_miners_do_not_track_gradients():
    x = emb(6).requires_grad_()
    a, p, n = batch_hard(x, LABELS)
    assert not a.requires_grad
