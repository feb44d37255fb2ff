"""ClipLoss against a plain loop over the formula, open_clip's formula, bad batches, and 2 gloo ranks."""

from __future__ import annotations

import math
import socket

import pytest
import torch
import torch.nn.functional as F

from replearn.lib.clip.loss import INIT_LOGIT_SCALE, MAX_LOGIT_SCALE, ClipBatchError, ClipLoss, gather_features


def _features(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    i = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    t = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    return i, t


def plain_clip_loss(I: torch.Tensor, T: torch.Tensor, logit_scale: float) -> float:
    """The formula with Python loops: s = min(exp(logit_scale), 100); mean CE over rows and over columns."""
    s = min(math.exp(logit_scale), MAX_LOGIT_SCALE)
    n = len(I)
    sim = [[s * float(I[a] @ T[b]) for b in range(n)] for a in range(n)]
    rows = sum(-sim[a][a] + math.log(sum(math.exp(sim[a][b]) for b in range(n))) for a in range(n)) / n
    cols = sum(-sim[b][b] + math.log(sum(math.exp(sim[a][b]) for a in range(n))) for b in range(n)) / n
    return (rows + cols) / 2


@pytest.mark.parametrize("n,d,scale", [(2, 3, INIT_LOGIT_SCALE), (5, 4, 0.0), (7, 8, 2.5), (4, 6, 10.0)])
def test_matches_plain_loop(n, d, scale):
    I, T = _features(n, d, seed=n)
    got = ClipLoss()(I, T, torch.tensor(scale, dtype=torch.float64))
    assert got.dim() == 0
    assert got.item() == pytest.approx(plain_clip_loss(I, T, scale), rel=1e-10)


def test_matches_open_clip_formula():
    # open_clip ClipLoss (local_loss=False, world_size=1): logits_per_image = logit_scale * I @ T.T,
    # logits_per_text = logit_scale * T @ I.T, loss = (CE(per_image, arange) + CE(per_text, arange)) / 2,
    # where open_clip's model passes logit_scale.exp() (clamped to 100 in the model)
    I, T = _features(6, 5, seed=1)
    ls = torch.tensor(3.0, dtype=torch.float64)
    s = ls.exp().clamp(max=100)
    labels = torch.arange(6)
    ref = (F.cross_entropy(s * I @ T.T, labels) + F.cross_entropy(s * T @ I.T, labels)) / 2
    assert ClipLoss()(I, T, ls).item() == pytest.approx(ref.item(), rel=1e-12)


def test_scale_clamped_at_100_and_no_gradient_beyond():
    I, T = _features(4, 3, seed=2)
    ls = torch.tensor(math.log(1000.0), dtype=torch.float64, requires_grad=True)
    loss = ClipLoss()(I, T, ls)
    assert loss.item() == pytest.approx(plain_clip_loss(I, T, math.log(100.0)), rel=1e-10)
    loss.backward()
    assert ls.grad.item() == 0.0


def test_gradient_flows_to_features_and_scale():
    I, T = _features(5, 4, seed=3)
    I.requires_grad_(True)
    ls = torch.tensor(INIT_LOGIT_SCALE, dtype=torch.float64, requires_grad=True)
    ClipLoss()(I, T, ls).backward()
    assert I.grad.abs().sum() > 0 and ls.grad.abs() > 0


def test_batch_of_one_raises_clear_message():
    I, T = _features(1, 4, seed=4)
    with pytest.raises(ClipBatchError, match="at least 2"):
        ClipLoss()(I, T, torch.tensor(1.0))


def test_mismatched_shapes_raise():
    I, _ = _features(4, 4, seed=5)
    _, T = _features(3, 4, seed=5)
    with pytest.raises(ClipBatchError, match="same shape"):
        ClipLoss()(I, T, torch.tensor(1.0))


def test_gather_without_process_group_raises():
    I, T = _features(2, 3, seed=6)
    with pytest.raises(ClipBatchError, match="torch.distributed"):
        gather_features(I, T)


# --------------------------------------------------------------------------- two gloo ranks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, out_dir: str, I_all, T_all, scale: float) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        n = len(I_all) // world
        I = I_all[rank * n:(rank + 1) * n].clone().requires_grad_(True)
        T = T_all[rank * n:(rank + 1) * n].clone().requires_grad_(True)
        ls = torch.tensor(scale, dtype=torch.float64, requires_grad=True)
        loss = ClipLoss(world_size=world, rank=rank)(I, T, ls)
        loss.backward()
        torch.save({"loss": loss.detach(), "gI": I.grad, "gT": T.grad, "gs": ls.grad}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_equal_single_process_global_batch(tmp_path):
    """Loss on every rank == single-process loss on the global batch; grad wrt each rank's local rows ==
    the single-process grad wrt those rows; logit_scale grad on each rank == the single-process one."""
    import torch.multiprocessing as mp

    world, n_local, d, scale = 2, 4, 5, 2.0
    I_all, T_all = _features(world * n_local, d, seed=7)
    mp.spawn(_rank_main, args=(world, _free_port(), str(tmp_path), I_all, T_all, scale), nprocs=world, join=True)

    I_ref, T_ref = I_all.clone().requires_grad_(True), T_all.clone().requires_grad_(True)
    ls = torch.tensor(scale, dtype=torch.float64, requires_grad=True)
    ref = ClipLoss()(I_ref, T_ref, ls)
    ref.backward()
    for rank in range(world):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        rows = slice(rank * n_local, (rank + 1) * n_local)
        assert got["loss"].item() == pytest.approx(ref.item(), rel=1e-12)
        torch.testing.assert_close(got["gI"], I_ref.grad[rows], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(got["gT"], T_ref.grad[rows], rtol=1e-10, atol=1e-12)
        assert got["gs"].item() == pytest.approx(ls.grad.item(), rel=1e-10)
