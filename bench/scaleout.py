"""Benchmark: tokenization + export of the books corpus with ``--runner local`` vs ``--runner dask``.

Each measurement is a fresh process, as ``replearn run`` is: a flow with the
chosen shard runner (infra/runners.py) runs the tokenize stage and the export
stage (random vectors for the corpus's vocabulary, dim 100: training is not
measured) exactly as the word2vec flow calls them, into a fresh data home (no
stage cache). Reported, medians of alternating repeats: the cluster's start-up
(a no-op task, so the first task pays it; ~0 for local), tokenize (partitions +
gather), export (shards + publish) and their sum.

Corpora: ``gz`` = books.txt.gz (one partition: a gzip stream cannot be split),
``txt4`` = the same text in 4 plain files (4 partitions), ``gz4`` = 4 links to
books.txt.gz (4 partitions, 4x the text).

    python bench/scaleout.py --json bench/out/scaleout.json [--repeats 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpus" / "books.txt.gz"
TOKENIZER = {"lowercase": True, "normalization": "NFKC", "min_len": 2, "max_len": 15, "text_column": "text"}


def make_corpora(books: Path, work: Path) -> dict[str, Path]:
    lines = gzip.decompress(books.read_bytes()).splitlines(keepends=True)
    txt4 = work / "txt4"
    txt4.mkdir()
    q = len(lines) // 4 + 1
    for i in range(4):
        (txt4 / f"part-{i}.txt").write_bytes(b"".join(lines[i * q:(i + 1) * q]))
    gz4 = work / "gz4"
    gz4.mkdir()
    for i in range(4):
        os.symlink(books.resolve(), gz4 / f"part-{i}.txt.gz")
    return {"gz": books, "txt4": txt4, "gz4": gz4}


def child(runner: str, corpus: str, home: str, workers: int) -> dict:
    """One measurement, in this (fresh) process."""
    import numpy as np
    from prefect import flow, task

    from replearn.flows.text_stages import export_word_vectors_stage, tokenize_stage
    from replearn.infra.runners import ShardRunner
    from replearn.lib.text.vocab import build_vocabulary, count_tokens, write_vocabulary
    from replearn.infra.tracking import client, experiment_id, tracking_uri

    @task
    def noop() -> int:
        return os.getpid()

    uri = tracking_uri(home)
    run_id = client(uri).create_run(experiment_id(uri, "bench-scaleout", home)).info.run_id

    @flow(name="bench-scaleout")
    def stages() -> dict:
        with ShardRunner(runner, None, workers) as shards:
            return measured(shards)

    def measured(shards: ShardRunner) -> dict:
        t0 = time.perf_counter()
        shards.map(noop, [{} for _ in range(workers)])          # the cluster starts on the first task
        t1 = time.perf_counter()
        stats = tokenize_stage(corpus, f"{home}/tokens", TOKENIZER, uri, run_id, source_hash="bench", runner=shards)
        t2 = time.perf_counter()
        vocab = build_vocabulary(count_tokens(Path(stats.path)), min_count=5)   # not timed: not fanned out
        write_vocabulary(vocab, Path(home) / "vocab.parquet")
        rng = np.random.default_rng(0)
        np.savez(Path(home) / "vectors.npz", input=rng.standard_normal((len(vocab), 100), dtype=np.float32),
                 context=rng.standard_normal((len(vocab), 100), dtype=np.float32))
        t3 = time.perf_counter()
        export_word_vectors_stage(f"{home}/vectors.npz", f"{home}/vocab.parquet", f"{home}/embeddings", ["input"],
                                  {}, run_id, "bench", shards=shards.shards, runner=shards)
        t4 = time.perf_counter()
        return {"start": t1 - t0, "tokenize": t2 - t1, "export": t4 - t3, "tokens": stats.tokens,
                "shards": len(stats.shards), "vocab": len(vocab)}

    return stages()


def measure(runner: str, corpus: Path, work: Path, workers: int, env: dict) -> dict:
    home = tempfile.mkdtemp(dir=work, prefix=f"home-{runner}-")
    cmd = [sys.executable, __file__, "--child", runner, "--corpus", str(corpus), "--home", home,
           "--workers", str(workers)]
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - t
    if res.returncode:
        raise RuntimeError(f"{runner} on {corpus} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_wall"] = wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child")
    ap.add_argument("--home")
    args = ap.parse_args()
    if args.child:
        r = child(args.child, str(args.corpus), args.home, args.workers)
        print(json.dumps(r))
        return
    results: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="replearn-scaleout-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "OMP_NUM_THREADS": "1"}
        env.pop("PREFECT_API_URL", None)
        env.pop("MLFLOW_TRACKING_URI", None)
        for name, corpus in make_corpora(args.corpus, work).items():
            for _ in range(args.repeats):
                for runner in ("local", "dask"):  # alternate: the machine's speed drifts
                    r = measure(runner, corpus, work, args.workers, env)
                    results.setdefault(name, {}).setdefault(runner, []).append(r)
                    print(f"{name:5} {runner:5} start {r['start']:5.1f} s  tokenize {r['tokenize']:5.1f} s  "
                          f"export {r['export']:4.1f} s  process {r['process_wall']:5.1f} s", flush=True)
    flat: dict[str, float] = {}
    print(f"\nmedians of {args.repeats} ({args.workers} Dask workers, 1 thread each), seconds")
    print(f"{'corpus':6} {'runner':6} {'start':>6} {'tokenize':>9} {'export':>7} {'sum':>6} {'process':>8}")
    for name, by_runner in results.items():
        for runner, rs in by_runner.items():
            med = {k: statistics.median(r[k] for r in rs) for k in ("start", "tokenize", "export", "process_wall")}
            med["sum"] = statistics.median(r["start"] + r["tokenize"] + r["export"] for r in rs)
            for k, v in med.items():
                flat[f"{name}.{runner}.{k}"] = round(v, 3)
            flat[f"{name}.token_shards"] = rs[0]["shards"]
            flat[f"{name}.tokens"] = rs[0]["tokens"]
            print(f"{name:6} {runner:6} {med['start']:6.1f} {med['tokenize']:9.2f} {med['export']:7.2f} "
                  f"{med['sum']:6.1f} {med['process_wall']:8.1f}")
        ratio = flat[f"{name}.dask.sum"] / flat[f"{name}.local.sum"]
        flat[f"{name}.dask_over_local"] = round(ratio, 3)
        print(f"{name:6} dask / local (start + tokenize + export): {ratio:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(flat, indent=2) + "\n")


if __name__ == "__main__":
    main()
