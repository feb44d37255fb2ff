"""Index-mined hard negatives (issue 19) against the best in-batch row of the metric grid, on MNIST's unseen classes.

Protocol of ``bench/metric_grid.py`` (Musgrave et al. 2020): the encoder trains
on digits 0..4 of the MNIST test set (``../shared/data/mnist``) and retrieval is
measured on digits 5..9, which it never saw (MAP@R, P@1, R-Precision, every
unseen image a query, Euclidean distance). Same encoder (CNN 16-32-64, dim 32),
batch 128, augmentation, seed and epochs for every row. The rows:

* ``batch``: the grid's best in-batch row, the hardest-negative hinge over all
  triplets of the PK batch (``triplet_max`` with miner ``all``; 0.545 in
  bench/README.md at 4 epochs), measured again in this run;
* ``index``: the same loss on triplets mined from a FAISS index over all
  training images (``mining index``, refreshed every epoch with the current
  encoder; ANCE, Xiong et al. 2021);
* ``both``: the in-batch loss plus the index-mined triplets' (``mining both``);
* ``warmup``: ``--warmup`` epochs of ``batch``, then ``index`` for the rest
  (a second ``train_metric`` call: its optimiser starts afresh);
* ``pool``: ``index``, each anchor's negative drawn uniformly from its
  ``--pool`` nearest negatives rather than the nearest (sentence-transformers'
  ``sampling_strategy="random"`` over ``range_max``; ANCE samples from its
  top-200);
* ``semihard``: ``index``, each anchor's negative the nearest of its ``--pool``
  nearest that is farther than its positive (FaceNet's semi-hard rule over the
  index), the farthest of them when none is.

The two last are bench-only experiments: they wrap the trainer's refresh
(:func:`pick_from_pool`), the library mines the hardest negatives.

For the index rows each refresh is measured (``lib/metric/mining_stats.py``):
the share of triplets that violate the margin or the order (negative nearer
than the positive), the guard's removals, the refresh's time against one
epoch's, and two signs of false negatives that a label guard cannot see:

* ``pixel_false_negative``: the share of mined negatives whose 5 nearest
  training images in pixel space mostly carry the *anchor's* label (a digit
  that looks like the anchor's class: ambiguous or mislabelled), beside
  ``pixel_ambiguous_base``, the share of all training images whose 5 pixel
  neighbours mostly carry another label than their own;
* ``distinct_negatives`` (distinct negatives / anchors) and
  ``top1pct_negatives`` (the share of triplets whose negative is one of the 1 %
  most used negatives): how much the mining piles onto a few images.

    python bench/metric_mining.py [--epochs 4] [--seeds 0] [--warmup 1] [--pool 20] [--rows ...] [--json PATH]

Prints the table and the ratios (MAP@R of each row against ``batch``; the
refresh against an epoch); ``--json`` writes one flat object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from replearn.lib.eval.retrieval import retrieval_metrics
from replearn.lib.metric.config import MetricTrainConfig
from replearn.lib.metric.encoders import EncoderConfig, build_encoder, embed
from replearn.lib.metric.images import load_mnist_test, split_by_classes
from replearn.lib.metric import trainer
from replearn.lib.metric.mining_refresh import MiningRefresh, refresh_seed
from replearn.lib.metric.mining_stats import mining_stats
from replearn.lib.metric.trainer import train_metric
from replearn.lib.store.faiss_index import build_index, search

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
ROWS = ("batch", "index", "both", "warmup", "pool", "semihard")
DEFAULT_ROWS = ("batch", "index", "both", "warmup")


def pixel_votes(raw: np.ndarray, labels: np.ndarray, k: int = 5) -> np.ndarray:
    """(N,) the majority label of each image's ``k`` nearest other images in pixel space (exact L2; ties: the
    smallest label)."""
    _, idx = search(build_index(raw, "l2", "Flat"), raw, k + 1, "l2")              # (N, k + 1), itself first
    nb = labels[idx[:, 1:]]                                                        # (N, k)
    counts = np.stack([(nb == c).sum(axis=1) for c in range(int(labels.max()) + 1)], axis=1)
    return counts.argmax(axis=1)


def refresh_figures(r: MiningRefresh, y: np.ndarray, votes: np.ndarray) -> dict:
    """Statistics of one refresh (positions in the training images) and the false-negative signs (module doc)."""
    m = r.triplets
    uses = np.bincount(m.negative, minlength=m.n)
    top = np.sort(uses)[::-1][:max(1, m.n // 100)].sum()
    return {"epoch": r.epoch, "seconds": r.seconds, "margin_violations": r.stats.margin_violations,
            "order_violations": r.stats.order_violations, "semi_hard": r.stats.semi_hard,
            "guard_removed_per_anchor": r.stats.guard_removed_per_anchor,
            "pixel_false_negative": float((votes[m.negative] == y[m.anchor]).mean()),
            "distinct_negatives": float(len(np.unique(m.negative)) / max(1, len(np.unique(m.anchor)))),
            "top1pct_negatives": float(top / max(1, len(m)))}


def pick_from_pool(mined, rule: str, seed: int):
    """One negative per anchor out of its nearest negatives (``mined``, several per anchor, sorted by anchor then
    rank): ``"pool"`` uniformly at random (seeded), ``"semihard"`` the nearest with ``d_an > d_ap``, else the
    farthest. Returns the triplets with ``negatives`` 1."""
    a = mined.anchor
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
    ends = np.r_[starts[1:], len(a)]
    if rule == "pool":
        rng = np.random.default_rng(seed)
        pick = starts + (rng.random(len(starts)) * (ends - starts)).astype(np.int64)
    else:
        farther = mined.d_an > mined.d_ap
        pick = np.array([s + int(np.argmax(farther[s:e])) if farther[s:e].any() else e - 1
                         for s, e in zip(starts, ends)], dtype=np.int64)
    fields = {name: getattr(mined, name)[pick] for name in ("anchor", "positive", "negative", "d_ap", "d_an",
                                                             "negative_rank")}
    return dataclasses.replace(mined, negatives=1, **fields)


def train_row(row: str, x: np.ndarray, y: np.ndarray, enc_cfg: EncoderConfig, base: MetricTrainConfig,
              warmup: int, pool: int, votes: np.ndarray) -> tuple[torch.nn.Module, float, list[float], list[dict]]:
    """(encoder, train seconds, epoch seconds, refresh figures) of one row (module docstring)."""
    torch.manual_seed(base.seed)
    encoder = build_encoder(enc_cfg)
    refreshes: list[dict] = []
    on_refresh = (lambda r: refreshes.append(refresh_figures(r, y, votes)))
    t0 = time.perf_counter()
    if row in ("pool", "semihard"):
        real = trainer.refresh_mining

        def refresh(encoder, images, labels, config, epoch, device=None):
            r = real(encoder, images, labels, dataclasses.replace(config, mining_negatives=pool), epoch, device)
            picked = pick_from_pool(r.triplets, row, refresh_seed(config.seed, epoch))
            return MiningRefresh(r.epoch, picked, mining_stats(picked, config.margin), r.seconds)

        trainer.refresh_mining = refresh
        try:
            history = train_metric(encoder, x, y, dataclasses.replace(base, mining="index"),
                                   on_refresh=on_refresh).history
        finally:
            trainer.refresh_mining = real
    elif row == "warmup":
        first = train_metric(encoder, x, y, dataclasses.replace(base, epochs=warmup))
        rest = train_metric(encoder, x, y, dataclasses.replace(base, mining="index", epochs=base.epochs - warmup),
                            on_refresh=on_refresh)
        history = first.history + rest.history
    else:
        cfg = base if row == "batch" else dataclasses.replace(base, mining=row)
        history = train_metric(encoder, x, y, cfg, on_refresh=on_refresh).history
    return encoder, time.perf_counter() - t0, [h.seconds for h in history], refreshes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", default=str(MNIST.resolve()), help="MNIST folder (IDX files; default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=4, help="training epochs of every row (default: %(default)s)")
    ap.add_argument("--dim", type=int, default=32, help="embedding dimension (default: %(default)s)")
    ap.add_argument("--batch", type=int, default=128, help="batch size (default: %(default)s)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run of every row per seed (default: 0)")
    ap.add_argument("--warmup", type=int, default=1, help="batch epochs before index mining in the warmup row")
    ap.add_argument("--pool", type=int, default=20, help="nearest negatives the pool and semihard rows pick from")
    ap.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), choices=ROWS)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    ap.add_argument("--json", type=Path, help="write the figures here as one flat JSON object")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if "warmup" in args.rows and not 1 <= args.warmup < args.epochs:
        ap.error(f"--warmup must be in 1..{args.epochs - 1} (epochs - 1) for the warmup row; or leave that row out")

    ds = load_mnist_test(args.mnist)
    seen, unseen = split_by_classes(ds.labels, 5)
    x, y = ds.images[seen], ds.labels[seen]
    votes = pixel_votes(np.ascontiguousarray(x.reshape(len(x), -1)), y)
    enc_cfg = EncoderConfig(kind="cnn", in_size=ds.images.shape[-1], channels=(16, 32, 64), dim=args.dim)
    flat: dict = {"epochs": args.epochs, "dim": args.dim, "batch": args.batch, "seeds": args.seeds,
                  "warmup": args.warmup, "pool": args.pool, "rows": args.rows, "seen_images": int(len(seen)), "unseen_images": int(len(unseen)),
                  "threads": args.threads, "load_1min_at_start": os.getloadavg()[0],
                  "pixel_ambiguous_base": float((votes != y).mean())}
    print(f"MNIST test set: {len(seen):,} training images (digits 0-4), {len(unseen):,} unseen (5-9); "
          f"{args.epochs} epochs, seeds {args.seeds}; load {flat['load_1min_at_start']:.2f} on "
          f"{os.cpu_count()} cores\n")
    print(f"{'row':8s} {'seed':>4s} {'MAP@R':>7s} {'P@1':>7s} {'R-Prec':>7s} {'train s':>8s} {'epoch s':>8s} "
          f"{'refresh s':>9s}")
    maps: dict[str, list[float]] = {r: [] for r in args.rows}
    for seed in args.seeds:
        base = MetricTrainConfig(loss="triplet_max", miner="all", epochs=args.epochs, batch_size=args.batch,
                                 seed=seed, augment={})
        for row in args.rows:
            encoder, train_s, epoch_s, refreshes = train_row(row, x, y, enc_cfg, base, args.warmup, args.pool, votes)
            r = retrieval_metrics(embed(encoder, ds.images[unseen]), ds.labels[unseen], "l2")
            maps[row].append(r.map_at_r)
            key = f"{row}.seed{seed}"
            flat.update({f"{key}.map_at_r": r.map_at_r, f"{key}.precision_at_1": r.precision_at_1,
                         f"{key}.r_precision": r.r_precision, f"{key}.train_s": train_s,
                         f"{key}.epoch_s": float(np.mean(epoch_s))})
            for f in refreshes:
                flat.update({f"{key}.refresh{f['epoch']}.{k}": v for k, v in f.items() if k != "epoch"})
            refresh_s = float(np.mean([f["seconds"] for f in refreshes])) if refreshes else 0.0
            flat[f"{key}.refresh_s"] = refresh_s
            print(f"{row:8s} {seed:4d} {r.map_at_r:7.4f} {r.precision_at_1:7.4f} {r.r_precision:7.4f} "
                  f"{train_s:8.1f} {np.mean(epoch_s):8.1f} {refresh_s:9.2f}", flush=True)
            for f in refreshes:
                print(f"    refresh before epoch {f['epoch']}: {100 * f['margin_violations']:5.1f} % violate the "
                      f"margin, {100 * f['order_violations']:5.1f} % the order, "
                      f"{f['guard_removed_per_anchor']:.1f} guarded per anchor; pixel false negatives "
                      f"{100 * f['pixel_false_negative']:.1f} %; distinct negatives {f['distinct_negatives']:.2f} "
                      f"per anchor, 1 % of them in {100 * f['top1pct_negatives']:.1f} % of triplets", flush=True)
    print()
    b = float(np.mean(maps["batch"])) if "batch" in maps else None
    for row, values in maps.items():
        flat[f"{row}.map_at_r"] = float(np.mean(values))
        if b is not None and row != "batch":
            flat[f"{row}.vs_batch"] = float(np.mean(values)) / b
            print(f"{row:8s} MAP@R {np.mean(values):.4f} / batch {b:.4f} = {np.mean(values) / b:.3f}x")
    if b is not None:
        flat["beats_batch"] = any(flat[f"{r}.map_at_r"] > b for r in maps if r != "batch")
    batch_epoch = np.mean([flat[f"batch.seed{s}.epoch_s"] for s in args.seeds]) if "batch" in maps else None
    for row in ("index", "both"):
        if row in maps and batch_epoch:
            refresh = np.mean([flat[f"{row}.seed{s}.refresh_s"] for s in args.seeds])
            epoch = np.mean([flat[f"{row}.seed{s}.epoch_s"] for s in args.seeds])
            flat[f"{row}.refresh_vs_batch_epoch"] = float(refresh / batch_epoch)
            flat[f"{row}.refresh_vs_own_epoch"] = float(refresh / epoch)
            flat[f"{row}.epoch_vs_batch_epoch"] = float(epoch / batch_epoch)
            print(f"{row:8s} refresh {refresh:.2f} s = {refresh / batch_epoch:.3f}x a batch epoch "
                  f"({batch_epoch:.1f} s), {refresh / epoch:.3f}x its own epoch ({epoch:.1f} s, "
                  f"{epoch / batch_epoch:.2f}x a batch epoch)")
    flat["load_1min_at_end"] = os.getloadavg()[0]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(flat, indent=1))
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
