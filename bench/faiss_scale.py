"""Benchmark: replearn's automatically chosen and tuned FAISS index vs exact search and a hand-tuned grid.

Data: ``--n`` (default 1,000,000) x ``--d`` (128) float32 vectors from a fixed-seed
Gaussian mixture with cluster structure (``--components`` 2000 centres ~ N(0, I),
per-component scale U(0.6, 1.0), Zipf(0.5) component weights, so clusters are
unequal in size and overlap), plus ``--nq`` (2000) held-out queries from the
same mixture, the same for every index (grid and replearn). Ground truth: exact L2 top-10 (FAISS Flat).

Measured for each index: build seconds (train + add), index memory (bytes of
codes, ids, centroids, graph links), queries per second at 1 and 2 FAISS
threads (``faiss.omp_set_num_threads``; one batch of all queries, best of 2),
recall@10 against the exact top-10.

* exact ``Flat``;
* ``HNSW32``, efSearch 16..256 (on the first ``--hnsw-n`` vectors, default all;
  a subset is reported as such, with its own ground truth, and left out of the
  head-to-head; ``--skip-hnsw`` leaves HNSW out, recorded as ``hnsw_grid`` in
  the JSON: its 1M build alone takes ~10 min on 2 cores);
* ``IVF{1024,4096,16384}`` with ``Flat`` and ``PQ32`` codes, nprobe 1..64. One
  coarse quantizer per nlist is trained (k-means, 10 iterations, on
  ``min(N, 50 nlist, 262144)`` vectors; for nlist >= 16384 k-means assigns
  through an HNSW index over the centroids, as FAISS's own benchmarks do, to fit
  the run on 2 cores) and shared by the Flat and PQ variants; the database is
  assigned to it once, exactly;
* replearn: ``build_tuned_index(xb, "l2")`` -- ``choose_index`` picks the
  factory, ``tune_index`` picks nprobe (and a ``max_codes`` cap) / efSearch so
  that the 95 % lower confidence bound of recall@10 reaches 0.95 on 2,000
  database rows held out of the index while tuning (added after) -- then
  evaluated on the bench's held-out queries like the grid.

The headline: replearn's QPS over the QPS of the fastest grid entry reaching
recall@10 >= 0.95 on the held-out queries, measured head-to-head (5 alternating
rounds, median) at 1 and 2 threads. Then export and re-read of the N x d
vectors through ``write_embeddings`` / ``read_vectors`` (a folder of shards,
and one file) beside ``np.save`` / ``np.load``, in MB/s of vector data.

    python bench/faiss_scale.py --json bench/out/faiss_scale.json [--n 1000000] [--hnsw-n N | --skip-hnsw] [--skip-export]
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from replearn.lib.store.embeddings_table import EmbeddingsMetadata, read_vectors, write_embeddings  # noqa: E402
from replearn.lib.store.faiss_index import get_search_params, set_search_params  # noqa: E402
from replearn.lib.store.index_tuning import build_tuned_index  # noqa: E402

K = 10
TARGET = 0.95


def log(*a) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def mixture(n: int, d: int, n_components: int, nq: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(xb (n, d), xq (nq, d))`` float32 from one Gaussian mixture (see the module docstring)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_components, d)).astype(np.float32)
    scales = rng.uniform(0.6, 1.0, n_components).astype(np.float32)
    w = 1.0 / np.arange(1, n_components + 1) ** 0.5
    w /= w.sum()
    total = n + nq
    comp = rng.choice(n_components, size=total, p=w)
    x = np.empty((total, d), np.float32)
    step = 1 << 17
    for s in range(0, total, step):
        c = comp[s : s + step]
        x[s : s + step] = centres[c] + scales[c, None] * rng.standard_normal((len(c), d), dtype=np.float32)
    return x[:n], np.ascontiguousarray(x[n:])


def recall(I: np.ndarray, gt: np.ndarray) -> float:
    return float((I[:, :, None] == gt[:, None, :K]).any(axis=2).sum()) / (len(gt) * K)


def qps(index, xq: np.ndarray, threads: int, repeats: int = 2) -> tuple[float, np.ndarray]:
    faiss.omp_set_num_threads(threads)
    best, I = 0.0, None
    for _ in range(repeats):
        t = time.perf_counter()
        _, I = index.search(xq, K)
        best = max(best, len(xq) / (time.perf_counter() - t))
    faiss.omp_set_num_threads(2)
    return best, I


def ivf_bytes(index) -> int:
    ivf = faiss.extract_index_ivf(index)
    sizes = sum(ivf.invlists.list_size(i) for i in range(ivf.nlist))
    return int(sizes * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4)


def hnsw_bytes(index) -> int:
    h = faiss.downcast_index(index)
    extra = 0
    if isinstance(h, faiss.IndexIDMap):
        extra = 8 * h.ntotal
        h = faiss.downcast_index(h.index)
    return extra + int(h.ntotal * h.d * 4 + h.hnsw.neighbors.size() * 4 + h.hnsw.levels.size() * 4
               + h.hnsw.offsets.size() * 8)


def train_quantizer(xb: np.ndarray, nlist: int, seed: int) -> tuple[faiss.IndexFlatL2, float]:
    t = time.perf_counter()
    n, d = xb.shape
    n_train = min(n, 50 * nlist, 262_144)
    xt = xb[np.sort(np.random.default_rng(seed).choice(n, n_train, replace=False))]
    clus = faiss.Clustering(d, nlist)
    clus.niter = 10
    clus.seed = seed
    clus.max_points_per_centroid = 10**9  # we subsampled already
    clus.verbose = False
    if nlist >= 16384:
        assign = faiss.IndexHNSWFlat(d, 32)
        assign.hnsw.efSearch = 64
    else:
        assign = faiss.IndexFlatL2(d)
    clus.train(xt, assign)
    q = faiss.IndexFlatL2(d)
    q.add(faiss.vector_to_array(clus.centroids).reshape(nlist, d))
    return q, time.perf_counter() - t


def bench_grid_ivf(xb, xq, gt, nlist, seed, rows) -> dict:
    n, d = xb.shape
    q, t_train = train_quantizer(xb, nlist, seed)
    t = time.perf_counter()
    _, assign = q.search(xb, 1)
    assign = np.ascontiguousarray(assign.ravel(), dtype=np.int64)
    t_assign = time.perf_counter() - t
    log(f"IVF{nlist}: quantizer trained in {t_train:.1f} s, database assigned in {t_assign:.1f} s")
    indexes = {}
    for codes in ("Flat", "PQ32"):
        t = time.perf_counter()
        if codes == "Flat":
            index = faiss.IndexIVFFlat(q, d, nlist)
            index.is_trained = True
        else:
            index = faiss.IndexIVFPQ(q, d, nlist, 32, 8)
            xt = xb[np.sort(np.random.default_rng(seed + 1).choice(n, min(n, 65536), replace=False))]
            index.train(xt)  # the quantizer is trained: only the residual PQ codebooks are
        index.add_core(n, faiss.swig_ptr(xb), None, faiss.swig_ptr(assign))
        build = t_train + t_assign + (time.perf_counter() - t)
        name = f"IVF{nlist},{codes}"
        mem = ivf_bytes(index)
        for nprobe in (1, 2, 4, 8, 16, 32, 64):
            index.nprobe = nprobe
            q1, I = qps(index, xq, 1)
            q2, _ = qps(index, xq, 2)
            r = recall(I, gt)
            rows.append({"index": name, "param": f"nprobe={nprobe}", "build_s": build, "mem_mb": mem / 1e6,
                         "qps_1t": q1, "qps_2t": q2, "recall_at_10": r})
            log(f"  {name} nprobe={nprobe}: recall {r:.4f}, QPS {q1:,.0f} (1t) {q2:,.0f} (2t)")
        indexes[name] = index
    return indexes


def bench_index(args) -> dict:
    out: dict = {"n": args.n, "d": args.d, "components": args.components, "nq": args.nq, "seed": args.seed,
                 "faiss_version": faiss.__version__, "k": K, "target_recall": TARGET}
    faiss.omp_set_num_threads(2)
    t = time.perf_counter()
    xb, xq = mixture(args.n, args.d, args.components, args.nq, args.seed)
    log(f"data {xb.shape} in {time.perf_counter() - t:.1f} s")
    rows: list[dict] = []

    flat = faiss.IndexFlatL2(args.d)
    t = time.perf_counter()
    flat.add(xb)
    build = time.perf_counter() - t
    t = time.perf_counter()
    _, gt = flat.search(xq, K)
    log(f"exact ground truth in {time.perf_counter() - t:.1f} s")
    sub = xq[: min(len(xq), 200)]  # Flat is slow: QPS over 200 queries
    q1, _ = qps(flat, sub, 1, 1)
    q2, _ = qps(flat, sub, 2, 1)
    rows.append({"index": "Flat", "param": "", "build_s": build, "mem_mb": xb.nbytes / 1e6, "qps_1t": q1,
                 "qps_2t": q2, "recall_at_10": 1.0})
    log(f"Flat: QPS {q1:,.1f} (1t) {q2:,.1f} (2t)")
    del flat
    gc.collect()

    kept = {}
    # HNSW
    hn = min(args.hnsw_n, args.n)
    out["hnsw_grid"] = "skipped (--skip-hnsw)" if args.skip_hnsw else (
        "all vectors" if hn == args.n else f"first {hn:,} vectors, own ground truth; not in the head-to-head")
    if args.skip_hnsw:
        hn = 0
    out["grid_train"] = "k-means 10 iterations on min(N, 50 nlist, 262144) vectors per nlist"
    bench_hnsw(args, xb, xq, gt, hn, rows, kept)

    for nlist in args.nlists:
        kept.update(bench_grid_ivf(xb, xq, gt, nlist, args.seed, rows))
        gc.collect()
    return finish(args, out, xb, xq, gt, rows, kept)


def bench_hnsw(args, xb, xq, gt, hn, rows, kept) -> None:
    if hn <= 0:
        log("HNSW32 grid skipped")
        return
    xh = xb[:hn]
    if hn < args.n:
        fl = faiss.IndexFlatL2(args.d)
        fl.add(xh)
        _, gt_h = fl.search(xq, K)
        del fl
    else:
        gt_h = gt
    t = time.perf_counter()
    h = faiss.IndexHNSWFlat(args.d, 32)
    h.add(xh)
    build = time.perf_counter() - t
    log(f"HNSW32 on {hn:,} vectors built in {build:.1f} s")
    name = "HNSW32" if hn == args.n else f"HNSW32 (first {hn:,})"
    for ef in (16, 32, 64, 128, 256):
        h.hnsw.efSearch = ef
        q1, I = qps(h, xq, 1)
        q2, _ = qps(h, xq, 2)
        r = recall(I, gt_h)
        rows.append({"index": name, "param": f"efSearch={ef}", "build_s": build, "mem_mb": hnsw_bytes(h) / 1e6,
                     "qps_1t": q1, "qps_2t": q2, "recall_at_10": r})
        log(f"  {name} efSearch={ef}: recall {r:.4f}, QPS {q1:,.0f} (1t) {q2:,.0f} (2t)")
    if hn == args.n:
        kept["HNSW32"] = h
    else:
        del h


def finish(args, out, xb, xq, gt, rows, kept):
    # replearn
    t = time.perf_counter()
    index, report = build_tuned_index(xb, "l2", target_recall=TARGET, k=K, seed=args.seed)
    total = time.perf_counter() - t
    tun = report["tuning"]
    log(f"replearn chose {report['factory']} ({tun['params']}, tuning recall {tun['recall_at_k']:.4f}, lower "
        f"bound {tun['recall_lower_bound']:.4f}, {tun['codes_per_query']} codes/query); train size "
        f"{report['choice']['train_size']}; build {report['build_seconds']:.1f} s, build+tune {total:.1f} s")
    q1, I = qps(index, xq, 1)
    q2, _ = qps(index, xq, 2)
    r = recall(I, gt)
    mem = ivf_bytes(index) if "IVF" in report["factory"] else (
        hnsw_bytes(index) if "HNSW" in report["factory"] else xb.nbytes)
    param = ",".join(f"{a}={b}" for a, b in tun["params"].items())
    rows.append({"index": f"replearn: {report['factory']}", "param": param, "build_s": report["build_seconds"],
                 "mem_mb": mem / 1e6, "qps_1t": q1, "qps_2t": q2, "recall_at_10": r})
    log(f"  replearn on held-out queries: recall {r:.4f}, QPS {q1:,.0f} (1t) {q2:,.0f} (2t)")
    out.update({"replearn_factory": report["factory"], "replearn_param": param,
                "replearn_params": json.dumps(tun["params"]), "replearn_train_size": report["choice"]["train_size"],
                "replearn_tuning_recall": tun["recall_at_k"], "replearn_tuning_recall_lcb": tun["recall_lower_bound"],
                "replearn_tuning_codes_per_query": tun["codes_per_query"], "replearn_tuning_queries": tun["n_queries"],
                "replearn_tuning_ms_per_query": tun["ms_per_query"],
                "replearn_build_s": report["build_seconds"], "replearn_tune_s": report["tune_seconds"],
                "replearn_recall_at_10": r})

    # head-to-head against the fastest grid entry reaching the target (by 1-thread QPS)
    ok = [row for row in rows[:-1] if row["recall_at_10"] >= TARGET and not row["index"].startswith("HNSW32 (")
          and row["index"] != "Flat"]
    if ok:
        for threads in (1, 2):
            best = max(ok, key=lambda row: row[f"qps_{threads}t"])
            peer = kept[best["index"]]
            pname, pval = best["param"].split("=")
            set_search_params(peer, {pname: int(pval)})
            ours, theirs = [], []
            for _ in range(5):
                ours.append(qps(index, xq, threads)[0])
                theirs.append(qps(peer, xq, threads)[0])
            ratio = statistics.median(ours) / statistics.median(theirs)
            out[f"best_grid_{threads}t"] = f"{best['index']} {best['param']}"
            out[f"best_grid_recall_{threads}t"] = best["recall_at_10"]
            out[f"best_grid_qps_{threads}t"] = statistics.median(theirs)
            out[f"replearn_qps_{threads}t"] = statistics.median(ours)
            out[f"qps_ratio_{threads}t"] = ratio
            log(f"{threads} thread(s): replearn {statistics.median(ours):,.0f} QPS vs {best['index']} {best['param']} "
                f"{statistics.median(theirs):,.0f} QPS: ratio {ratio:.3f} (replearn recall {r:.4f} params "
                f"{get_search_params(index)})")
    out["rows"] = rows
    del kept, index
    gc.collect()
    return out, xb


def bench_export(xb: np.ndarray, work: Path) -> dict:
    n, d = xb.shape
    mb = xb.nbytes / 1e6
    keys = [f"item{i}" for i in range(n)]
    meta = EmbeddingsMetadata(family="bench", dim=d, normalized=False, similarity="l2")
    out = {}
    for rep in range(2):  # alternate, keep the best
        t = time.perf_counter()
        np.save(work / "x.npy", xb)
        out.setdefault("npy_write", []).append(mb / (time.perf_counter() - t))
        t = time.perf_counter()
        y = np.load(work / "x.npy")
        out.setdefault("npy_read", []).append(mb / (time.perf_counter() - t))
        del y
        for layout, path in (("shards", work / "emb"), ("file", work / "emb.parquet")):
            t = time.perf_counter()
            write_embeddings(path, keys, xb, meta)
            out.setdefault(f"parquet_{layout}_write", []).append(mb / (time.perf_counter() - t))
            t = time.perf_counter()
            _, _, y, _ = read_vectors(path)
            out.setdefault(f"parquet_{layout}_read", []).append(mb / (time.perf_counter() - t))
            assert np.array_equal(y[:1000], xb[:1000])
            del y
            gc.collect()
    res = {f"{k}_mb_s": max(v) for k, v in out.items()}
    res["export_vector_mb"] = mb
    res["parquet_shards_bytes"] = sum(p.stat().st_size for p in (work / "emb").iterdir())
    log("export MB/s (best of 2): " + ", ".join(f"{k} {v:,.0f}" for k, v in res.items() if k.endswith("mb_s")))
    return res


def print_table(out: dict) -> None:
    print(f"\n{'index':28s} {'param':14s} {'build s':>8s} {'mem MB':>8s} {'QPS 1t':>10s} {'QPS 2t':>10s} "
          f"{'recall@10':>9s}")
    for r in out["rows"]:
        print(f"{r['index']:28s} {r['param']:14s} {r['build_s']:8.1f} {r['mem_mb']:8.0f} {r['qps_1t']:10,.0f} "
              f"{r['qps_2t']:10,.0f} {r['recall_at_10']:9.4f}")
    for th in (1, 2):
        if f"qps_ratio_{th}t" in out:
            print(f"{th} thread(s): replearn / fastest grid entry at recall >= {TARGET} ({out[f'best_grid_{th}t']}): "
                  f"{out[f'qps_ratio_{th}t']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--components", type=int, default=2000)
    ap.add_argument("--nq", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hnsw-n", type=int, default=None,
                    help="build HNSW on the first HNSW_N vectors (default all; a subset is reported, not compared)")
    ap.add_argument("--skip-hnsw", action="store_true", help="no HNSW32 grid (its 1M build takes ~10 min on 2 cores)")
    ap.add_argument("--nlists", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument("--skip-export", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.hnsw_n = args.hnsw_n or args.n
    t0 = time.perf_counter()
    out, xb = bench_index(args)
    if not args.skip_export:
        work = Path(tempfile.mkdtemp(prefix="faiss_scale_"))
        try:
            out.update(bench_export(xb, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    out["total_seconds"] = time.perf_counter() - t0
    print_table(out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        flat = {k: v for k, v in out.items() if k != "rows"}
        for r in out["rows"]:  # one flat object: row figures under "<index> <param> <field>"
            tag = f"{r['index']} {r['param']}".strip()
            for f in ("build_s", "mem_mb", "qps_1t", "qps_2t", "recall_at_10"):
                flat[f"{tag} {f}"] = r[f]
        args.json.write_text(json.dumps(flat, indent=2) + "\n")


if __name__ == "__main__":
    main()
