"""Train a contrastive / triplet encoder or a CLIP two-tower model on several processes with ``torchrun``.

One process per rank; ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``
and the rendezvous address, this module joins the process group (gloo on CPU,
NCCL on GPU) and calls the family's trainer, which shards every global batch
over the ranks (:func:`replearn.lib.metric.trainer.train_metric`,
:func:`replearn.lib.clip.trainer.train_clip`; batch norm uses global-batch
statistics, :func:`replearn.lib.metric.ddp.sync_batchnorm`)::

    # 2 CPU processes on this machine
    torchrun --standalone --nproc_per_node 2 -m replearn.lib.ddp_train metric --out runs/metric-ddp
    torchrun --standalone --nproc_per_node 2 -m replearn.lib.ddp_train clip --out runs/clip-ddp
    # one process per GPU (NCCL), device cuda:<LOCAL_RANK>
    torchrun --standalone --nproc_per_node 4 -m replearn.lib.ddp_train metric --device cuda --out runs/metric-ddp
    # two machines: the same command on each, --nnodes 2 --node_rank {0,1} --rdzv-endpoint HOST:PORT

Started without ``torchrun`` (plain ``python -m replearn.lib.ddp_train ...``)
it trains in one process, which is the reference a distributed run is
compared with: same data, same seed, same global ``--batch-size``.

Outputs (rank 0 only) under ``--out``: ``checkpoints/epoch-NNNN.pt`` (the
trainer's checkpoints; a run started again with the same arguments resumes
from the last one) and ``history.json`` (``{"family", "world_size", "config",
"history": [per-epoch logs]}``). Weights are loaded back with
``torch.load(..., weights_only=True)``
(:func:`replearn.lib.checkpoint.latest_checkpoint`,
:func:`replearn.lib.clip.model.load_model`).

Data: ``--data digits`` (scikit-learn's bundled 8x8 digits, optionally the
first ``--limit`` images), or for ``metric`` a folder of class sub-folders
(:func:`~replearn.lib.metric.images.load_image_folder`), for ``clip`` a
Parquet / CSV file of (image, caption) pairs
(:func:`~replearn.lib.clip.data.load_pairs`).

This module is part of ``lib/``: no Prefect, no MLflow. The Prefect flows
train in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from replearn.lib.errors import ReplearnInputError
from replearn.lib.store.atomic import atomic_path


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m replearn.lib.ddp_train",
                                 description="Train a metric-learning encoder or a CLIP model; start it with "
                                             "torchrun for data-parallel training (one process per rank).")
    ap.add_argument("family", choices=("metric", "clip"), help="model family")
    ap.add_argument("--out", required=True, type=Path, help="output folder (checkpoints/, history.json)")
    ap.add_argument("--data", default="digits",
                    help="'digits' (bundled 8x8 digits), an image folder (metric) or a pairs Parquet/CSV (clip)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N images (digits)")
    ap.add_argument("--size", type=int, default=28, help="side images are resized to (folder / pairs data)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=256, help="GLOBAL batch, split over the ranks")
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default: the family's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dim", type=int, default=64, help="embedding dimension")
    ap.add_argument("--loss", default="supcon", help="metric: loss (see MetricTrainConfig)")
    ap.add_argument("--miner", default="all", help="metric: miner for the triplet losses")
    ap.add_argument("--classes-per-batch", type=int, default=None, help="metric: P of the P x K batches")
    ap.add_argument("--encoder", choices=("cnn", "mlp"), default="cnn",
                    help="metric: encoder kind (mlp has no batch norm: DDP then equals one process exactly)")
    ap.add_argument("--channels", type=int, nargs="+", default=None, help="metric: conv / hidden widths")
    ap.add_argument("--augment", action="store_true", help="metric: augment (infonce always does)")
    ap.add_argument("--device", default="cpu", help="'cpu' or 'cuda' (each rank then uses cuda:LOCAL_RANK)")
    ap.add_argument("--backend", default=None, help="process-group backend (default: nccl on cuda, else gloo)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads per process")
    return ap


def _device(name: str, local_rank: int) -> str:
    if name.startswith("cuda") and ":" not in name:
        return f"cuda:{local_rank}"
    return name


def _digits(limit: int | None):
    from replearn.lib.metric.images import load_digits_8x8

    ds = load_digits_8x8()
    if limit is not None:
        if limit < 2:
            raise ReplearnInputError(f"--limit must be >= 2, got {limit}")
        ds = ds.subset(np.arange(min(limit, len(ds))))
    return ds


def train_metric_main(args: argparse.Namespace, device: str, rank: int) -> dict:
    """Build the encoder and config from ``args``, train (every rank), return rank 0's summary."""
    from replearn.lib.metric.config import MetricTrainConfig
    from replearn.lib.metric.encoders import EncoderConfig, build_encoder
    from replearn.lib.metric.images import load_image_folder
    from replearn.lib.metric.trainer import train_metric

    ds = _digits(args.limit) if args.data == "digits" else load_image_folder(args.data, size=args.size)
    side = ds.images.shape[-1]
    channels = tuple(args.channels) if args.channels else ((32, 64) if args.encoder == "cnn" else (128,))
    enc_cfg = EncoderConfig(kind=args.encoder, in_size=side, in_channels=1, channels=channels, dim=args.dim)
    aug = {"max_translate_px": 1.0, "max_rotation_deg": 10.0} if (args.augment or args.loss == "infonce") else None
    cfg = MetricTrainConfig(loss=args.loss, miner=args.miner, epochs=args.epochs, batch_size=args.batch_size,
                            classes_per_batch=args.classes_per_batch, seed=args.seed, augment=aug, device=device,
                            **({"lr": args.lr} if args.lr is not None else {}))
    torch.manual_seed(args.seed)
    encoder = build_encoder(enc_cfg)                                             # rank 0's weights are broadcast
    res = train_metric(encoder, ds.images, ds.labels, cfg, checkpoint_dir=args.out / "checkpoints",
                       progress=rank == 0)
    return {"config": cfg.to_dict(), "encoder_config": enc_cfg.to_dict(), "resumed_from_epoch": res.resumed_from_epoch,
            "history": [h.to_dict() for h in res.history],
            "checkpoint": str(res.checkpoint) if res.checkpoint else None}


def train_clip_main(args: argparse.Namespace, device: str, rank: int) -> dict:
    """Build the CLIP config from ``args``, train (every rank), return rank 0's summary."""
    from replearn.lib.clip.captions import all_captions
    from replearn.lib.clip.data import digit_pairs, load_pairs
    from replearn.lib.clip.image_tower import ImageTowerConfig
    from replearn.lib.clip.model import ClipConfig, build_model, model_from_state
    from replearn.lib.clip.text_tower import TextTowerConfig
    from replearn.lib.clip.trainer import find_checkpoint, train_clip, train_digits
    from replearn.lib.metric.ddp import sync_batchnorm

    common = dict(dim=args.dim, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, device=device,
                  **({"lr": args.lr} if args.lr is not None else {}))
    ckpt = args.out / "checkpoints"
    if args.data == "digits":
        pairs = digit_pairs(_digits(args.limit), n_test=0.2, seed=args.seed)
        cfg = ClipConfig(image=ImageTowerConfig(in_size=8, channels=(16, 32), width=64),
                         text=TextTowerConfig(width=32), **common)
        vocab = all_captions(pairs.train_templates)
    else:
        p = load_pairs(args.data, size=args.size)
        cfg = ClipConfig(image=ImageTowerConfig(in_size=args.size), **common)
        vocab = list(p.captions)
    # the model is built here (seeded: the same on every rank) so that its batch norm can use global-batch
    # statistics under DDP; a checkpoint to resume from rebuilds it with the vocabulary it was trained with
    found = find_checkpoint(ckpt, cfg)
    model = model_from_state(found.payload, device=device) if found else build_model(cfg, vocab)
    with sync_batchnorm(model):
        if args.data == "digits":
            res = train_digits(cfg, pairs, model=model, checkpoint_dir=ckpt, progress=rank == 0)
        else:
            res = train_clip(cfg, p.images, p.captions, model=model, vocab_captions=vocab, checkpoint_dir=ckpt,
                             progress=rank == 0)
    return {"config": cfg.to_dict(), "resumed_from_epoch": res.resumed_from_epoch,
            "history": [h.to_dict() for h in res.history],
            "checkpoint": str(res.checkpoint) if res.checkpoint else None}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ                 # set by torchrun
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = _device(args.device, local_rank)
    if launched and int(os.environ["WORLD_SIZE"]) > 1:
        backend = args.backend or ("nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend)                                         # env:// from torchrun
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    try:
        train = train_metric_main if args.family == "metric" else train_clip_main
        summary = train(args, device, rank)
        if rank == 0:
            args.out.mkdir(parents=True, exist_ok=True)
            with atomic_path(args.out / "history.json") as tmp:
                Path(tmp).write_text(json.dumps({"family": args.family, "world_size": world, **summary}, indent=2))
            print(json.dumps({"family": args.family, "world_size": world,
                              "loss": [h["loss"] for h in summary["history"]], "out": str(args.out)}))
    except ReplearnInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
