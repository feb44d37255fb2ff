"""Benchmark: does replearn's skip-gram stay flat in memory and speed as the corpus grows?

Runs the same training (dim 100, window 5, negative 5, sample 1e-3, 5 epochs,
2 threads) on the books corpus once and repeated N times (a folder of N
links to the .gz, tokenized and streamed from disk). min_count is scaled by N
so both runs have the same vocabulary: what changes is only the corpus length.
Reports corpus words/s (medians of alternating runs) and the peak RSS sampled
during training, each training in its own process.

    python bench/word2vec_scale.py --json bench/out/word2vec_scale.json [--times 10] [--epochs 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent / "word2vec.py"
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpus" / "books.txt.gz"


def prepare(times: int, corpus: Path, work: Path) -> dict:
    """Tokenize the corpus repeated ``times`` times (a folder of links) and encode it, in child processes."""
    from replearn.lib.text.tokenize import tokenize_corpus

    src = work / f"x{times}"
    src.mkdir()
    for i in range(times):
        os.symlink(corpus.resolve(), src / f"part-{i:03d}.txt.gz")
    t = time.perf_counter()
    stats = tokenize_corpus(src, work / f"tokens-x{times}")
    tok_seconds = time.perf_counter() - t
    (work / f"replearn-x{times}").mkdir()
    child(times, work, "prepare", 1, 1)
    return {"tokens": stats.tokens, "tokenize_seconds": tok_seconds}


def child(times: int, work: Path, stage: str, epochs: int, threads: int) -> dict:
    cmd = [sys.executable, str(BENCH), "--child", "replearn", "--tokens", str(work / f"tokens-x{times}"),
           "--out", str(work / f"replearn-x{times}" / "vectors.npy"), "--epochs", str(epochs), "--threads",
           str(threads), "--min-count", str(5 * times), "--stage", stage]
    res = subprocess.run(cmd, capture_output=True, text=True)  # training in its own process: its RSS alone
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--times", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="training runs per size, alternating (medians)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.corpus.exists():
        sys.exit(f"corpus {args.corpus} not found: the books corpus lives in ../shared/data/corpus/ beside the repo")
    fig: dict = {"times": args.times, "epochs": args.epochs, "threads": args.threads, "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as tmp:
        sizes = (1, args.times)
        for n in sizes:
            fig.update({f"{k}_x{n}": v for k, v in prepare(n, args.corpus, Path(tmp)).items()})
        runs: dict[int, list[dict]] = {n: [] for n in sizes}
        for _ in range(args.repeats):  # alternate the sizes: the machine's speed drifts by tens of percent
            for n in sizes:
                runs[n].append(child(n, Path(tmp), "train", args.epochs, args.threads))
        for n, rs in runs.items():
            wps = [r["raw_words"] / r["train_seconds"] for r in rs]
            fig[f"words_per_s_x{n}"] = statistics.median(wps)
            fig[f"words_per_s_all_x{n}"] = ", ".join(f"{w:.0f}" for w in wps)
            fig[f"train_rss_mb_x{n}"] = max(r["train_rss_mb"] for r in rs)
            fig[f"peak_rss_mb_x{n}"] = max(r["peak_rss_mb"] for r in rs)
            fig[f"vocab_x{n}"] = rs[0]["vocab"]
    big = f"x{args.times}"
    fig["words_per_s_ratio"] = fig[f"words_per_s_{big}"] / fig["words_per_s_x1"]
    fig["train_rss_ratio"] = fig[f"train_rss_mb_{big}"] / fig["train_rss_mb_x1"]
    fig["peak_rss_ratio"] = fig[f"peak_rss_mb_{big}"] / fig["peak_rss_mb_x1"]
    print(f"{'':6}{'tokens':>14}{'vocab':>9}{'words/s':>12}{'train RSS MB':>14}{'peak RSS MB':>13}")
    for n in ("x1", big):
        print(f"{n:6}{fig[f'tokens_{n}']:>14,}{fig[f'vocab_{n}']:>9,}{fig[f'words_per_s_{n}']:>12,.0f}"
              f"{fig[f'train_rss_mb_{n}']:>14,.0f}{fig[f'peak_rss_mb_{n}']:>13,.0f}")
    print(f"ratios {big}/x1: words/s {fig['words_per_s_ratio']:.3f} (medians of {args.repeats} alternating runs: "
          f"x1 {fig['words_per_s_all_x1']}; {big} {fig[f'words_per_s_all_{big}']}), training RSS "
          f"{fig['train_rss_ratio']:.3f}, training-process peak RSS {fig['peak_rss_ratio']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(fig, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
