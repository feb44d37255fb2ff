"""Benchmark: does replearn's skip-gram stay flat in memory and speed as the corpus grows?

Runs the same training (dim 100, window 5, negative 5, sample 1e-3, 5 epochs,
2 threads) on the books corpus once and repeated N times (a folder of N
links to the .gz, tokenized and streamed from disk). min_count is scaled by N
so both runs have the same vocabulary: what changes is only the corpus length.
Reports corpus words/s and the peak RSS sampled during training for both.

    python bench/word2vec_scale.py --json bench/out/word2vec_scale.json [--times 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent / "word2vec.py"
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpus" / "books.txt.gz"


def run(times: int, corpus: Path, work: Path, epochs: int, threads: int) -> dict:
    from replearn.lib.text.tokenize import tokenize_corpus

    src = work / f"x{times}"
    src.mkdir()
    for i in range(times):
        os.symlink(corpus.resolve(), src / f"part-{i:03d}.txt.gz")
    t = time.perf_counter()
    stats = tokenize_corpus(src, work / f"tokens-x{times}")
    tok_seconds = time.perf_counter() - t
    out_dir = work / f"replearn-x{times}"
    out_dir.mkdir()
    base = [sys.executable, str(BENCH), "--child", "replearn", "--tokens", str(work / f"tokens-x{times}"),
            "--out", str(out_dir / "vectors.npy"), "--epochs", str(epochs), "--threads", str(threads),
            "--min-count", str(5 * times)]
    results = []
    for stage in ("prepare", "train"):  # training in its own process: its RSS is the trainer's alone
        res = subprocess.run([*base, "--stage", stage], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(res.stderr[-3000:])
        results.append(json.loads(res.stdout.strip().splitlines()[-1]))
    r = results[1]
    return {"tokens": stats.tokens, "tokenize_seconds": tok_seconds, "words_per_s": r["raw_words"] / r["train_seconds"],
            "train_rss_mb": r["train_rss_mb"], "peak_rss_mb": r["peak_rss_mb"], "vocab": r["vocab"],
            "train_seconds": r["train_seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--times", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.corpus.exists():
        sys.exit(f"corpus {args.corpus} not found: the books corpus lives in ../shared/data/corpus/ beside the repo")
    fig: dict = {"times": args.times, "epochs": args.epochs, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, args.times):
            fig.update({f"{k}_x{n}": v for k, v in run(n, args.corpus, Path(tmp), args.epochs, args.threads).items()})
    big = f"x{args.times}"
    fig["words_per_s_ratio"] = fig[f"words_per_s_{big}"] / fig["words_per_s_x1"]
    fig["train_rss_ratio"] = fig[f"train_rss_mb_{big}"] / fig["train_rss_mb_x1"]
    fig["peak_rss_ratio"] = fig[f"peak_rss_mb_{big}"] / fig["peak_rss_mb_x1"]
    print(f"{'':6}{'tokens':>14}{'vocab':>9}{'words/s':>12}{'train RSS MB':>14}{'peak RSS MB':>13}")
    for n in ("x1", big):
        print(f"{n:6}{fig[f'tokens_{n}']:>14,}{fig[f'vocab_{n}']:>9,}{fig[f'words_per_s_{n}']:>12,.0f}"
              f"{fig[f'train_rss_mb_{n}']:>14,.0f}{fig[f'peak_rss_mb_{n}']:>13,.0f}")
    print(f"ratios {big}/x1: words/s {fig['words_per_s_ratio']:.3f}, training RSS {fig['train_rss_ratio']:.3f}, "
          f"process peak RSS {fig['peak_rss_ratio']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(fig, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
