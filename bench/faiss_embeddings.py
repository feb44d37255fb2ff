"""Benchmark: replearn's chosen + tuned FAISS index on real embeddings (word vectors, MNIST), vs exact Flat.

* Word vectors: a 1-epoch skip-gram (``replearn.lib.word2vec``, D 100, window 5,
  5 negatives, min_count 5) on the first ``--lines`` lines of the books corpus
  (``../shared/data/corpus/books.txt.gz``), cosine similarity.
* MNIST: PCA-32 (numpy SVD, centred) of the 10,000 MNIST test images
  (``../shared/data/mnist/``), L2.

For each: 1,000 random rows are held out as queries; the index holds the rest.
``build_tuned_index`` chooses and tunes it (recall@10 >= 0.95 on its own
held-out rows, see :mod:`replearn.lib.store.index_tuning`); then recall@10 on
the 1,000 queries against exact search, and queries per second at 1 FAISS
thread (best of 3) beside exact Flat over the same vectors. MNIST (9,000
vectors) is under ``flat_max`` (20,000) so replearn picks exact Flat; it is
also reported with ``flat_max=1000`` to show the tuned HNSW.

    python bench/faiss_embeddings.py --json bench/out/faiss_embeddings.json [--lines N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from replearn.lib.store.faiss_index import build_index, exact_search, search  # noqa: E402
from replearn.lib.store.index_tuning import build_tuned_index  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
K = 10


def log(*a) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def word_vectors(lines: int, work: Path) -> np.ndarray:
    from replearn.lib.text.config import TokenizerConfig
    from replearn.lib.text.tokenize import tokenize_corpus
    from replearn.lib.text.vocab import build_vocabulary, count_tokens, keep_probability, noise_distribution
    from replearn.lib.word2vec.config import Word2VecConfig
    from replearn.lib.word2vec.corpus import encode_corpus
    from replearn.lib.word2vec.trainer import train_sgns

    src = work / "corpus.txt"
    with gzip.open(SHARED / "corpus" / "books.txt.gz", "rb") as f, open(src, "wb") as g:  # bytes as they are
        for i, line in enumerate(f):
            if i >= lines:
                break
            g.write(line)
    tokenize_corpus(src, work / "tokens", TokenizerConfig())
    vocab = build_vocabulary(count_tokens(work / "tokens"), min_count=5)
    corpus = encode_corpus(sorted((work / "tokens").glob("*.parquet")), vocab.words, work / "encoded", 1000)
    cfg = Word2VecConfig(dim=100, window=5, negative=5, min_count=5, sample=1e-3, epochs=1, threads=2)
    r = train_sgns(corpus, vocab.counts, cfg, keep_prob=keep_probability(vocab.counts, cfg.sample),
                   noise_probs=noise_distribution(vocab.counts))
    log(f"skip-gram: {len(vocab):,} words x {cfg.dim} in {r.seconds:.1f} s ({corpus.raw_tokens:,} tokens)")
    return np.ascontiguousarray(r.syn0, dtype=np.float32)


def mnist_pca(dim: int = 32) -> np.ndarray:
    from replearn.lib.metric.images import load_mnist_test

    x = load_mnist_test(SHARED / "mnist").images.reshape(10000, -1).astype(np.float32)
    x -= x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return np.ascontiguousarray(x @ vt[:dim].T, dtype=np.float32)


def qps(index, xq, metric) -> float:
    faiss.omp_set_num_threads(1)
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        search(index, xq, K, metric)
        best = max(best, len(xq) / (time.perf_counter() - t))
    faiss.omp_set_num_threads(2)
    return best


def evaluate(name: str, x: np.ndarray, metric: str, choice_kwargs=None) -> dict:
    rng = np.random.default_rng(0)
    mask = np.zeros(len(x), bool)
    mask[rng.choice(len(x), 1000, replace=False)] = True
    xb, xq = x[~mask], x[mask]
    index, rep = build_tuned_index(xb, metric, choice_kwargs=choice_kwargs)
    _, I = search(index, xq, K, metric)
    _, E = exact_search(xb, xq, K, metric)
    r = float((I[:, :, None] == E[:, None, :]).any(axis=2).sum()) / E.size
    flat = build_index(xb, metric, "Flat")
    q_flat, q_ours = qps(flat, xq, metric), qps(index, xq, metric)
    t = rep["tuning"]
    out = {"name": name, "n": len(xb), "d": xb.shape[1], "metric": metric, "factory": rep["factory"],
           "params": t["params"], "tuning_recall": t["recall_at_k"], "recall_at_10": r,
           "build_s": rep["build_seconds"], "tune_s": rep["tune_seconds"], "qps_1t": q_ours, "flat_qps_1t": q_flat,
           "qps_vs_flat": q_ours / q_flat, "choice_kwargs": choice_kwargs}
    log(f"{name}: {len(xb):,} x {xb.shape[1]} {metric}: {rep['factory']} {t['params']}, recall@10 {r:.4f}, "
        f"QPS {q_ours:,.0f} vs Flat {q_flat:,.0f} ({q_ours / q_flat:.1f}x), build {rep['build_seconds']:.1f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=10**9, help="corpus lines for the skip-gram (default all)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    faiss.omp_set_num_threads(2)
    res = {"faiss_version": faiss.__version__, "k": K, "lines": args.lines, "results": []}
    with tempfile.TemporaryDirectory(prefix="faiss_emb_") as work:
        wv = word_vectors(args.lines, Path(work))
    res["results"].append(evaluate("word vectors (skip-gram)", wv, "cos"))
    xm = mnist_pca()
    res["results"].append(evaluate("MNIST PCA-32", xm, "l2"))
    res["results"].append(evaluate("MNIST PCA-32, flat_max=1000", xm, "l2", {"flat_max": 1000}))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
