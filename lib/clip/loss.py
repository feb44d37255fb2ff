"""The symmetric contrastive loss of CLIP, single-process and across torch.distributed ranks.

Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
Supervision", ICML, fig. 3 (pseudocode). For a batch of N (image, text) pairs
with L2-normalised features I (N, D) and T (N, D) and a learnable log-scale:

    s      = min(exp(logit_scale), 100)
    logits = s * I T^T                                  (N, N), row i = image i against every text
    L      = ( CE(logits, arange(N)) + CE(logits^T, arange(N)) ) / 2

each CE the mean over its N rows (text for each image, then image for each
text). This is ``open_clip.loss.ClipLoss`` (``src/open_clip/loss.py``) with
``local_loss=False``; open_clip clamps the scale in the model, here the loss
clamps it (the gradient of ``logit_scale`` is zero while the clamp is active).

Distributed (docs/design.md, "Scale-out path"): :func:`gather_features` all-gathers
the features of every rank with ``torch.distributed.all_gather`` and puts the
rank's own tensors back in its slot, so gradient flows to the local shard only
(open_clip's ``gather_with_grad=False``). ``ClipLoss(world_size, rank)`` then
computes the loss over the global batch, the same value on every rank.

What is equal to the single-process loss on the global batch (the test in
``tests/lib/test_clip_loss.py`` checks both):

* the loss value, on every rank;
* the gradient with respect to rank r's local features: every occurrence of
  those rows in the global logits is the local tensor, so autograd on rank r
  gives exactly the single-process ``dL/dI[rank r's rows]``.

A parameter shared by all ranks (tower weights) therefore receives on rank r
only the part of the gradient that flows through rank r's rows; the sum over
ranks (``all_reduce(SUM)``) is the single-process gradient. ``logit_scale``
receives the full gradient on every rank (it multiplies every logit), so it
is averaged, not summed. DDP's default mean all-reduce gives the tower weights
1/world_size of the single-process gradient; :func:`replearn.lib.clip.trainer.train_clip`
reduces the gradients itself (sum for the towers, mean for ``logit_scale``) so
that a distributed step equals a single-process step on the global batch.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from replearn.lib.errors import ReplearnInputError

#: Upper bound of the logit scale s = exp(logit_scale) (Radford et al. 2021, sec. 2.5: "clipped to prevent
#: scaling the logits by more than 100").
MAX_LOGIT_SCALE = 100.0


class ClipBatchError(ReplearnInputError):
    """A CLIP batch cannot be scored: fewer than 2 pairs, shape mismatch, or non-finite features."""


def gather_features(image_features: torch.Tensor, text_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of every rank, concatenated in rank order, with gradient flowing to this rank's rows only.

    Args:
        image_features: (n_local, D) this rank's image features.
        text_features: (n_local, D) this rank's text features.

    Returns:
        (all_image (world_size * n_local, D), all_text (world_size * n_local, D));
        rows ``rank * n_local : (rank + 1) * n_local`` are the input tensors themselves
        (autograd flows through them), the other ranks' rows are constants.

    Raises:
        ClipBatchError: torch.distributed is not initialised, or the shapes differ.

    Every rank must call it with the same ``n_local`` (``all_gather`` needs equal
    shapes); the trainer shards the global batch evenly.
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise ClipBatchError("gather_features needs torch.distributed to be initialised "
                             "(torch.distributed.init_process_group); use ClipLoss() without world_size otherwise")
    _check_features(image_features, text_features, min_rows=1)
    world_size, rank = dist.get_world_size(), dist.get_rank()
    gathered_image = [torch.zeros_like(image_features) for _ in range(world_size)]
    gathered_text = [torch.zeros_like(text_features) for _ in range(world_size)]
    dist.all_gather(gathered_image, image_features.detach().contiguous())
    dist.all_gather(gathered_text, text_features.detach().contiguous())
    gathered_image[rank] = image_features                        # local rows keep their autograd history
    gathered_text[rank] = text_features
    return torch.cat(gathered_image, dim=0), torch.cat(gathered_text, dim=0)   # (world_size * n_local, D) each


def _check_features(image_features: torch.Tensor, text_features: torch.Tensor, min_rows: int) -> None:
    if image_features.dim() != 2 or image_features.shape != text_features.shape:
        raise ClipBatchError(f"image and text features must both be (N, D) with the same shape, got "
                             f"{tuple(image_features.shape)} and {tuple(text_features.shape)}; pair one caption "
                             f"with each image")
    if image_features.size(0) < min_rows:
        raise ClipBatchError(f"a CLIP batch needs at least {min_rows} (image, text) pairs, got "
                             f"{image_features.size(0)}: with one pair there is no negative and the loss is "
                             f"log(1) = 0 for every model; use batch_size >= 2 (the trainer never makes a batch "
                             f"of 1)")


def clip_logits(image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> torch.Tensor:
    """``min(exp(logit_scale), 100) * I T^T``: (N_img, D), (N_txt, D), 0-dim -> (N_img, N_txt) logits."""
    s = logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
    return s * image_features @ text_features.t()


class ClipLoss(nn.Module):
    """CLIP's symmetric cross-entropy. ``forward(image_features (N, D), text_features (N, D), logit_scale 0-dim) -> 0-dim``.

    Row i of both feature matrices is the i-th (image, caption) pair; the
    features should be L2-normalised (the towers do it). The loss is >= 0 and at
    most about ``log N + 2 s`` ; ``log N`` for a model that scores every pair the same.

    Args:
        world_size: ranks in the process group (1: single process, no gathering).
        rank: this process's rank in 0..world_size-1 (used only with world_size > 1;
            ``torch.distributed.get_rank()`` must agree).

    Raises (from ``forward``):
        ClipBatchError: fewer than 2 pairs in the (global) batch, mismatched
            shapes, or world_size > 1 without an initialised process group.
    """

    def __init__(self, world_size: int = 1, rank: int = 0):
        super().__init__()
        if world_size < 1 or not 0 <= rank < world_size:
            raise ReplearnInputError(f"ClipLoss: need world_size >= 1 and 0 <= rank < world_size, got "
                                     f"world_size={world_size}, rank={rank}")
        self.world_size = int(world_size)
        self.rank = int(rank)

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            _check_features(image_features, text_features, min_rows=1)
            if dist.is_initialized() and dist.get_rank() != self.rank:
                raise ClipBatchError(f"ClipLoss(rank={self.rank}) runs on torch.distributed rank "
                                     f"{dist.get_rank()}; build it with rank=torch.distributed.get_rank()")
            image_features, text_features = gather_features(image_features, text_features)
        _check_features(image_features, text_features, min_rows=2)
        N = image_features.size(0)
        logits_per_image = clip_logits(image_features, text_features, logit_scale)   # (N, N)
        labels = torch.arange(N, device=image_features.device)                       # pair i is the diagonal
        loss_i = F.cross_entropy(logits_per_image, labels)                           # text for each image
        loss_t = F.cross_entropy(logits_per_image.t(), labels)                       # image for each text
        return (loss_i + loss_t) / 2

    def extra_repr(self) -> str:
        return f"world_size={self.world_size}, rank={self.rank}, max_scale={MAX_LOGIT_SCALE}"


#: ``logit_scale`` at initialisation: log(1 / 0.07), the temperature 0.07 of Wu et al. 2018 (Radford et al. sec. 2.5).
INIT_LOGIT_SCALE = math.log(1 / 0.07)
