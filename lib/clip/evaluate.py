"""Evaluation of a two-tower model: zero-shot classification and cross-modal retrieval Recall@K.

Zero-shot (Radford et al. 2021, sec. 3.1.4): each class's embedding is the
mean of the L2-normalised embeddings of its prompts (e.g. "a photo of the
digit seven", "the number 7"), re-normalised; an image is assigned the class
of highest cosine similarity. Top-1 accuracy is in [0, 1] (chance 1/C).

Retrieval on held-out (image, caption) pairs, with duplicated captions (a
template without attributes gives the same caption to many images) handled so
that identical texts are indistinguishable, as for the several reference
captions per image of COCO (Karpathy & Fei-Fei 2015):

* **image -> text**: the candidates are the *distinct* captions; a query image
  scores a hit at K when its own caption string is among the K most similar.
  Averaged over images.
* **text -> image**: each *distinct* caption is one query; it scores a hit at K
  when any image paired with that caption string is among the K most similar
  images. Averaged over the distinct captions.

Ranks count the candidates scoring strictly higher, so exact ties favour the
query. All similarities are inner products of unit vectors (cosines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from replearn.lib.clip.captions import PROMPT_TEMPLATES, class_prompts
from replearn.lib.clip.data import ClipPairs
from replearn.lib.clip.model import TwoTower
from replearn.lib.errors import EmbeddingsError, ReplearnInputError

KS: tuple[int, ...] = (1, 5, 10)


def class_embeddings(model: TwoTower, prompts: Sequence[Sequence[str]]) -> np.ndarray:
    """float32 (C, D) unit class embeddings: mean of each class's normalised prompt embeddings, re-normalised.

    Args:
        model: the two-tower model.
        prompts: C lists of prompt strings (``captions.class_prompts()``), each non-empty.

    Raises:
        ReplearnInputError: a class without prompts. CaptionError: a prompt with no known token.
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ReplearnInputError("class_embeddings needs at least one prompt for every class")
    flat = [t for p in prompts for t in p]
    z = model.embed_texts(flat, where="the zero-shot prompts")                   # (sum n_c, D) unit rows
    out, s = [], 0
    for p in prompts:
        m = z[s:s + len(p)].mean(0)
        out.append(m / max(np.linalg.norm(m), 1e-12))
        s += len(p)
    return np.stack(out).astype(np.float32)                                      # (C, D)


def zero_shot_predict(image_emb: np.ndarray, class_emb: np.ndarray) -> np.ndarray:
    """int64 (N,) arg-max class of each image embedding (N, D) against class embeddings (C, D)."""
    return np.argmax(np.asarray(image_emb) @ np.asarray(class_emb).T, axis=1).astype(np.int64)


def zero_shot_accuracy(model: TwoTower, images: np.ndarray, labels: np.ndarray,
                       prompts: Sequence[Sequence[str]] | None = None) -> float:
    """Top-1 zero-shot accuracy in [0, 1] of ``images`` (N, C, H, W) with class ids ``labels`` (N,).

    ``prompts[c]`` are the prompts of class id c; default
    ``class_prompts(PROMPT_TEMPLATES)`` for the digits 0..9.
    """
    labels = np.asarray(labels)
    if len(images) == 0 or len(images) != len(labels):
        raise ReplearnInputError(f"zero_shot_accuracy needs N >= 1 images and N labels, got {len(images)} "
                                 f"and {len(labels)}")
    prompts = class_prompts(PROMPT_TEMPLATES) if prompts is None else prompts
    pred = zero_shot_predict(model.embed_images(images), class_embeddings(model, prompts))
    return float(np.mean(pred == labels))


def _ranks(scores: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Per row, how many entries of ``scores`` (Q, M) exceed ``best`` (Q,): the 0-based rank of the match."""
    return (scores > best[:, None]).sum(1)


def retrieval_recall(image_emb: np.ndarray, text_emb: np.ndarray, captions: Sequence[str],
                     ks: Sequence[int] = KS) -> dict[str, float]:
    """Recall@K image->text and text->image on pairs (row i of both is pair i); rules in the module docstring.

    Args:
        image_emb: (N, D) unit image embeddings. text_emb: (N, D) unit embeddings of ``captions``.
        captions: N strings (identical strings are one text).
        ks: the K values, each >= 1.

    Returns:
        ``{"i2t_r1": ..., "i2t_r5": ..., "t2i_r1": ..., ...}`` each in [0, 1], plus
        ``n_images`` and ``n_texts`` (distinct captions).

    Raises:
        EmbeddingsError: mismatched shapes, no pair, or non-finite values.
    """
    xi, xt = np.asarray(image_emb, dtype=np.float64), np.asarray(text_emb, dtype=np.float64)
    if xi.ndim != 2 or xi.shape != xt.shape or len(xi) != len(captions) or len(xi) == 0:
        raise EmbeddingsError(f"retrieval_recall needs (N, D) image and text embeddings and N captions, N >= 1; "
                              f"got {xi.shape}, {xt.shape}, {len(captions)}")
    if not (np.isfinite(xi).all() and np.isfinite(xt).all()):
        raise EmbeddingsError("retrieval_recall: non-finite embeddings")
    uniq, first, group = np.unique(np.asarray(captions, dtype=object).astype(str), return_index=True,
                                   return_inverse=True)
    group = group.reshape(-1)
    tu = xt[first]                                                               # (U, D) one row per distinct caption
    s_it = xi @ tu.T                                                             # (N, U)
    rank_i2t = _ranks(s_it, s_it[np.arange(len(xi)), group])                     # (N,)
    s_ti = s_it.T                                                                # (U, N)
    best = np.full(len(uniq), -np.inf)
    np.maximum.at(best, group, s_it[np.arange(len(xi)), group])                  # best paired image per caption
    rank_t2i = _ranks(s_ti, best)                                                # (U,)
    out: dict[str, float] = {}
    for k in ks:
        out[f"i2t_r{k}"] = float(np.mean(rank_i2t < k))
    for k in ks:
        out[f"t2i_r{k}"] = float(np.mean(rank_t2i < k))
    out["n_images"] = float(len(xi))
    out["n_texts"] = float(len(uniq))
    return out


@dataclass(frozen=True)
class ClipEvaluation:
    """Zero-shot accuracy (None without labels) and Recall@1/5/10 both ways, each in [0, 1]."""

    zero_shot_top1: float | None
    i2t_r1: float
    i2t_r5: float
    i2t_r10: float
    t2i_r1: float
    t2i_r5: float
    t2i_r10: float
    n_images: int
    n_texts: int

    def to_dict(self, prefix: str = "") -> dict[str, float]:
        """Flat dict for MLflow / JSON (``zero_shot_top1`` omitted when None)."""
        return {f"{prefix}{k}": float(v) for k, v in asdict(self).items() if v is not None}


@torch.no_grad()
def evaluate_clip(model: TwoTower, pairs: ClipPairs, prompts: Sequence[Sequence[str]] | None = None,
                  ) -> ClipEvaluation:
    """Zero-shot top-1 (when ``pairs.labels`` is set; default digit prompts) and retrieval recalls on ``pairs``.

    Raises:
        CaptionError: a caption with no token the model knows (naming the row).
    """
    zi = model.embed_images(pairs.images)                                        # (N, D)
    zt = model.embed_texts(pairs.captions, where="the held-out captions")        # (N, D)
    r = retrieval_recall(zi, zt, pairs.captions)
    top1 = None
    if pairs.labels is not None:
        prompts = class_prompts(PROMPT_TEMPLATES) if prompts is None else prompts
        top1 = float(np.mean(zero_shot_predict(zi, class_embeddings(model, prompts)) == pairs.labels))
    return ClipEvaluation(top1, r["i2t_r1"], r["i2t_r5"], r["i2t_r10"], r["t2i_r1"], r["t2i_r5"], r["t2i_r10"],
                          int(r["n_images"]), int(r["n_texts"]))
