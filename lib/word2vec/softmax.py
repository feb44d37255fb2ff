"""Full-softmax skip-gram for small vocabularies (the lecture's model, in PyTorch).

p(y | x) = exp(<u(y), v(x)>) / sum_{y'} exp(<u(y'), v(x)>)        (Mikolov et al. 2013a)

with separate input vectors v (V, D) and context vectors u (V, D). The loss of
a batch of (centre, context) pairs is the mean negative log-likelihood,
i.e. cross-entropy of the logits ``v[x] @ u.T`` against y. Exact but O(V) per
pair, so it is refused above ``Word2VecConfig.softmax_max_vocab``; negative
sampling (:mod:`replearn.lib.word2vec.sgns`) is the default for real vocabularies.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from numba import njit
from tqdm.auto import tqdm

from replearn.lib.errors import VocabularyError
from replearn.lib.word2vec.config import Word2VecConfig
from replearn.lib.word2vec.corpus import EncodedCorpus
from replearn.lib.word2vec.sgns import _next, block_seeds, subsample, window_span
from replearn.lib.word2vec.trainer import StepLog, TrainResult, init_matrices


def softmax_loss(v: torch.Tensor, u: torch.Tensor, centres: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
    """Mean full-softmax skip-gram NLL.

    Args:
        v: (V, D) input vectors. u: (V, D) context vectors.
        centres: (B,) int64 centre ids x. contexts: (B,) int64 context ids y.

    Returns:
        Scalar tensor: mean over the batch of -log p(y | x), in nats.
    """
    logits = v[centres] @ u.T  # (B, V)
    return torch.nn.functional.cross_entropy(logits, contexts)


@njit
def skipgram_pairs(ids, bounds, window, keep_prob, seed):
    """(centre, context) pairs with subsampling and dynamic window, as the SGNS kernel draws them.

    Args:
        ids: int32 (n,) token ids. bounds: int64 (s + 1,) sentence boundaries.
        window: maximum window; each centre uses 1..window drawn uniformly.
        keep_prob: float64 (V,) subsampling keep probabilities.
        seed: uint64 seed of the generator.

    Returns:
        (centres, contexts): int64 arrays of equal length.
    """
    state = np.uint64(seed)
    cap = 2 * window * len(ids)
    centres = np.empty(cap, dtype=np.int64)
    contexts = np.empty(cap, dtype=np.int64)
    kept = np.empty(len(ids), dtype=np.int32)
    m = 0
    for s in range(len(bounds) - 1):
        n, state = subsample(ids, bounds[s], bounds[s + 1], keep_prob, kept, state)
        for i in range(n):
            state = _next(state)
            lo, hi = window_span(i, n, window, state)
            for j in range(lo, hi):
                if j != i:
                    centres[m] = kept[i]
                    contexts[m] = kept[j]
                    m += 1
    return centres[:m], contexts[:m]


def train_softmax(corpus: EncodedCorpus, counts: np.ndarray, config: Word2VecConfig, *, keep_prob: np.ndarray,
                  on_step: Callable[[StepLog], None] | None = None, progress: bool = False) -> TrainResult:
    """Train full-softmax skip-gram with SGD and a linearly decaying learning rate.

    The step size is ``config.alpha`` scaled by the batch size (the loss is a
    batch mean), decaying linearly to ``config.min_alpha`` scaled alike.

    Raises:
        VocabularyError: vocabulary larger than ``config.softmax_max_vocab``.
        ValueError: empty corpus.
    """
    V = len(counts)
    if V > config.softmax_max_vocab:
        raise VocabularyError(f"the full-softmax objective costs O(V) per pair; the vocabulary has {V} words, "
                              f"more than --softmax-max-vocab {config.softmax_max_vocab}: use --objective "
                              f"negative_sampling, or --max-vocab {config.softmax_max_vocab} (or a higher "
                              "--min-count)")
    if corpus.n_tokens == 0:
        raise ValueError(f"encoded corpus {corpus.path} holds no in-vocabulary tokens; lower min_count")
    torch.manual_seed(config.seed)
    syn0, syn1 = init_matrices(V, config.dim, config.seed)
    v = torch.from_numpy(syn0).requires_grad_(True)
    u = torch.from_numpy(syn1).requires_grad_(True)
    scale = float(config.softmax_batch)
    opt = torch.optim.SGD([v, u], lr=config.alpha * scale)
    total = float(corpus.n_tokens) * config.epochs
    result = TrainResult(syn0, syn1)
    done, step = 0, 0
    gen = torch.Generator().manual_seed(config.seed)
    t0 = time.perf_counter()
    bar = tqdm(total=int(total), unit="w", unit_scale=True, disable=not progress, desc="softmax")
    for epoch in range(config.epochs):
        for chunk, (ids, bounds) in enumerate(corpus.iter_chunks(config.chunk_tokens)):
            seed = block_seeds(config.seed, epoch, chunk, 1)[0]
            c, y = skipgram_pairs(ids, bounds, config.window, keep_prob, seed)
            c, y = torch.from_numpy(c), torch.from_numpy(y)
            perm = torch.randperm(len(c), generator=gen)
            losses = []
            for b in range(0, len(c), config.softmax_batch):
                lr = (config.alpha - (config.alpha - config.min_alpha) * min(done / total, 1.0)) * scale
                for g in opt.param_groups:
                    g["lr"] = lr
                idx = perm[b : b + config.softmax_batch]
                loss = softmax_loss(v, u, c[idx], y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.item())
            done += len(ids)
            result.words += len(ids)
            log = StepLog(step, epoch, done, float(np.mean(losses)) if losses else float("nan"), lr / scale if losses else config.alpha)
            result.steps.append(log)
            if on_step is not None:
                on_step(log)
            bar.update(len(ids))
            step += 1
    bar.close()
    result.seconds = time.perf_counter() - t0
    result.syn0 = v.detach().numpy()
    result.syn1 = u.detach().numpy()
    return result
