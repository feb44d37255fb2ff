"""The metric trainer with index-mined triplets (``mining`` index / both): each refresh mines with the encoder of that
moment (brute force on its embeddings gives the same table, the stale encoder's does not), the batches hold the mined
images, a killed run resumes on the triplets it trained on, and only the triplet losses accept index mining."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from _mining_reference import brute_force

from replearn.lib.checkpoint import TORCH, checkpoint_path
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.config import MetricTrainConfig
from replearn.lib.metric.encoders import EncoderConfig, build_encoder, embed
from replearn.lib.metric.images import load_digits_8x8
from replearn.lib.metric.index_mining import COLUMNS
from replearn.lib.metric.mining_refresh import refresh_mining, refresh_seed
from replearn.lib.metric.trainer import train_metric

ENC = EncoderConfig(kind="cnn", in_size=8, channels=(16, 32), dim=16)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def small():
    """120 images of digits 0-4 (24 a class): small enough for the brute-force reference."""
    d = load_digits_8x8()
    idx = np.concatenate([np.flatnonzero(d.labels == c)[:24] for c in range(5)])
    return d.images[idx], d.labels[idx]


def fresh_encoder(seed: int = 0):
    torch.manual_seed(seed)
    return build_encoder(ENC)


def rows(mined):
    t = mined.to_arrow().to_pydict()
    return list(zip(*(t[c] for c in COLUMNS)))


def same_ids(got, want) -> bool:
    return [r[:3] + r[5:] for r in got] == [w[:3] + w[5:] for w in want]


def test_each_refresh_mines_with_the_encoder_of_that_moment(small):
    x, y = small
    cfg = MetricTrainConfig(loss="triplet_hinge", mining="index", mining_refresh=2, mining_k=10, mining_negatives=2,
                            epochs=5, batch_size=40, lr=3e-3)
    enc = fresh_encoder(0)
    initial = embed(enc, x)
    seen = []

    def on_refresh(r):  # called before the epoch that trains on r.triplets: enc is the encoder of that moment
        seen.append((r, embed(enc, x)))

    res = train_metric(enc, x, y, cfg, on_refresh=on_refresh)
    assert [r.epoch for r, _ in seen] == [1, 3, 5]
    np.testing.assert_array_equal(seen[0][1], initial)                          # the first: the initial encoder
    for r, z in seen:
        want, guard = brute_force(z, y, 2, "euclidean", refresh_seed(cfg.seed, r.epoch))
        assert same_ids(rows(r.triplets), want) and r.triplets.guard_removed == guard
        np.testing.assert_allclose([g[3:5] for g in rows(r.triplets)], [w[3:5] for w in want], rtol=1e-4, atol=1e-5)
        assert r.stats.triplets == len(want) and r.seconds > 0
    # the encoder moved between refreshes, and a refresh did not mine the stale embeddings
    assert not np.allclose(seen[0][1], seen[2][1], atol=1e-3)
    stale, _ = brute_force(initial, y, 2, "euclidean", refresh_seed(cfg.seed, 5))
    assert not same_ids(rows(seen[2][0].triplets), stale)
    assert res.mined is seen[2][0].triplets and all(h.empty_batches == 0 for h in res.history)


def test_the_first_epoch_trains_on_the_triplets_given_and_later_refreshes_mine_again(small):
    """Given the triplets its own first refresh would mine, a run is the run that mined them (same losses, same
    weights) without that refresh; given other triplets, its first epoch trains on those."""
    x, y = small
    cfg = MetricTrainConfig(loss="triplet_hinge", mining="index", mining_refresh=2, epochs=3, batch_size=40)
    mined_by_itself = []
    own = train_metric(fresh_encoder(0), x, y, cfg, on_refresh=mined_by_itself.append)
    assert [r.epoch for r in mined_by_itself] == [1, 3]
    refreshed = []
    given = train_metric(fresh_encoder(0), x, y, cfg, mined=mined_by_itself[0].triplets, on_refresh=refreshed.append)
    assert [r.epoch for r in refreshed] == [3]                                  # epoch 1 on the given triplets
    assert [h.loss for h in given.history] == [h.loss for h in own.history]
    sa, sb = own.encoder.state_dict(), given.encoder.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # triplets mined with another encoder: epoch 1 trains on them (and only epoch 1's loss can tell)
    other = refresh_mining(fresh_encoder(5), x, y, cfg, epoch=1).triplets
    one = dataclasses.replace(cfg, epochs=1)
    res = train_metric(fresh_encoder(0), x, y, one, mined=other)
    assert res.mined is other and res.history[0].loss != own.history[0].loss


@pytest.mark.parametrize("change, match", [
    (dict(mining="batch"), "mining='batch' does not use them"),
    (dict(mining_negatives=2), r"negatives per anchor 1 \(this run: 2\)"),
    (dict(distance="cosine_distance"), r"distance 'euclidean' \(this run: 'cosine_distance'\)"),
])
def test_triplets_given_that_do_not_fit_the_run_are_refused(small, change, match):
    x, y = small
    cfg = MetricTrainConfig(loss="triplet_max", mining="index", epochs=1, batch_size=40)
    mined = refresh_mining(fresh_encoder(0), x, y, cfg, epoch=1).triplets
    with pytest.raises(ReplearnInputError, match=match):
        train_metric(fresh_encoder(0), x, y, dataclasses.replace(cfg, **change), mined=mined)
    relabelled = y.copy()
    relabelled[mined.negative[0]] = y[mined.anchor[0]]                          # a negative now of its anchor's label
    with pytest.raises(ReplearnInputError, match="negatives of their anchor's label"):
        train_metric(fresh_encoder(0), x, relabelled, cfg, mined=mined)


@pytest.mark.parametrize("mining", ["index", "both"])
def test_index_and_both_train_the_triplet_losses(small, mining):
    x, y = small
    for loss in ("triplet_max", "smooth_softplus"):
        cfg = MetricTrainConfig(loss=loss, mining=mining, epochs=2, batch_size=40, tau=1.0)
        res = train_metric(fresh_encoder(0), x, y, cfg)
        assert all(np.isfinite(h.loss) and h.loss > 0 and h.empty_batches == 0 for h in res.history)
        assert res.mined is not None and len(res.mined) == len(x)               # one negative for every anchor


def test_both_adds_the_mined_loss_to_the_in_batch_loss(small):
    """One batch of every image (P = 5 classes x K = 24) and an MLP (no batch norm, so the extra images do not change
    the anchors' embeddings): the first step's loss of "both" is that of "batch" plus that of "index"."""
    x, y = small
    first = {}
    for mining in ("batch", "index", "both"):
        cfg = MetricTrainConfig(loss="triplet_mean", mining=mining, epochs=1, batch_size=120, classes_per_batch=5)
        torch.manual_seed(0)
        res = train_metric(build_encoder(EncoderConfig(kind="mlp", in_size=8, channels=(32,), dim=16)), x, y, cfg)
        assert res.history[0].batches == 1
        first[mining] = res.history[0].loss
    assert first["index"] > 0 and first["batch"] > 0
    assert first["both"] == pytest.approx(first["batch"] + first["index"], rel=1e-5)


def test_a_killed_run_resumes_on_the_triplets_it_trained_on(small, tmp_path):
    x, y = small
    cfg = MetricTrainConfig(loss="triplet_max", mining="index", mining_refresh=2, epochs=4, batch_size=40, seed=3)
    full = train_metric(fresh_encoder(0), x, y, cfg, checkpoint_dir=tmp_path)
    assert "mined" in torch.load(checkpoint_path(tmp_path, 3, TORCH), weights_only=True)
    checkpoint_path(tmp_path, 4, TORCH).unlink()                                 # "killed" during epoch 4
    refreshed = []
    resumed = train_metric(fresh_encoder(7), x, y, cfg, checkpoint_dir=tmp_path, on_refresh=refreshed.append)
    assert resumed.resumed_from_epoch == 3 and refreshed == []                  # epoch 4 trains on epoch 3's triplets
    assert [h.loss for h in resumed.history] == [h.loss for h in full.history]
    sa, sb = full.encoder.state_dict(), resumed.encoder.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_batch_mining_keeps_its_checkpoint_key_and_index_mining_has_its_own():
    batch = MetricTrainConfig(loss="triplet_max")
    assert "mining" not in batch.training_key() and "mining_k" not in batch.training_key()
    assert batch.training_key() == dataclasses.replace(batch, mining_k=7).training_key()
    index = dataclasses.replace(batch, mining="index")
    assert index.training_key()["mining"] == "index" and index.training_key() != batch.training_key()
    assert index.training_key() != dataclasses.replace(index, mining_refresh=3).training_key()


@pytest.mark.parametrize("kw, match", [
    (dict(loss="supcon", mining="index"), r"mining='index' \(--mining\) needs a triplet loss.*'supcon' \(--loss\)"
                                          r".*set loss to one of triplet_hinge"),
    (dict(loss="infonce", mining="both", augment={}), "mining='both'.*'infonce'.*or mining='batch'"),
    (dict(loss="triplet_max", mining="ann"), "mining: one of batch, index, both"),
    (dict(loss="triplet_max", mining="index", mining_refresh=0), "mining_refresh=0"),
])
def test_index_mining_is_refused_where_it_does_not_apply(kw, match):
    with pytest.raises(ReplearnInputError, match=match):
        MetricTrainConfig(**kw)


def test_training_images_of_one_class_give_no_triplet_and_a_clear_error(small):
    """Without a second class nothing can be a negative: an error naming the fix, not an encoder trained on nothing."""
    images, labels = small
    one = labels == 0
    cfg = MetricTrainConfig(loss="triplet_max", mining="index", epochs=1, batch_size=12, classes_per_batch=1)
    with pytest.raises(ReplearnInputError, match=r"no triplet over 24 training images.*--train-classes.*--mining batch"):
        refresh_mining(fresh_encoder(), images[one], labels[one], cfg, epoch=1)
