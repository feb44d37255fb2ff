"""The loss x miner grid on MNIST's unseen classes, beside raw pixels and PCA of the same dimension.

Protocol (Musgrave et al. 2020, "A Metric Learning Reality Check", sec. 4): the
encoder trains on digits 0..4 of the MNIST test set (``../shared/data/mnist``)
and retrieval is measured on digits 5..9, which it never saw: Precision@1,
R-Precision and MAP@R over every unseen image as a query (Euclidean distance).
The linear probe (logistic regression) and kNN accuracy use frozen features of
all ten classes (seeded 70/30 split, as in ``replearn run metric``).

Every (loss, miner) pair that makes sense is trained from the same seed with
the same encoder, epochs, batch and augmentation: the five triplet-family
losses with each miner (``all``, ``batch_hard``, ``semi_hard``), and
``infonce`` (self-supervised, two augmented views) and ``supcon`` with every
pair of the batch. The table goes to stdout, to ``--json`` (one flat object:
``<loss>.<miner>.<metric>``, ``raw_pixels.<metric>``, ``pca_<d>.<metric>``,
``beats_baselines``) and to MLflow (one run in experiment ``metric-grid`` of
the data home's store: each row's metrics, ``grid/table.json`` and a bar plot).

    python bench/metric_grid.py [--epochs 5] [--dim 32] [--json PATH] [--home .replearn] [--quick]

``--quick`` trains one epoch of three configurations (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from replearn.lib.eval.probe import knn_accuracy, logistic_accuracy, pca_baseline
from replearn.lib.eval.retrieval import retrieval_metrics
from replearn.lib.metric.config import LOSSES, MINERS, TRIPLET_LOSSES, MetricTrainConfig
from replearn.lib.metric.encoders import EncoderConfig, build_encoder, embed
from replearn.lib.metric.images import load_mnist_test, split_by_classes
from replearn.lib.metric.trainer import train_metric

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


def grid(quick: bool) -> list[tuple[str, str]]:
    """(loss, miner) pairs: triplet-family losses x every miner, contrastive losses with ``all``."""
    if quick:
        return [("triplet_mean", "batch_hard"), ("smooth_softmax", "semi_hard"), ("supcon", "all")]
    return [(loss, miner) for loss in TRIPLET_LOSSES for miner in MINERS] + \
           [(loss, "all") for loss in LOSSES if loss not in TRIPLET_LOSSES]


def scores(feats: np.ndarray, labels: np.ndarray, unseen: np.ndarray, ptr: np.ndarray, pte: np.ndarray) -> dict:
    """Unseen-class retrieval (MAP@R, P@1, R-Precision) and all-class probe / kNN accuracy of (N, D) features."""
    r = retrieval_metrics(feats[unseen], labels[unseen], "l2")
    return {"map_at_r": r.map_at_r, "precision_at_1": r.precision_at_1, "r_precision": r.r_precision,
            "probe_accuracy": logistic_accuracy(feats[ptr], labels[ptr], feats[pte], labels[pte]),
            "knn_accuracy": knn_accuracy(feats[ptr], labels[ptr], feats[pte], labels[pte], k=5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", default=str(MNIST.resolve()))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--home", default=None, help="data home whose MLflow store gets the grid run (default ./.replearn)")
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    epochs = 1 if args.quick else args.epochs

    ds = load_mnist_test(args.mnist)
    seen, unseen = split_by_classes(ds.labels, 5)
    perm = np.random.default_rng(0).permutation(len(ds))
    ptr, pte = perm[: int(0.7 * len(ds))], perm[int(0.7 * len(ds)):]
    raw = ds.images.reshape(len(ds), -1)
    enc_cfg = EncoderConfig(kind="cnn", in_size=ds.images.shape[-1], channels=(16, 32, 64), dim=args.dim)

    rows: list[dict] = [{"features": "raw_pixels", **scores(raw, ds.labels, unseen, ptr, pte)}]
    # PCA fitted on the seen classes only, as the encoder is
    _, pca_all = pca_baseline(raw[seen], raw, args.dim)
    rows.append({"features": f"pca_{args.dim}", **scores(pca_all, ds.labels, unseen, ptr, pte)})
    print(f"{'features':34s} {'MAP@R':>7s} {'P@1':>7s} {'R-Prec':>7s} {'probe':>7s} {'kNN':>7s} {'train s':>8s}")

    def show(row: dict) -> None:
        print(f"{row['features']:34s} {row['map_at_r']:7.4f} {row['precision_at_1']:7.4f} {row['r_precision']:7.4f} "
              f"{row['probe_accuracy']:7.4f} {row['knn_accuracy']:7.4f} {row.get('train_s', 0.0):8.1f}", flush=True)

    for row in rows:
        show(row)
    for loss, miner in grid(args.quick):
        augment = {} if (loss == "infonce" or not args.no_augment) else None
        cfg = MetricTrainConfig(loss=loss, miner=miner, epochs=epochs, batch_size=args.batch, seed=0, augment=augment)
        torch.manual_seed(0)
        encoder = build_encoder(enc_cfg)
        t0 = time.perf_counter()
        train_metric(encoder, ds.images[seen], ds.labels[seen], cfg, progress=False)
        train_s = time.perf_counter() - t0
        z = embed(encoder, ds.images)
        row = {"features": f"{loss}.{miner}", **scores(z, ds.labels, unseen, ptr, pte), "train_s": train_s}
        rows.append(row)
        show(row)

    base = max(rows[0]["map_at_r"], rows[1]["map_at_r"])
    learned = rows[2:]
    beats = all(r["map_at_r"] > base for r in learned)
    worst = min(learned, key=lambda r: r["map_at_r"])
    print(f"\nbest baseline MAP@R {base:.4f}; worst encoder {worst['features']} {worst['map_at_r']:.4f}; "
          f"every encoder beats raw pixels and PCA: {beats}")
    flat = {f"{r['features']}.{k}": round(float(v), 5) for r in rows for k, v in r.items() if k != "features"}
    flat.update({"beats_baselines": beats, "epochs": epochs, "dim": args.dim, "batch": args.batch,
                 "augment": not args.no_augment, "seen_images": int(len(seen)), "unseen_images": int(len(unseen))})
    if args.json:
        args.json.write_text(json.dumps(flat, indent=1))
    if not args.no_mlflow:
        log_to_mlflow(args.home, rows, flat)


def log_to_mlflow(home: str | None, rows: list[dict], flat: dict) -> None:
    """One run in experiment ``metric-grid``: every figure as a metric, the table as JSON and a bar plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from replearn.infra.home import data_home
    from replearn.infra.tracking import client, experiment_id, tracking_uri

    h = data_home(home)
    uri = tracking_uri(h)
    c = client(uri)
    run = c.create_run(experiment_id(uri, "metric-grid", h), run_name="mnist-unseen-classes")
    rid = run.info.run_id
    metrics = {k: float(v) for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for k, v in metrics.items():
        c.log_metric(rid, k.replace("@", "_at_"), v)
    c.log_param(rid, "beats_baselines", flat["beats_baselines"])
    c.log_text(rid, json.dumps(rows, indent=2), "grid/table.json")
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(rows) + 1))
    ax.barh([r["features"] for r in rows], [r["map_at_r"] for r in rows],
            color=["grey", "grey"] + ["tab:blue"] * (len(rows) - 2))
    ax.set_xlabel("MAP@R on unseen digits 5-9")
    ax.invert_yaxis()
    fig.tight_layout()
    c.log_figure(rid, fig, "grid/map_at_r.png")
    plt.close(fig)
    c.set_terminated(rid)
    print(f"MLflow run {rid} (experiment metric-grid) in {uri}")


if __name__ == "__main__":
    main()
