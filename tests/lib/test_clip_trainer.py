"""Two-tower model, training loop (checkpoints, resume, NaN guard) and evaluation on tiny digit data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from replearn.lib.clip.data import digit_pairs
from replearn.lib.clip.evaluate import class_embeddings, evaluate_clip, retrieval_recall, zero_shot_predict
from replearn.lib.clip.image_tower import ImageTower, ImageTowerConfig
from replearn.lib.clip.model import ClipConfig, build_model, load_model
from replearn.lib.clip.text_tower import CaptionError, TextTowerConfig
from replearn.lib.clip.trainer import epoch_batches, learning_rate, train_clip, train_digits
from replearn.lib.errors import ReplearnInputError, TrainingError
from replearn.lib.metric.images import load_digits_8x8

TINY = ClipConfig(image=ImageTowerConfig(in_size=8, channels=(8, 16), width=32), text=TextTowerConfig(width=16),
                  dim=16, epochs=2, batch_size=64, lr=3e-3)


@pytest.fixture(scope="module")
def pairs():
    ds = load_digits_8x8()
    return digit_pairs(ds.subset(np.arange(600)), n_test=100, seed=0)


def test_config_round_trip_and_validation():
    cfg = ClipConfig(text=TextTowerConfig(kind="transformer", width=32, heads=4), dim=32)
    assert ClipConfig.from_dict(cfg.to_dict()) == cfg
    assert ClipConfig.from_dict({**cfg.to_dict(), "unknown": 1}) == cfg
    with pytest.raises(ReplearnInputError, match="batch_size=1"):
        ClipConfig(batch_size=1)
    with pytest.raises(ReplearnInputError, match="text"):
        ClipConfig(text={"kind": "rnn"})


def test_image_tower_resizes_any_size_and_colour():
    torch.manual_seed(0)
    tower = ImageTower(ImageTowerConfig(in_size=8, channels=(4,), width=8), dim=4).eval()
    for shape in [(2, 1, 8, 8), (2, 1, 28, 28), (2, 3, 5, 13)]:
        z = tower(torch.rand(shape))
        assert z.shape == (2, 4)
        torch.testing.assert_close(z.norm(dim=1), torch.ones(2))
    with pytest.raises(ReplearnInputError, match="channels"):
        tower(torch.rand(2, 2, 8, 8))


def test_epoch_batches_never_size_one():
    for n, b in [(3, 2), (5, 4), (9, 8), (100, 32), (2, 256)]:
        parts = epoch_batches(n, b, seed=0, epoch=0)
        assert sorted(np.concatenate(parts).tolist()) == list(range(n))
        assert min(len(p) for p in parts) >= 2
    assert [p.tolist() for p in epoch_batches(50, 8, 1, 2)] == [p.tolist() for p in epoch_batches(50, 8, 1, 2)]


def test_cosine_schedule_warms_up_then_decays():
    cfg = dataclasses.replace(TINY, epochs=4, lr=1.0)
    lrs = [learning_rate(cfg, s, 10) for s in range(40)]
    assert lrs[9] == pytest.approx(1.0) and lrs[0] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 0.01
    assert learning_rate(dataclasses.replace(cfg, schedule="constant"), 5, 10) == 1.0


def test_train_logs_checkpoints_and_resumes(pairs, tmp_path):
    torch.set_num_threads(1)
    logs = []
    full = train_digits(TINY, pairs, checkpoint_dir=tmp_path / "a", on_epoch=logs.append)
    assert [l.epoch for l in logs] == [1, 2] and full.resumed_from_epoch == 0
    assert all(np.isfinite(l.loss) and l.loss > 0 for l in logs)
    assert {"zero_shot_top1", "i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"} <= set(logs[-1].metrics)
    assert logs[-1].logit_scale == pytest.approx(full.model.scale)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["epoch-0001.pt", "epoch-0002.pt"]

    # a run killed after epoch 1 resumes from its checkpoint and ends with the same weights
    train_digits(TINY, pairs, checkpoint_dir=tmp_path / "b")
    (tmp_path / "b" / "epoch-0002.pt").unlink()                      # killed before epoch 2 was saved
    resumed = train_digits(TINY, pairs, checkpoint_dir=tmp_path / "b")
    assert resumed.resumed_from_epoch == 1 and len(resumed.history) == 2
    for (n, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=n)
    assert resumed.history[0].loss == full.history[0].loss and resumed.history[1].loss == pytest.approx(full.history[1].loss)

    # the checkpoint alone rebuilds the model (weights_only load)
    m = load_model(tmp_path / "a" / "epoch-0002.pt")
    x = pairs.test.images[:5]
    np.testing.assert_allclose(m.embed_images(x), full.model.embed_images(x), atol=1e-6)
    np.testing.assert_allclose(m.embed_texts(["a thick seven"]), full.model.embed_texts(["a thick seven"]),
                               atol=1e-6)


def test_load_model_rejects_foreign_file(tmp_path):
    torch.save({"x": 1}, tmp_path / "f.pt")
    with pytest.raises(ReplearnInputError, match="not a readable CLIP checkpoint"):
        load_model(tmp_path / "f.pt")
    with pytest.raises(ReplearnInputError, match="not found"):
        load_model(tmp_path / "none.pt")


def test_train_rejects_bad_inputs(pairs):
    with pytest.raises(ReplearnInputError, match="2 images but 1 captions"):
        train_clip(TINY, pairs.train_images[:2], ["a seven"])
    with pytest.raises(ReplearnInputError, match="at least 2"):
        train_clip(TINY, pairs.train_images[:1], ["a seven"])
    with pytest.raises(CaptionError, match="row 1"):
        train_clip(TINY, pairs.train_images[:3], ["a seven", "", "a one"])
    bad = pairs.train_images[:4].copy()
    bad[2, 0, 0, 0] = np.nan
    with pytest.raises(ReplearnInputError, match=r"NaN/Inf.*\[2\]"):
        train_clip(TINY, bad, ["a", "b", "c", "d"])


def test_nan_loss_stops_training(pairs, monkeypatch):
    from replearn.lib.clip import trainer

    monkeypatch.setattr(trainer.ClipLoss, "forward", lambda self, i, t, s: (i * t).sum() * float("nan"))
    with pytest.raises(TrainingError, match=r"loss is nan at epoch 1, batch 1"):
        train_digits(TINY, pairs)


def test_retrieval_recall_with_duplicate_captions():
    e = np.eye(4)
    img = e[[0, 1, 0, 3]]        # image 2 looks like image 0
    txt = e[[0, 1, 3, 3]]
    caps = ["a", "b", "c", "c"]  # pairs 2 and 3 share the caption "c"
    r = retrieval_recall(img, txt, caps, ks=(1, 2))
    # image->text over the distinct captions a, b, c: image 2 ranks "a" first, its "c" second
    assert r["i2t_r1"] == pytest.approx(3 / 4) and r["i2t_r2"] == 1.0 and r["n_texts"] == 3
    # text->image, one query per distinct caption: "c" hits at 1 because image 3 is paired with "c";
    # "a" ties images 0 and 2 and ties favour the query
    assert r["t2i_r1"] == 1.0


def test_zero_shot_and_evaluate_on_trained_model(pairs):
    torch.set_num_threads(1)
    res = train_digits(dataclasses.replace(TINY, epochs=8, batch_size=32, lr=5e-3), pairs)
    ev = evaluate_clip(res.model, pairs.test)
    assert 0.0 <= ev.zero_shot_top1 <= 1.0 and ev.n_images == len(pairs.test)
    assert ev.zero_shot_top1 > 0.4  # chance is 0.1 (0.76 when written)
    C = class_embeddings(res.model, [["a seven", "the number 7"], ["a one"]])
    assert C.shape == (2, 16) and np.allclose(np.linalg.norm(C, axis=1), 1.0, atol=1e-5)
    assert zero_shot_predict(np.eye(16)[:3], C).shape == (3,)
    with pytest.raises(CaptionError, match="zero-shot prompts"):
        class_embeddings(res.model, [["purple giraffe"]])


def test_build_model_seeded():
    a = build_model(TINY, ["a seven", "a one"])
    b = build_model(TINY, ["a seven", "a one"])
    for (n, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, msg=n)
    assert a.scale == pytest.approx(1 / 0.07)


# --------------------------------------------------------------------------- two gloo ranks


def _ddp_rank(rank: int, world: int, port: int, out_dir: str, images, captions, config_dict) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        res = train_clip(ClipConfig.from_dict(config_dict), images, captions,
                         checkpoint_dir=f"{out_dir}/ckpt")
        torch.save({"state": res.model.state_dict(), "loss": [h.loss for h in res.history]},
                   f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_train_in_lockstep(pairs, tmp_path):
    """Under torch.distributed each rank trains on its shard of the global batch; the hand-reduced gradients
    keep the two ranks' weights identical (batch norm running statistics stay per rank)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = 128
    mp.spawn(_ddp_rank, args=(2, port, str(tmp_path), pairs.train_images[:n], pairs.train_captions(0)[:n],
                              TINY.to_dict()), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a["loss"] == b["loss"] and all(np.isfinite(a["loss"]))  # the loss is over the global batch
    for name, value in a["state"].items():
        if "running" in name or "num_batches" in name:
            continue
        torch.testing.assert_close(value, b["state"][name], msg=name)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["epoch-0001.pt", "epoch-0002.pt"]


def test_step_loss_reports_every_n_steps_without_changing_training(pairs):
    torch.set_num_threads(1)
    steps = []
    cfg = dataclasses.replace(TINY, epochs=2, batch_size=100)                 # 500 pairs: 5 steps an epoch
    with_steps = train_digits(cfg, pairs, eval_pairs=None, on_step=steps.append, step_every=2)
    plain = train_digits(cfg, pairs, eval_pairs=None)
    for (n, a), (_, b) in zip(with_steps.model.state_dict().items(), plain.model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=n)
    assert [(s.step, s.epoch, s.batches) for s in steps] == [(2, 1, 2), (4, 1, 2), (5, 1, 1),
                                                              (7, 2, 2), (9, 2, 2), (10, 2, 1)]
    assert with_steps.steps == steps and len(plain.steps) == 10
    for epoch in (1, 2):
        mine = [s for s in steps if s.epoch == epoch]
        mean = sum(s.loss * s.batches for s in mine) / sum(s.batches for s in mine)
        assert mean == pytest.approx(with_steps.history[epoch - 1].loss, rel=1e-12)
    with pytest.raises(ReplearnInputError, match="every must be"):
        train_digits(cfg, pairs, eval_pairs=None, step_every=0)
