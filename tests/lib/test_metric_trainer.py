"""Metric-learning trainer on sklearn's 8x8 digits: learning beats the random encoder, every loss and miner
runs, seeded runs are identical, a killed run resumes to the same weights, empty batches, NaN and collapse
guards, the config's validation and round trip, and the fine-tuned classifier baseline."""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn

from replearn.lib.errors import ReplearnInputError, TrainingError
from replearn.lib.eval.retrieval import retrieval_metrics
from replearn.lib.metric.config import LOSSES, TRIPLET_LOSSES, MetricTrainConfig
from replearn.lib.metric.encoders import EncoderConfig, build_encoder, embed, l2_normalize
from replearn.lib.metric.images import load_digits_8x8
from replearn.lib.checkpoint import TORCH, checkpoint_path
from replearn.lib.metric.trainer import EpochLog, classifier_accuracy, pk_batches, train_classifier, train_metric

ENC = EncoderConfig(kind="cnn", in_size=8, channels=(16, 32), dim=32)
AUG = {"max_translate_px": 0.5, "max_rotation_deg": 10.0}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def digits():
    return load_digits_8x8()


@pytest.fixture(scope="module")
def split(digits):
    """Classes 0-4 only: 600 images to train on, the other ~300 (same classes, unseen images) to retrieve."""
    idx = np.flatnonzero(digits.labels < 5)
    np.random.default_rng(0).shuffle(idx)
    tr, te = idx[:600], idx[600:]
    return digits.images[tr], digits.labels[tr], digits.images[te], digits.labels[te]


def fresh_encoder(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_encoder(ENC)


def map_at_r(encoder, x, y) -> float:
    return retrieval_metrics(embed(encoder, x), y).map_at_r


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- learning


@pytest.mark.parametrize("kw", [dict(loss="supcon"), dict(loss="triplet_hinge", miner="batch_hard")],
                         ids=["supcon", "triplet_batch_hard"])
def test_training_beats_the_random_encoder_on_map_at_r(split, kw):
    xtr, ytr, xte, yte = split
    enc = fresh_encoder(0)
    before = map_at_r(enc, xte, yte)
    res = train_metric(enc, xtr, ytr, MetricTrainConfig(epochs=4, batch_size=128, **kw))
    after = map_at_r(enc, xte, yte)
    assert after > before + 0.15, (before, after)
    assert [h.epoch for h in res.history] == [1, 2, 3, 4]
    assert all(np.isfinite(h.loss) and h.empty_batches == 0 and h.batches == 5 for h in res.history)
    assert res.history[-1].loss < res.history[0].loss
    assert res.resumed_from_epoch == 0 and res.checkpoint is None and res.encoder is enc


def test_infonce_runs_without_labels_and_its_loss_falls(digits):
    cfg = MetricTrainConfig(loss="infonce", epochs=3, batch_size=128, tau=0.2, augment=AUG)
    res = train_metric(fresh_encoder(0), digits.images[:600], None, cfg)
    losses = [h.loss for h in res.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.2, losses
    assert res.history[-1].mean_pairwise_distance > 0.1


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_and_miner_trains_one_finite_epoch(digits, loss):
    miners = ("all", "batch_hard", "semi_hard") if loss in TRIPLET_LOSSES else ("all",)
    for miner in miners:
        cfg = MetricTrainConfig(loss=loss, miner=miner, epochs=1, batch_size=64, classes_per_batch=8,
                                augment=AUG if loss == "infonce" else None)
        res = train_metric(fresh_encoder(1), digits.images[:200], digits.labels[:200], cfg)
        (h,) = res.history
        assert np.isfinite(h.loss) and h.loss >= 0 and h.mean_pairwise_distance > 0, (loss, miner, h)
        assert h.batches == 4  # ceil(200 / (8 * 8))


def test_supcon_with_augment_uses_two_views(digits):
    cfg = MetricTrainConfig(loss="supcon", epochs=1, batch_size=64, augment=AUG)
    (h,) = train_metric(fresh_encoder(0), digits.images[:128], digits.labels[:128], cfg).history
    assert np.isfinite(h.loss) and h.empty_batches == 0


# --------------------------------------------------------------------------- PK batches


def test_pk_batches_hold_P_classes_of_K_distinct_images():
    labels = np.repeat(np.arange(6), [10, 10, 10, 10, 10, 3])                  # class 5 has only 3 images
    batches = pk_batches(labels, P=4, K=5, n_batches=50, rng=np.random.default_rng(0))
    for b in batches:
        assert len(np.unique(b)) == len(b)                                       # no image twice in a batch
        cls, cnt = np.unique(labels[b], return_counts=True)
        assert len(cls) == 4
        assert all(c == (3 if k == 5 else 5) for k, c in zip(cls, cnt))
    seen = np.concatenate(batches)
    assert set(seen) == set(range(len(labels)))                                  # every image used


def test_pk_defaults_cap_P_at_the_number_of_classes(split):
    xtr, ytr, _, _ = split
    # 5 classes, batch 128: P = min(5, 128 // 4) = 5, K = 25 -> 125 images a batch, ceil(600 / 125) = 5 batches
    (h,) = train_metric(fresh_encoder(), xtr, ytr, MetricTrainConfig(epochs=1, batch_size=128)).history
    assert h.batches == 5


# --------------------------------------------------------------------------- determinism and resume


def test_same_seed_gives_identical_weights_other_seed_does_not(split):
    torch.set_num_threads(1)
    xtr, ytr, _, _ = split
    cfg = MetricTrainConfig(loss="triplet_mean", miner="semi_hard", epochs=2, batch_size=128, augment=AUG, seed=3)
    a = train_metric(fresh_encoder(0), xtr, ytr, cfg)
    b = train_metric(fresh_encoder(0), xtr, ytr, cfg)
    c = train_metric(fresh_encoder(0), xtr, ytr, dataclasses.replace(cfg, seed=4))
    assert same_weights(a.encoder, b.encoder)
    assert [h.loss for h in a.history] == [h.loss for h in b.history]
    assert not same_weights(a.encoder, c.encoder)


def test_resume_after_losing_the_last_checkpoint_gives_the_uninterrupted_weights(split, tmp_path):
    xtr, ytr, _, _ = split
    cfg = MetricTrainConfig(loss="supcon", epochs=2, batch_size=128, augment=AUG, seed=1)
    full = train_metric(fresh_encoder(0), xtr, ytr, cfg, checkpoint_dir=tmp_path)
    assert full.checkpoint == checkpoint_path(tmp_path, 2, TORCH)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0001.pt", "epoch-0002.pt"]  # no temporaries left
    checkpoint_path(tmp_path, 2, TORCH).unlink()                                 # "killed" during epoch 2

    seen: list[EpochLog] = []
    resumed = train_metric(fresh_encoder(7), xtr, ytr, cfg, checkpoint_dir=tmp_path, on_epoch=seen.append)
    assert resumed.resumed_from_epoch == 1 and [h.epoch for h in seen] == [2]
    assert same_weights(full.encoder, resumed.encoder)
    assert [h.loss for h in resumed.history] == [h.loss for h in full.history]

    # a finished run loads its last checkpoint and trains nothing
    again = train_metric(fresh_encoder(7), xtr, ytr, cfg, checkpoint_dir=tmp_path)
    assert again.resumed_from_epoch == 2 and same_weights(again.encoder, full.encoder)
    # extending the run continues from it; a different lr does not resume
    longer = train_metric(fresh_encoder(7), xtr, ytr, dataclasses.replace(cfg, epochs=3), checkpoint_dir=tmp_path)
    assert longer.resumed_from_epoch == 2 and len(longer.history) == 3
    other = train_metric(fresh_encoder(7), xtr, ytr, dataclasses.replace(cfg, lr=5e-4, epochs=1),
                         checkpoint_dir=tmp_path / "other")
    assert other.resumed_from_epoch == 0
    foreign = train_metric(fresh_encoder(7), xtr, ytr, dataclasses.replace(cfg, lr=5e-4, epochs=1),
                           checkpoint_dir=tmp_path)
    assert foreign.resumed_from_epoch == 0


def test_checkpoint_rebuilds_the_encoder(split, tmp_path):
    xtr, ytr, xte, _ = split
    cfg = MetricTrainConfig(loss="triplet_max", epochs=1, batch_size=128)
    res = train_metric(fresh_encoder(0), xtr, ytr, cfg, checkpoint_dir=tmp_path)
    state = torch.load(res.checkpoint, weights_only=True)
    assert state["epoch"] == 1 and MetricTrainConfig.from_dict(state["config"]) == cfg
    rebuilt = build_encoder(EncoderConfig.from_dict(state["encoder_config"]))
    rebuilt.load_state_dict(state["state_dict"])
    np.testing.assert_array_equal(embed(rebuilt, xte), embed(res.encoder, xte))
    assert "state" in state["optimizer"] and [EpochLog(**h) for h in state["history"]] == res.history


def test_a_damaged_checkpoint_is_skipped(split, tmp_path):
    xtr, ytr, _, _ = split
    cfg = MetricTrainConfig(epochs=1, batch_size=128)
    train_metric(fresh_encoder(0), xtr, ytr, cfg, checkpoint_dir=tmp_path)
    checkpoint_path(tmp_path, 1, TORCH).write_bytes(b"truncated")
    assert train_metric(fresh_encoder(0), xtr, ytr, cfg, checkpoint_dir=tmp_path).resumed_from_epoch == 0


# --------------------------------------------------------------------------- empty batches, NaN, collapse


def test_all_distinct_labels_give_empty_batches_zero_loss_and_no_update(digits):
    x, y = digits.images[:100], np.arange(100)
    enc = fresh_encoder(0)
    start = {k: v.clone() for k, v in enc.state_dict().items() if "running" not in k and "num_batches" not in k}
    for kw in (dict(loss="supcon"), dict(loss="triplet_hinge", miner="batch_hard"), dict(loss="smooth_softmax")):
        with pytest.warns(UserWarning, match="every label is distinct"):
            res = train_metric(enc, x, y, MetricTrainConfig(epochs=2, batch_size=32, **kw))
        for h in res.history:
            assert h.loss == 0.0 and h.empty_batches == h.batches == 4 and np.isfinite(h.mean_pairwise_distance)
    after = enc.state_dict()
    assert all(torch.equal(start[k], after[k]) for k in start)                  # no optimiser step was taken


class ConstantEncoder(nn.Module):
    """Maps every image to the same unit vector: collapsed by construction."""

    def __init__(self, dim: int = 8):
        super().__init__()
        self.config = EncoderConfig(kind="mlp", in_size=8, channels=(), dim=dim)
        self.w = nn.Parameter(torch.ones(1, dim))

    def forward(self, x):
        return l2_normalize(self.w).expand(x.size(0), -1) + 0.0 * x.flatten(1).sum(1, keepdim=True)


class NaNEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = build_encoder(ENC)
        self.config = ENC

    def forward(self, x):
        return self.inner(x) * float("nan")


def test_collapse_raises_with_the_history_attached(split, tmp_path):
    xtr, ytr, _, _ = split
    seen: list[EpochLog] = []
    with pytest.raises(TrainingError, match="embeddings collapsed.*lower lr / change loss") as info:
        train_metric(ConstantEncoder(), xtr, ytr, MetricTrainConfig(epochs=5, batch_size=128),
                     checkpoint_dir=tmp_path, on_epoch=seen.append)
    err = info.value
    assert isinstance(err, ReplearnInputError) and isinstance(err, ValueError)
    assert len(err.history) == 1 and err.history == seen and err.history[0].mean_pairwise_distance < 1e-3
    assert not list(tmp_path.glob("epoch-*.pt"))                                 # a collapsed state is not saved
    restored = pickle.loads(pickle.dumps(err))
    assert restored.history == err.history and str(restored) == str(err)


def test_collapse_threshold_zero_disables_the_check(split):
    xtr, ytr, _, _ = split
    res = train_metric(ConstantEncoder(), xtr, ytr, MetricTrainConfig(epochs=1, batch_size=128, collapse_threshold=0))
    assert res.history[0].mean_pairwise_distance < 1e-6


@pytest.mark.parametrize("loss", ["supcon", "triplet_hinge"])  # cosine gives a NaN loss; euclidean maps NaN to 0
def test_non_finite_loss_or_embeddings_raise_a_clear_error(split, loss):
    xtr, ytr, _, _ = split
    with pytest.raises(TrainingError, match=r"(loss is nan|NaN/Inf) at epoch 1, batch 1/5 .*lower lr") as info:
        train_metric(NaNEncoder(), xtr, ytr, MetricTrainConfig(loss=loss, epochs=2, batch_size=128))
    assert info.value.history == []


# --------------------------------------------------------------------------- inputs and progress


def test_bad_inputs_are_refused(split):
    xtr, ytr, _, _ = split
    cfg = MetricTrainConfig(epochs=1, batch_size=64)
    with pytest.raises(ReplearnInputError, match="needs labels"):
        train_metric(fresh_encoder(), xtr, None, cfg)
    with pytest.raises(ReplearnInputError, match="one per image"):
        train_metric(fresh_encoder(), xtr, ytr[:-1], cfg)
    with pytest.raises(ReplearnInputError, match="integer class ids"):
        train_metric(fresh_encoder(), xtr, ytr.astype(str), cfg)
    with pytest.raises(ReplearnInputError, match=r"\(N, C, H, W\)"):
        train_metric(fresh_encoder(), xtr[:, 0], ytr, cfg)
    bad = xtr.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(ReplearnInputError, match="NaN/Inf"):
        train_metric(fresh_encoder(), bad, ytr, cfg)


def test_progress_bar_and_mode_restored(split, capsys):
    xtr, ytr, _, _ = split
    enc = fresh_encoder().eval()
    train_metric(enc, xtr[:128], ytr[:128], MetricTrainConfig(epochs=1, batch_size=64), progress=True)
    assert not enc.training
    assert "metric:supcon" in capsys.readouterr().err


# --------------------------------------------------------------------------- config


def test_config_round_trip_and_distance_rule():
    cfg = MetricTrainConfig(loss="infonce", augment={"noise_std": 0.1}, tau=0.5)
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d and d["augment"]["noise_std"] == 0.1
    assert MetricTrainConfig.from_dict({**d, "unknown": 1}) == cfg
    assert cfg.resolved_distance == "cosine_distance" and MetricTrainConfig().resolved_distance == "cosine_distance"
    assert all(MetricTrainConfig(loss=l).resolved_distance == "euclidean" for l in TRIPLET_LOSSES)
    assert MetricTrainConfig(loss="supcon", distance="euclidean").resolved_distance == "euclidean"
    assert dataclasses.replace(MetricTrainConfig(loss="supcon"), loss="triplet_max").resolved_distance == "euclidean"
    key = MetricTrainConfig(epochs=3, device="cpu").training_key()
    assert key == MetricTrainConfig(epochs=9, distance="cosine_distance", device="meta").training_key()
    hash(cfg)  # frozen and hashable


@pytest.mark.parametrize("kw, match", [
    (dict(loss="triplet"), "loss"),
    (dict(miner="hard"), "miner"),
    (dict(distance="manhattan"), "distance"),
    (dict(margin=-0.1), "margin"),
    (dict(tau=0.0), "tau"),
    (dict(epochs=0), "epochs"),
    (dict(batch_size=1), "batch_size"),
    (dict(lr=0.0), "lr"),
    (dict(weight_decay=-1.0), "weight_decay"),
    (dict(seed=-1), "seed"),
    (dict(collapse_threshold=-1.0), "collapse_threshold"),
    (dict(batch_size=64, classes_per_batch=40), "K < 2"),
    (dict(loss="supcon", miner="batch_hard"), "miner='all'"),
    (dict(loss="infonce"), "needs augment"),
    (dict(augment={"rotation": 3}), "unknown augment"),
    (dict(augment={"noise_std": -1.0}), "noise_std"),
    (dict(device="tpu9"), "device"),
])
def test_config_validation(kw, match):
    with pytest.raises(ReplearnInputError, match=match):
        MetricTrainConfig(**kw)


# --------------------------------------------------------------------------- classifier baseline


def test_fine_tuned_classifier_beats_80_percent(digits):
    perm = np.random.default_rng(0).permutation(len(digits))
    tr, te = perm[:1200], perm[1200:]
    model = train_classifier(fresh_encoder(0), digits.images[tr], digits.labels[tr], n_classes=10, epochs=3,
                             lr=3e-3, seed=0)
    acc = classifier_accuracy(model, digits.images[te], digits.labels[te])
    assert acc > 0.8, acc
    assert not model.training and model.head.out_features == 10
    again = train_classifier(fresh_encoder(0), digits.images[tr], digits.labels[tr], n_classes=10, epochs=3,
                             lr=3e-3, seed=0)
    assert same_weights(model, again)
    with pytest.raises(ReplearnInputError, match="0..n_classes-1"):
        train_classifier(fresh_encoder(0), digits.images[tr], digits.labels[tr], n_classes=5)


# --------------------------------------------------------------------------- loss every N steps


def test_step_loss_reports_every_n_steps_without_changing_training(split):
    x, y, _, _ = split
    cfg = MetricTrainConfig(loss="supcon", epochs=2, batch_size=64, seed=3)  # 600 images: 10 batches an epoch
    steps = []
    with_steps = train_metric(fresh_encoder(), x, y, cfg, on_step=steps.append, step_every=4)
    plain = train_metric(fresh_encoder(), x, y, cfg)
    assert same_weights(with_steps.encoder, plain.encoder)
    assert [h.loss for h in with_steps.history] == [h.loss for h in plain.history]
    # 10 batches an epoch in windows of 4: 4, 4, 2 per epoch, the last window of each epoch cut at its end
    assert [(s.step, s.epoch, s.batches) for s in steps] == [(4, 1, 4), (8, 1, 4), (10, 1, 2),
                                                              (14, 2, 4), (18, 2, 4), (20, 2, 2)]
    assert with_steps.steps == steps
    for epoch in (1, 2):
        mine = [s for s in steps if s.epoch == epoch]
        mean = sum(s.loss * s.batches for s in mine) / sum(s.batches for s in mine)
        assert mean == pytest.approx(with_steps.history[epoch - 1].loss, rel=1e-12)
    # by default about 100 points a run: here one per step
    assert len(plain.steps) == 20 and [s.step for s in plain.steps] == list(range(1, 21))
