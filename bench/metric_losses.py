"""Benchmark: replearn's metric-learning losses vs pytorch-metric-learning, forward + backward on CPU.

Same embeddings, same labels, same triplets; each case times ``loss(x).backward()``
(including mining for batch-hard) and reports the median over ``--repeats``
runs after ``--warmup``, plus the absolute difference of the two loss values.

Cases (batch B, dim D, C balanced classes):

* ``triplet_all``: hinge over every triplet, mean reduction (ours ``TripletHingeLoss(0.2,
  "euclidean", "mean")``; theirs ``TripletMarginLoss(0.2, LpDistance(normalize_embeddings=False), MeanReducer())``);
* ``triplet_batch_hard``: batch-hard mining + the same loss on the mined triplets
  (ours ``batch_hard``; theirs ``BatchHardMiner``);
* ``ntxent``: two views of B items (2B rows), temperature 0.1 (``InfoNCELoss`` vs ``NTXentLoss``);
* ``supcon``: B rows, temperature 0.1 (``SupConLoss`` vs ``SupConLoss``).

PML's ``NTXentLoss`` builds a (2B) x (2B (2B - 2)) mask of negatives per positive
pair (about 130 million entries at B = 256), so its case takes seconds per repeat
and dominates the run.

    python bench/metric_losses.py [--batch 256] [--dim 128] [--classes 10] [--repeats 20] [--threads N] [--json PATH]

The JSON is one flat object: ``<case>_ours_ms``, ``<case>_pml_ms``, ``<case>_ratio`` (ours / theirs,
< 1 means we are faster), ``<case>_abs_diff``, and the run's settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def time_ms(fn, x: torch.Tensor, repeats: int, warmup: int) -> tuple[float, float]:
    """Median wall time (ms) of ``fn(x).backward()`` and the last loss value."""
    value = 0.0
    times = []
    for i in range(warmup + repeats):
        x.grad = None
        t0 = time.perf_counter()
        loss = fn(x)
        loss.backward()
        dt = time.perf_counter() - t0
        value = float(loss.detach())
        if i >= warmup:
            times.append(dt * 1e3)
    return statistics.median(times), value


def cases(B: int, C: int):
    from pytorch_metric_learning import losses as pml_losses
    from pytorch_metric_learning import miners as pml_miners
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.reducers import MeanReducer

    from replearn.lib.metric.losses import InfoNCELoss, SupConLoss, TripletHingeLoss
    from replearn.lib.metric.miners import batch_hard

    y = torch.arange(B) % C
    ours_triplet = TripletHingeLoss(0.2, distance="euclidean", reduction="mean")
    pml_triplet = pml_losses.TripletMarginLoss(0.2, distance=LpDistance(normalize_embeddings=False), reducer=MeanReducer())
    pml_miner = pml_miners.BatchHardMiner(distance=LpDistance(normalize_embeddings=False))
    ours_nce, pml_nce = InfoNCELoss(0.1), pml_losses.NTXentLoss(temperature=0.1)
    ours_sup, pml_sup = SupConLoss(0.1), pml_losses.SupConLoss(temperature=0.1)
    views = torch.arange(B).repeat(2)
    return {
        "triplet_all": (B, lambda x: ours_triplet(x, y), lambda x: pml_triplet(x, y)),
        "triplet_batch_hard": (B, lambda x: ours_triplet(x, indices=batch_hard(x, y)),
                               lambda x: pml_triplet(x, y, indices_tuple=pml_miner(x, y))),
        "ntxent": (2 * B, lambda x: ours_nce(x[:B], x[B:]), lambda x: pml_nce(x, views)),
        "supcon": (B, lambda x: ours_sup(x, y), lambda x: pml_sup(x, y)),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    result: dict = {"batch": args.batch, "dim": args.dim, "classes": args.classes, "repeats": args.repeats,
                    "threads": torch.get_num_threads(), "torch": torch.__version__}
    try:
        import pytorch_metric_learning

        result["pml"] = pytorch_metric_learning.__version__
    except ImportError:
        raise SystemExit("pytorch-metric-learning is not installed: pip install 'replearn[dev]'") from None

    g = torch.Generator().manual_seed(args.seed)
    print(f"B={args.batch} D={args.dim} classes={args.classes} threads={result['threads']} "
          f"repeats={args.repeats} (median ms of forward+backward)")
    print(f"{'case':<20}{'ours ms':>10}{'pml ms':>10}{'ours/pml':>10}{'|dloss|':>11}")
    for name, (rows, ours, theirs) in cases(args.batch, args.classes).items():
        x = torch.randn(rows, args.dim, generator=g).requires_grad_()
        t_ours, v_ours = time_ms(ours, x, args.repeats, args.warmup)
        t_pml, v_pml = time_ms(theirs, x, args.repeats, args.warmup)
        ratio = t_ours / t_pml
        diff = abs(v_ours - v_pml)
        result.update({f"{name}_ours_ms": round(t_ours, 3), f"{name}_pml_ms": round(t_pml, 3),
                       f"{name}_ratio": round(ratio, 3), f"{name}_abs_diff": diff})
        print(f"{name:<20}{t_ours:>10.2f}{t_pml:>10.2f}{ratio:>10.2f}{diff:>11.2e}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
