"""Benchmark: replearn skip-gram vs gensim Word2Vec, side by side in one run, on the books corpus.

Same tokens, same sentences, same hyperparameters (dim 100, window 5,
negative 5, min_count 5, sample 1e-3, 5 epochs, 2 threads). Each trainer runs
in its own child process so its peak RSS is its own. Both sets of vectors are
scored by the same evaluation code (identical to gensim's evaluate_* functions).
Also measures tokenization throughput (end to end, .gz to token shards) against
`gensim.utils.simple_preprocess`, a plain `re.findall` loop and, where
installed, the Hugging Face `tokenizers` pre-tokenizer.

    python bench/word2vec.py --json bench/out/word2vec.json [--corpus PATH] [--epochs 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpus" / "books.txt.gz"
HYPER = dict(dim=100, window=5, negative=5, min_count=5, sample=1e-3)


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), MB.

    Not ``getrusage().ru_maxrss``: after fork + exec that still counts the parent's
    pages at the fork, so every child would report at least the parent's size.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Peak resident set size (MB) of this process while the ``with`` block runs, sampled every 0.1 s."""

    def __enter__(self):
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
            if self._stop.wait(0.1):
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- tokenization
def _lines(path: Path):
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
        for raw in f:
            yield raw.decode("utf-8", "replace").replace("\ufeff", "")


def _tok_replearn(corpus: Path, work: Path) -> int:
    from replearn.lib.text.config import TokenizerConfig
    from replearn.lib.text.tokenize import tokenize_corpus

    return tokenize_corpus(corpus, work / "tokens", TokenizerConfig()).tokens


def _tok_simple_preprocess(corpus: Path, work: Path) -> int:
    from gensim.utils import simple_preprocess

    return sum(len(simple_preprocess(line)) for line in _lines(corpus))


def _tok_re_findall(corpus: Path, work: Path) -> int:
    rx = re.compile(r"[^\W\d_]+")
    return sum(sum(1 for w in rx.findall(line.lower()) if 2 <= len(w) <= 15) for line in _lines(corpus))


def _tok_hf_tokenizers(corpus: Path, work: Path) -> int:
    from tokenizers import normalizers, pre_tokenizers

    norm = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    pre = pre_tokenizers.Whitespace()
    return sum(sum(1 for w, _ in pre.pre_tokenize_str(norm.normalize_str(line)) if w.isalpha() and 2 <= len(w) <= 15)
               for line in _lines(corpus))


def bench_tokenize(corpus: Path, work: Path, repeats: int) -> dict:
    """Tokens/s of each tokenizer, end to end from the compressed file; medians of alternating runs.

    replearn's figure includes writing the Parquet token shards; the peers only count tokens.
    """
    fns = {"replearn": _tok_replearn, "simple_preprocess": _tok_simple_preprocess, "re_findall": _tok_re_findall}
    try:
        import tokenizers  # noqa: F401

        fns["hf_tokenizers"] = _tok_hf_tokenizers
    except ImportError:
        pass
    times: dict[str, list[float]] = {k: [] for k in fns}
    out: dict = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            out[f"tok_tokens_{name}"] = fn(corpus, work)
            times[name].append(time.perf_counter() - t)
    for name, ts in times.items():
        out[f"tok_seconds_{name}"] = statistics.median(ts)
        out[f"tok_tokens_per_s_{name}"] = out[f"tok_tokens_{name}"] / out[f"tok_seconds_{name}"]
    out["tok_speed_ratio_vs_simple_preprocess"] = (out["tok_tokens_per_s_replearn"]
                                                   / out["tok_tokens_per_s_simple_preprocess"])
    return out


# ---------------------------------------------------------------- trainers (child processes)
def child_replearn(token_dir: Path, out: Path, epochs: int, threads: int, min_count: int = HYPER["min_count"],
                   stage: str = "all") -> dict:
    """Vocabulary + encoding ("prepare"), training ("train"), or both ("all") in this process.

    With stage "train" the vocabulary and encoded corpus written by a "prepare" run
    beside ``out`` are reused, so the process's memory is the trainer's alone.
    """
    import numpy as np

    from replearn.lib.text.vocab import (build_vocabulary, count_tokens, keep_probability, noise_distribution,
                                         read_vocabulary, write_vocabulary)
    from replearn.lib.word2vec.config import Word2VecConfig
    from replearn.lib.word2vec.corpus import EncodedCorpus, encode_corpus
    from replearn.lib.word2vec.trainer import train_sgns

    t0 = time.perf_counter()
    if stage == "train":
        vocab = read_vocabulary(out.parent / "vocab.parquet")
        corpus = EncodedCorpus.open(out.parent / "encoded")
    else:
        vocab = build_vocabulary(count_tokens(token_dir), min_count=min_count)
        write_vocabulary(vocab, out.parent / "vocab.parquet")
        corpus = encode_corpus(sorted(token_dir.glob("*.parquet")), vocab.words, out.parent / "encoded", 1000)
    prep = time.perf_counter() - t0
    if stage == "prepare":
        return {"prep_seconds": prep, "vocab": len(vocab), "peak_rss_mb": peak_rss_mb()}
    cfg = Word2VecConfig(epochs=epochs, threads=threads, **{**HYPER, "min_count": min_count})
    with RssSampler() as sampler:
        r = train_sgns(corpus, vocab.counts, cfg, keep_prob=keep_probability(vocab.counts, cfg.sample),
                       noise_probs=noise_distribution(vocab.counts))
    np.save(out, r.syn0)
    (out.parent / "words.json").write_text(json.dumps(list(vocab.words)))
    return {"train_seconds": r.seconds, "prep_seconds": prep, "raw_words": corpus.raw_tokens * epochs,
            "vocab": len(vocab), "peak_rss_mb": peak_rss_mb(), "train_rss_mb": sampler.peak_mb}


def child_gensim(token_dir: Path, out: Path, epochs: int, threads: int) -> dict:
    import numpy as np
    from gensim.models import Word2Vec

    from replearn.lib.text.token_shards import iter_token_shards

    t0 = time.perf_counter()
    sentences, cur = [], []
    for table in iter_token_shards(token_dir):  # the same tokens, grouped like the baseline: <= 1000 per sentence
        for doc in table.column("tokens").to_pylist():
            if cur and len(cur) + len(doc) > 1000:
                sentences.append(cur)
                cur = []
            cur.extend(doc)
    if cur:
        sentences.append(cur)
    raw = sum(len(s) for s in sentences)
    m = Word2Vec(sg=1, vector_size=HYPER["dim"], window=HYPER["window"], negative=HYPER["negative"], hs=0,
                 min_count=HYPER["min_count"], sample=HYPER["sample"], workers=threads, seed=1)
    m.build_vocab(sentences)
    prep = time.perf_counter() - t0
    t = time.perf_counter()
    m.train(sentences, total_examples=len(sentences), epochs=epochs)
    seconds = time.perf_counter() - t
    np.save(out, m.wv.vectors)
    (out.parent / "words.json").write_text(json.dumps(list(m.wv.index_to_key)))
    return {"train_seconds": seconds, "prep_seconds": prep, "raw_words": raw * epochs, "vocab": len(m.wv),
            "peak_rss_mb": peak_rss_mb()}


def run_child(which: str, token_dir: Path, work: Path, epochs: int, threads: int) -> dict:
    out_dir = work / which
    out_dir.mkdir(exist_ok=True)
    cmd = [sys.executable, __file__, "--child", which, "--tokens", str(token_dir), "--out", str(out_dir / "vectors.npy"),
           "--epochs", str(epochs), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{which} child failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def evaluate(work: Path, which: str) -> dict:
    import numpy as np

    from replearn.lib.eval.analogy import evaluate_analogies
    from replearn.lib.eval.similarity import evaluate_word_pairs, simlex999_path, wordsim353_path
    from replearn.lib.vectors import KeyedVectors

    words = json.loads((work / which / "words.json").read_text())
    kv = KeyedVectors(words, np.load(work / which / "vectors.npy"))
    a = evaluate_analogies(kv, restrict_vocab=30000)
    return {"analogy_semantic": a.semantic, "analogy_syntactic": a.syntactic, "analogy_total": a.total,
            "analogy_oov": a.n_oov, "wordsim353": evaluate_word_pairs(kv, wordsim353_path()).spearman,
            "simlex999": evaluate_word_pairs(kv, simlex999_path()).spearman,
            "king_neighbours": ", ".join(w for w, _ in kv.most_similar("king", topn=5)) if "king" in kv else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="training runs per library, alternating (medians reported)")
    ap.add_argument("--json", type=Path, help="write the figures here as one flat JSON object")
    ap.add_argument("--skip-tokenize-peers", action="store_true", help="only time replearn's tokenizer")
    ap.add_argument("--child", choices=["replearn", "gensim"], help=argparse.SUPPRESS)
    ap.add_argument("--tokens", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--min-count", type=int, default=HYPER["min_count"], help=argparse.SUPPRESS)
    ap.add_argument("--stage", choices=["all", "prepare", "train"], default="all", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child == "replearn":
            print(json.dumps(child_replearn(args.tokens, args.out, args.epochs, args.threads, args.min_count,
                                            args.stage)))
        else:
            print(json.dumps(child_gensim(args.tokens, args.out, args.epochs, args.threads)))
        return
    if not args.corpus.exists():
        sys.exit(f"corpus {args.corpus} not found: the books corpus lives in ../shared/data/corpus/ beside the repo")
    fig: dict = {"corpus": str(args.corpus), "epochs": args.epochs, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.skip_tokenize_peers:
            from replearn.lib.text.tokenize import tokenize_corpus

            t = time.perf_counter()
            st = tokenize_corpus(args.corpus, work / "tokens")
            fig["tok_tokens_per_s_replearn"] = st.tokens / (time.perf_counter() - t)
        else:
            fig.update(bench_tokenize(args.corpus, work, args.repeats))
        runs: dict[str, list[dict]] = {"gensim": [], "replearn": []}
        for _ in range(args.repeats):  # alternate, so a noisy neighbour hurts both alike
            for which in runs:
                r = run_child(which, work / "tokens", work, args.epochs, args.threads)
                r.update(evaluate(work, which))  # every run's vectors are scored: quality varies run to run too
                runs[which].append(r)
        for which, rs in runs.items():
            wps = sorted(r["raw_words"] / r["train_seconds"] for r in rs)
            r = {"words_per_s": statistics.median(wps), "words_per_s_min": wps[0], "words_per_s_max": wps[-1],
                 "peak_rss_mb": max(x["peak_rss_mb"] for x in rs), "vocab": rs[-1]["vocab"],
                 "king_neighbours": rs[-1]["king_neighbours"]}
            for key in ("analogy_semantic", "analogy_syntactic", "analogy_total", "wordsim353", "simlex999"):
                values = [x[key] for x in rs]
                r[key] = statistics.mean(values)  # mean over repeats
                r[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
            fig.update({f"{k}_{which}": v for k, v in r.items()})
        fig["repeats"] = args.repeats
    fig["words_per_s_ratio"] = fig["words_per_s_replearn"] / fig["words_per_s_gensim"]
    fig["peak_rss_ratio"] = fig["peak_rss_mb_replearn"] / fig["peak_rss_mb_gensim"]
    fig["analogy_total_diff_points"] = 100 * (fig["analogy_total_replearn"] - fig["analogy_total_gensim"])
    fig["wordsim353_diff"] = fig["wordsim353_replearn"] - fig["wordsim353_gensim"]
    fig["simlex999_diff"] = fig["simlex999_replearn"] - fig["simlex999_gensim"]
    print_table(fig)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(fig, indent=2))


def print_table(f: dict) -> None:
    cols = ["words/s", "peak RSS MB", "analogy sem", "analogy syn", "analogy total", "WS-353", "SimLex-999", "vocab"]
    keys = ["words_per_s", "peak_rss_mb", "analogy_semantic", "analogy_syntactic", "analogy_total", "wordsim353",
            "simlex999", "vocab"]
    print(f"{'':10}" + "".join(f"{c:>15}" for c in cols))
    for who in ("gensim", "replearn"):
        vals = [f[f"{k}_{who}"] for k in keys]
        print(f"{who:10}" + "".join(f"{v:>15,.0f}" if k in ("words_per_s", "peak_rss_mb", "vocab") else f"{v:>15.4f}"
                                    for k, v in zip(keys, vals)))
    print(f"(quality: mean over {f['repeats']} runs each; analogy sd gensim {f['analogy_total_sd_gensim']:.4f}, "
          f"replearn {f['analogy_total_sd_replearn']:.4f})")
    print(f"\nratios replearn/gensim: words/s {f['words_per_s_ratio']:.2f}x, peak RSS {f['peak_rss_ratio']:.2f}x; "
          f"analogy {f['analogy_total_diff_points']:+.2f} points, WS-353 {f['wordsim353_diff']:+.3f}, "
          f"SimLex {f['simlex999_diff']:+.3f}")
    print(f"king -> gensim: {f['king_neighbours_gensim']}\n        replearn: {f['king_neighbours_replearn']}")
    if "tok_speed_ratio_vs_simple_preprocess" in f:
        print("\ntokenization, tokens/s: " + ", ".join(
            f"{n} {f[f'tok_tokens_per_s_{n}']:,.0f}" for n in ("replearn", "simple_preprocess", "re_findall", "hf_tokenizers")
            if f"tok_tokens_per_s_{n}" in f) + f"; replearn / simple_preprocess = {f['tok_speed_ratio_vs_simple_preprocess']:.1f}x")


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
