"""CLIP training under torch.distributed: 2 gloo ranks on CPU give the loss curve of one process on the same global
batch, through the real ``torchrun`` command (:mod:`replearn.lib.ddp_train`) and through ``train_clip`` directly.

``train_clip`` gathers the features (``ClipLoss``) and sums the gradients over ranks; batch norm in the image tower
normalises each rank's shard with its own statistics unless the model is wrapped in
:func:`replearn.lib.metric.ddp.sync_batchnorm` (the launcher does), which makes the step equal to one process.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from _ddp_launch import free_port, one_and_two_processes

from replearn.lib.clip.captions import all_captions
from replearn.lib.clip.data import digit_pairs
from replearn.lib.clip.image_tower import ImageTowerConfig
from replearn.lib.clip.model import ClipConfig, build_model, load_model
from replearn.lib.clip.text_tower import TextTowerConfig
from replearn.lib.clip.trainer import train_digits
from replearn.lib.metric.images import load_digits_8x8

pytestmark = pytest.mark.slow

TINY = ClipConfig(image=ImageTowerConfig(in_size=8, channels=(8, 16), width=32), text=TextTowerConfig(width=16),
                  dim=16, epochs=3, batch_size=32, lr=5e-3, schedule="constant")
N_PAIRS = 160  # 5 global batches of 32 a epoch: 16 pairs per rank
RTOL_FIRST = 1e-6  # epoch 1 mean loss: only float32 summation order differs (observed about 1e-7)
RTOL = 1e-4        # epochs 2-3: Adam amplifies those differences a little
RTOL_PER_RANK_BN = 2e-2  # batch norm with per-rank statistics: close, not equal (observed about 5e-4)


@pytest.fixture(scope="module")
def pairs():
    ds = load_digits_8x8()
    return digit_pairs(ds.subset(np.arange(200)), n_test=40, seed=0)


def _model(pairs):
    return build_model(TINY, all_captions(pairs.train_templates))


def _rank(rank: int, world: int, port: int, out: str, pairs) -> None:
    import torch.distributed as dist

    from replearn.lib.metric.ddp import sync_batchnorm

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        plain = train_digits(TINY, pairs, model=_model(pairs), eval_pairs=None)
        model = _model(pairs)
        with sync_batchnorm(model):
            synced = train_digits(TINY, pairs, model=model, eval_pairs=None)
        torch.save({"plain": [h.loss for h in plain.history], "synced": [h.loss for h in synced.history],
                    "state": synced.model.state_dict()}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_train_clip_two_ranks_match_one_process(pairs, tmp_path):
    import torch.multiprocessing as mp

    torch.set_num_threads(1)
    assert len(pairs.train_images) == N_PAIRS
    single = train_digits(TINY, pairs, model=_model(pairs), eval_pairs=None)
    want = [h.loss for h in single.history]
    assert want[-1] < want[0] - 0.05  # it learns (log 32 = 3.47 is chance)

    mp.spawn(_rank, args=(2, free_port(), str(tmp_path), pairs), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # the loss is over the global batch: both ranks see the same value, up to float32 summation order
    np.testing.assert_allclose(r0["synced"], r1["synced"], rtol=1e-6)
    np.testing.assert_allclose(r0["plain"], r1["plain"], rtol=1e-6)
    # global-batch batch norm: equal to one process within float32 summation order
    np.testing.assert_allclose(r0["synced"][0], want[0], rtol=RTOL_FIRST)
    np.testing.assert_allclose(r0["synced"], want, rtol=RTOL)
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(r0["state"][key], r1["state"][key], rtol=1e-5, atol=1e-6, msg=key)
        torch.testing.assert_close(r0["state"][key], value, rtol=1e-3, atol=1e-4, msg=key)
    # train_clip alone (batch norm per rank): the same curve within a looser tolerance
    np.testing.assert_allclose(r0["plain"], want, rtol=RTOL_PER_RANK_BN)


def test_torchrun_two_processes_match_one(tmp_path):
    """The command a user runs: ``torchrun --standalone --nproc_per_node 2 -m replearn.lib.ddp_train clip ...``."""
    args = ["-m", "replearn.lib.ddp_train", "clip", "--limit", "200", "--epochs", "3", "--batch-size", "32",
            "--dim", "16", "--lr", "5e-3"]
    one, two, loss1, loss2 = one_and_two_processes(args, tmp_path)
    np.testing.assert_allclose(loss2[0], loss1[0], rtol=RTOL_FIRST)
    np.testing.assert_allclose(loss2, loss1, rtol=RTOL)
    # held-out zero-shot accuracy after each epoch, from the same weights
    np.testing.assert_allclose([h["metrics"]["zero_shot_top1"] for h in two["history"]],
                               [h["metrics"]["zero_shot_top1"] for h in one["history"]], atol=1 / 40 + 1e-9)
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == [
        "epoch-0001.pt", "epoch-0002.pt", "epoch-0003.pt"]
    m1 = load_model(tmp_path / "one" / "checkpoints" / "epoch-0003.pt")   # weights_only load
    m2 = load_model(tmp_path / "two" / "checkpoints" / "epoch-0003.pt")
    x = load_digits_8x8().images[:8]
    np.testing.assert_allclose(m2.embed_images(x), m1.embed_images(x), atol=1e-3)


MINING = dataclasses.replace(TINY, mining="both", mining_k=8, mining_negatives=2)


def _mining_rank(rank: int, world: int, port: int, out: str, pairs) -> None:
    import torch.distributed as dist

    from replearn.lib.metric.ddp import sync_batchnorm

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        model = _model(pairs)
        refreshes = []
        with sync_batchnorm(model):
            res = train_digits(MINING, pairs, model=model, eval_pairs=None, on_refresh=refreshes.append)
        torch.save({"loss": [h.loss for h in res.history],
                    "negatives": [torch.from_numpy(r.triplets.negative) for r in refreshes]}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_hard_negative_batches_under_two_ranks(pairs, tmp_path):
    """Rank 0 mines and every rank trains on its triplets: the ranks agree on every refresh and every loss, and the
    first refresh (the initial towers) is one process's. (The losses differ from one process's: a global batch of
    an odd number of pairs loses its last negative pair to the equal shards.)"""
    import torch.multiprocessing as mp

    torch.set_num_threads(1)
    single_refreshes = []
    single = train_digits(MINING, pairs, model=_model(pairs), eval_pairs=None, on_refresh=single_refreshes.append)
    mp.spawn(_mining_rank, args=(2, free_port(), str(tmp_path), pairs), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert len(r0["negatives"]) == len(r1["negatives"]) == MINING.epochs
    for a, b in zip(r0["negatives"], r1["negatives"]):
        assert torch.equal(a, b)                                                 # the same triplets on every rank
    np.testing.assert_array_equal(r0["negatives"][0].numpy(), single_refreshes[0].triplets.negative)
    np.testing.assert_allclose(r0["loss"], r1["loss"], rtol=1e-6)
    assert np.isfinite(r0["loss"]).all() and len(single.history) == len(r0["loss"])
