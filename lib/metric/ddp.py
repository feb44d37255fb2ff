"""Data-parallel pieces shared by the trainers: shard a global batch, gather embeddings, sum gradients, sync batch norm.

Under ``torch.distributed`` (gloo on CPU, NCCL on GPU, started by ``torchrun``,
see :mod:`replearn.lib.ddp_train`) a trainer keeps one model per rank and
makes every step equal to the single-process step on the global batch:

1. every rank draws the same global batch (same seed) and encodes its
   contiguous shard (:func:`shard_sizes`);
2. :func:`gather_views` all-gathers the embeddings back into the global batch,
   the rank's own rows keeping their autograd history (open_clip's
   ``gather_with_grad=False``), so the loss, computed on the whole batch on
   every rank, has the single-process value, and rank r's backward gives the
   part of each parameter's gradient that flows through rank r's rows;
3. :func:`sum_gradients` sums those parts over ranks: the single-process
   gradient (not DDP's mean, which is 1/world_size of it);
4. :func:`sync_batchnorm` makes batch norm in training mode normalise with the
   statistics of the whole global batch (all-reduced, differentiably), as one
   process would; it works on CPU with gloo, where ``nn.SyncBatchNorm`` does not.

The remaining difference from one process is floating-point summation order
(about 1e-7 relative per step in float32).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def world() -> tuple[int, int]:
    """(world_size, rank): (1, 0) unless torch.distributed is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def shard_sizes(batch: int, world_size: int) -> list[int]:
    """Rows of a global batch of ``batch`` items each rank encodes: contiguous, sizes differ by at most one."""
    return [len(part) for part in np.array_split(np.arange(batch), world_size)]


def gather_views(z_local: torch.Tensor, sizes: list[int], rank: int, n_views: int = 1) -> torch.Tensor:
    """All-gather the ranks' embeddings back into the global batch, in single-process order.

    Args:
        z_local: (V * sizes[rank], D) this rank's embeddings, view-major ([view 0 shard; view 1 shard; ...]).
        sizes: rows per rank of each view (:func:`shard_sizes`); may differ by one.
        rank: this rank.
        n_views: V, the views of each image the encoder saw (2 for SimCLR-style pairs).

    Returns:
        (V * sum(sizes), D): view 0 of every rank in rank order, then view 1, ...; this
        rank's rows are ``z_local`` itself (autograd flows through them), the others are
        constants. The same values on every rank.
    """
    n, m, D = sizes[rank], max(sizes), z_local.size(1)
    mine = z_local.reshape(n_views, n, D)                                        # (V, n, D)
    padded = z_local.new_zeros(n_views, m, D)                                    # all_gather needs equal shapes
    padded[:, :n] = mine.detach()
    bufs = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(bufs, padded)
    rows = [mine[v] if r == rank else bufs[r][v, :n_r] for v in range(n_views) for r, n_r in enumerate(sizes)]
    return torch.cat(rows)                                                        # (V * B, D)


def sum_gradients(module: nn.Module) -> None:
    """Sum every trainable parameter's gradient over ranks (one flat all-reduce; a missing gradient counts as 0)."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()


@torch.no_grad()
def broadcast_state(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank (in place)."""
    for t in module.state_dict().values():
        dist.broadcast(t, src=src)


@torch.no_grad()
def average_buffers(module: nn.Module) -> None:
    """Average floating-point buffers (e.g. batch-norm running statistics) over ranks (in place)."""
    world_size = dist.get_world_size()
    for b in module.buffers():
        if b.is_floating_point():
            dist.all_reduce(b, op=dist.ReduceOp.SUM)
            b.div_(world_size)


class _AllReduceSum(torch.autograd.Function):
    """``all_reduce(SUM)`` with a gradient: the backward of a sum over ranks is the sum over ranks of the gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        g = grad.clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        return g


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of ``x`` over ranks, differentiable (every rank must call it, and run backward, in the same order)."""
    return _AllReduceSum.apply(x)


def _global_batch_norm(self: _BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """Batch norm with the statistics of the whole global batch (every rank's rows), differentiable.

    Two passes (mean, then the mean squared deviation), each one all-reduce of
    per-channel sums; the backward of each all-reduce sums the gradients of all
    ranks, which is what the global statistics' gradient is. Running statistics
    are updated as ``nn.BatchNorm`` does (unbiased variance). In eval mode the
    module's own forward runs (running statistics).
    """
    if not self.training:
        return type(self).forward(self, x)
    self._check_input_dim(x)
    dims = [d for d in range(x.dim()) if d != 1]                                 # all but channels
    shape = [1, -1] + [1] * (x.dim() - 2)                                        # (1, C, 1, ...)
    count = x.new_tensor(float(x.numel() // x.size(1)))
    n = all_reduce_sum(count)                                                    # rows * pixels, all ranks
    mean = all_reduce_sum(x.sum(dim=dims)) / n                                  # (C,)
    dev = x - mean.reshape(shape)
    var = all_reduce_sum((dev * dev).sum(dim=dims)) / n                         # (C,) biased, for normalising
    y = dev * torch.rsqrt(var + self.eps).reshape(shape)
    if self.affine:
        y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
    if self.track_running_stats:
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            N = float(n)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * (N / max(N - 1.0, 1.0)), alpha=m)
    return y


@contextlib.contextmanager
def sync_batchnorm(module: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, every batch-norm layer of ``module`` in training mode uses global-batch statistics.

    A no-op unless torch.distributed is initialised with more than one rank.
    Every rank must run the same forward passes in the same order (each layer
    all-reduces). The layers' class, parameters and ``state_dict`` keys are
    unchanged (only their ``forward`` is patched, and restored on exit).
    """
    if world()[0] == 1:
        yield module
        return
    patched = [m for m in module.modules() if isinstance(m, _BatchNorm)]
    for m in patched:
        m.forward = types.MethodType(_global_batch_norm, m)
    try:
        yield module
    finally:
        for m in patched:
            del m.forward
