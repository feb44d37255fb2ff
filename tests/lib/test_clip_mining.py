"""Hard-negative captions for the two-tower model (lib/clip/mining.py, ``mining`` index / both in lib/clip/trainer.py)
on tiny digit data: the guard's caption classes, each refresh mines with the towers of that moment (brute force on their
embeddings gives the same table, the stale towers' do not), no negative caption of the image's class, the batches hold
each anchor's negative pairs, a killed run resumes on the triplets it trained on, and misfit triplets are refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from _mining_reference import brute_force_pairs

import replearn.lib.clip.trainer as clip_trainer
from replearn.lib.checkpoint import TORCH, checkpoint_path
from replearn.lib.clip.captions import all_captions
from replearn.lib.clip.data import digit_pairs
from replearn.lib.clip.image_tower import ImageTowerConfig
from replearn.lib.clip.mining import caption_classes, caption_margin, refresh_caption_mining
from replearn.lib.clip.model import ClipConfig, build_model
from replearn.lib.clip.text_tower import TextTowerConfig
from replearn.lib.clip.trainer import train_clip
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.index_mining import COLUMNS
from replearn.lib.metric.images import load_digits_8x8

TINY = ClipConfig(image=ImageTowerConfig(in_size=8, channels=(8, 16), width=32), text=TextTowerConfig(width=16),
                  dim=16, epochs=3, batch_size=32, lr=3e-3, mining="index", mining_k=8, mining_negatives=2,
                  mining_refresh=2)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def pairs():
    """100 training pairs of 8x8 digits with generated captions (a new template every epoch)."""
    ds = load_digits_8x8()
    return digit_pairs(ds.subset(np.arange(140)), n_test=40, seed=0)


def fit(pairs, config=TINY, **kwargs):
    return train_clip(config, pairs.train_images, pairs.train_captions, labels=pairs.train_labels,
                      vocab_captions=all_captions(pairs.train_templates), **kwargs)


def rows(mined):
    t = mined.to_arrow().to_pydict()
    return list(zip(*(t[c] for c in COLUMNS)))


def same_ids(got, want) -> bool:
    return [r[:3] + r[5:] for r in got] == [w[:3] + w[5:] for w in want]


def brute_force_over_texts(zi, zt, captions, y, negatives=2):
    """The documented refresh as plain loops: each distinct caption text once (its first pair's row and class),
    image i's own caption text its positive, the others of another class its negatives, nearest first."""
    first: dict[str, int] = {}
    for j, c in enumerate(captions):
        first.setdefault(" ".join(c.casefold().split()), j)
    reps = sorted(first.values(), key=lambda j: " ".join(captions[j].casefold().split()))   # one row per text
    own = [reps.index(first[" ".join(c.casefold().split())]) for c in captions]
    want, guard = brute_force_pairs(zi, zt[reps], y, y[reps], own, negatives, "cosine_distance")
    return [(i, i, reps[n], dp, dn, r) for i, _, n, dp, dn, r in want], guard


def test_caption_classes_are_the_labels_or_the_caption_text():
    np.testing.assert_array_equal(caption_classes(["a", "b", "c"], np.array([7, 7, 2])), [7, 7, 2])
    got = caption_classes(["A  red cat", "a red cat", "a dog", "a red cat ", "A dog"])
    assert got[0] == got[1] == got[3] and got[2] == got[4] and got[0] != got[2]
    with pytest.raises(ReplearnInputError, match="one per caption"):
        caption_classes(["a", "b"], np.array([1, 2, 3]))


def test_each_refresh_mines_with_the_towers_of_that_moment(pairs):
    """Refreshes before epochs 1 and 3 (refresh every 2): each table equals brute force over the embeddings of the
    towers of that moment and that epoch's captions; the first is the initial towers'; none is the stale towers'."""
    y = pairs.train_labels
    initial = build_model(TINY, all_captions(pairs.train_templates))
    seen = []

    def on_refresh(r):  # called before the epoch that trains on r.triplets: the model is the one of that moment
        captions = pairs.train_captions(r.epoch - 1)
        seen.append((r, model.embed_images(pairs.train_images), model.embed_texts(captions), captions))

    model = build_model(TINY, all_captions(pairs.train_templates))
    res = fit(pairs, model=model, on_refresh=on_refresh)
    assert [r.epoch for r, _, _, _ in seen] == [1, 3]
    np.testing.assert_array_equal(seen[0][1], initial.embed_images(pairs.train_images))
    for r, zi, zt, captions in seen:
        want, guard = brute_force_over_texts(zi, zt, captions, y)
        assert same_ids(rows(r.triplets), want) and r.triplets.guard_removed == guard
        np.testing.assert_allclose([g[3:5] for g in rows(r.triplets)], [w[3:5] for w in want], rtol=1e-4, atol=1e-5)
        # the guard: no negative caption of the image's class (its class text: "seven", "7"), the positive its own;
        # an image's two negatives are two different texts
        assert (y[r.triplets.negative] != y[r.triplets.anchor]).all()
        assert (r.triplets.positive == r.triplets.anchor).all() and len(r.triplets) == 2 * len(y)
        texts = np.array(captions)[r.triplets.negative].reshape(-1, 2)
        assert (texts[:, 0] != texts[:, 1]).all()
        assert r.stats.margin > 0 and r.seconds > 0
    assert not np.allclose(seen[0][1], seen[1][1], atol=1e-3)                   # the towers moved
    stale, _ = brute_force_over_texts(seen[0][1], seen[0][2], seen[1][3], y)    # the old towers, today's captions
    assert not same_ids(rows(seen[1][0].triplets), stale)
    assert res.mined is seen[1][0].triplets and all(np.isfinite(h.loss) for h in res.history)


def test_the_margin_is_one_logit_and_violations_count_it():
    model = build_model(TINY, ["a one", "a two"])
    assert caption_margin(model) == pytest.approx(1 / model.scale)
    assert 1 / 100 <= caption_margin(model) <= 1


def test_without_labels_a_copy_of_the_caption_is_never_a_negative(pairs):
    """Captions that read the same are one class: with every image captioned by its class name only, the guard
    leaves exactly the captions of the other classes."""
    captions = [f"the digit {int(d)}" for d in pairs.train_labels]
    model = build_model(TINY, captions)
    r = refresh_caption_mining(model, pairs.train_images, captions, caption_classes(captions), k=5, negatives=3,
                               epoch=1)
    text = np.array(captions)
    assert (text[r.triplets.negative] != text[r.triplets.anchor]).all() and len(r.triplets) == 3 * len(captions)
    assert r.triplets.guard_removed <= len(captions)                             # its own text, when ranked ahead


@pytest.mark.parametrize("mining", ["index", "both"])
def test_a_batch_holds_its_anchors_then_their_hard_negative_pairs(pairs, mining, monkeypatch):
    batches, sizes = [], []
    real = clip_trainer.batch_triplets

    def spy(mined, idx):
        ids, tri = real(mined, idx)
        batches.append((mined, idx.copy(), ids))
        return ids, tri

    monkeypatch.setattr(clip_trainer, "batch_triplets", spy)
    model = build_model(TINY, all_captions(pairs.train_templates))
    encode = model.encode_image
    model.encode_image = lambda x: (model.training and sizes.append(len(x)), encode(x))[1]   # training steps only
    res = fit(pairs, dataclasses.replace(TINY, mining=mining, epochs=1), model=model)
    assert len(batches) == len(sizes) == 4 and np.isfinite(res.history[0].loss)  # 100 pairs, batches of 25
    for (mined, idx, ids), n in zip(batches, sizes):
        negatives = set(mined.negative[np.isin(mined.anchor, idx)].tolist())
        assert ids[:len(idx)].tolist() == idx.tolist() and set(ids.tolist()) == set(idx.tolist()) | negatives
        assert n == len(ids) > len(idx)                                         # the towers saw the whole batch


def test_both_adds_the_anchors_loss_to_the_hard_negative_batch_loss(pairs, monkeypatch):
    """The first step of "both" scores the same batch as "index" (same towers) and adds the loss of its anchors
    alone: its loss is index's plus that one."""
    calls = {}
    for mining in ("index", "both"):
        seen = calls[mining] = []
        real = clip_trainer.ClipLoss.forward.__get__(clip_trainer._ONE_PROCESS_LOSS)
        monkeypatch.setattr(clip_trainer._ONE_PROCESS_LOSS, "forward",
                            lambda zi, zt, s, real=real, seen=seen: seen.append((len(zi), real(zi, zt, s))) or
                            seen[-1][1])
        step = []
        fit(pairs, dataclasses.replace(TINY, mining=mining, epochs=1), on_step=step.append, step_every=1)
        calls[mining] = (seen, step[0].loss)
    (index_calls, index_loss), (both_calls, both_loss) = calls["index"], calls["both"]
    batch, anchors = both_calls[0], both_calls[1]
    assert batch[0] == index_calls[0][0] > anchors[0] == 25                     # the batch, then its 25 anchors
    assert float(batch[1].detach()) == pytest.approx(index_loss, rel=1e-6)
    assert both_loss == pytest.approx(index_loss + float(anchors[1].detach()), rel=1e-6)


def test_a_killed_run_resumes_on_the_triplets_it_trained_on(pairs, tmp_path):
    cfg = dataclasses.replace(TINY, epochs=4, mining_refresh=2)
    full = fit(pairs, cfg, checkpoint_dir=tmp_path)
    assert "mined" in torch.load(checkpoint_path(tmp_path, 3, TORCH), weights_only=True)
    checkpoint_path(tmp_path, 4, TORCH).unlink()                                 # "killed" during epoch 4
    refreshed = []
    resumed = fit(pairs, cfg, checkpoint_dir=tmp_path, on_refresh=refreshed.append)
    assert resumed.resumed_from_epoch == 3 and refreshed == []                  # epoch 4 trains on epoch 3's triplets
    assert [h.loss for h in resumed.history] == [h.loss for h in full.history]
    sa, sb = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_first_epoch_trains_on_the_triplets_given(pairs):
    cfg = dataclasses.replace(TINY, epochs=2)
    first = []
    own = fit(pairs, cfg, on_refresh=first.append)
    refreshed = []
    given = fit(pairs, cfg, mined=first[0].triplets, on_refresh=refreshed.append)
    assert [r.epoch for r in refreshed] == [] and [h.loss for h in given.history] == [h.loss for h in own.history]


@pytest.mark.parametrize("change, match", [
    (dict(mining="batch"), "mining='batch' does not use them"),
    (dict(mining_negatives=1), r"negatives per anchor 2 \(this run: 1\)"),
])
def test_triplets_that_do_not_fit_the_run_are_refused(pairs, change, match):
    model = build_model(TINY, all_captions(pairs.train_templates))
    r = refresh_caption_mining(model, pairs.train_images, pairs.train_captions(0), pairs.train_labels, k=8,
                               negatives=2, epoch=1)
    with pytest.raises(ReplearnInputError, match=match):
        fit(pairs, dataclasses.replace(TINY, **change), mined=r.triplets)


def test_batch_mining_keeps_the_checkpoint_key_and_index_mining_has_its_own():
    batch = dataclasses.replace(TINY, mining="batch")
    assert not {"mining", "mining_k", "mining_refresh", "mining_negatives"} & set(batch.training_key())
    assert batch.training_key() == dataclasses.replace(batch, mining_k=3).training_key()
    assert TINY.training_key()["mining"] == "index" and TINY.training_key() != batch.training_key()
    with pytest.raises(ReplearnInputError, match="mining"):
        ClipConfig(mining="ann")


def test_captions_of_one_class_cannot_be_negatives_and_say_so(pairs):
    one = np.flatnonzero(pairs.train_labels == pairs.train_labels[0])
    model = build_model(TINY, all_captions(pairs.train_templates))
    caps = [pairs.train_captions(0)[i] for i in one]
    with pytest.raises(ReplearnInputError, match=r"no caption that can be a negative.*--mining batch"):
        refresh_caption_mining(model, pairs.train_images[one], caps, caption_classes(caps, pairs.train_labels[one]),
                               k=5, negatives=1, epoch=1)
