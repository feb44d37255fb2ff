"""`replearn search` wall time, warm: the champion resolved through MLflow (before) vs from the registry cache (after).

Each command runs as a fresh `replearn` process, as a user types it, in a data
home that already has registered models (``replearn run word2vec --home H``,
``replearn run metric --home H``). "before" sets ``REPLEARN_REGISTRY_CACHE=0``:
the version is looked up through MLflow's client and SQLite store, as every
search did before the cache; "after" is the default: a warm call (the second
with the same model) answers from ``<home>/mlflow.db.registry-cache.json``
without importing MLflow or Prefect. One warm-up call of each mode comes first
(it also writes the cache); then the two modes alternate ``--repeats`` times
(the 2-core machine's speed drifts) and the medians are reported, with a check
that both modes print the same table.

    python bench/search_latency.py --home /tmp/search-home [--repeats 5] [--json bench/out/search_latency.json]

``--json`` writes one flat object: ``<case>.before_s``, ``<case>.after_s`` (wall),
``<case>.ratio`` (after / before), ``<case>.before_cpu_s``, ``<case>.after_cpu_s``
(user + system CPU of the process: steadier than wall time on a loaded
machine), ``<case>.same_output`` for the cases
``word2vec_word`` (``--word king``), ``word2vec_analogy`` (``--positive king woman
--negative man``) and ``metric_id`` (``search metric --id 0``, when a metric
model is registered), plus ``repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {"word2vec_word": ["search", "word2vec", "--word", "king"],
         "word2vec_analogy": ["search", "word2vec", "--positive", "king", "woman", "--negative", "man"],
         "metric_id": ["search", "metric", "--id", "0"]}


def _replearn() -> str:
    """The ``replearn`` console script beside this interpreter (else on PATH)."""
    beside = Path(sys.executable).parent / "replearn"
    return str(beside) if beside.exists() else (shutil.which("replearn") or "replearn")


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _timed(args: list[str], cache: bool) -> tuple[float, float, str, int]:
    """(wall seconds, CPU seconds (user + system), stdout, exit status) of one ``replearn`` process."""
    env = {**os.environ, "REPLEARN_REGISTRY_CACHE": "1" if cache else "0", "COLUMNS": "100"}
    c0, t0 = _cpu(), time.perf_counter()
    p = subprocess.run([_replearn(), *args], env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, _cpu() - c0, p.stdout, p.returncode


def measure(home: str, args: list[str], repeats: int) -> dict | None:
    """Medians of ``repeats`` warm runs per mode (wall and CPU seconds); None when the command fails (no model)."""
    cmd = [*args, "--home", home]
    outputs = {}
    for cache in (False, True):  # warm-up: file cache, and (with the cache on) the cache entry written
        _, _, outputs[cache], rc = _timed(cmd, cache)
        if rc != 0:
            return None
    wall, cpu = {False: [], True: []}, {False: [], True: []}
    for _ in range(repeats):
        for cache in (False, True):
            s, c, out, _ = _timed(cmd, cache)
            wall[cache].append(s)
            cpu[cache].append(c)
            outputs[cache] = out
    before, after = statistics.median(wall[False]), statistics.median(wall[True])
    return {"before_s": round(before, 3), "after_s": round(after, 3), "ratio": round(after / before, 3),
            "before_cpu_s": round(statistics.median(cpu[False]), 3),
            "after_cpu_s": round(statistics.median(cpu[True]), 3), "same_output": outputs[False] == outputs[True]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default=os.environ.get("REPLEARN_HOME", ".replearn"),
                    help="data home with registered word2vec (and metric) models")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out: dict = {"repeats": args.repeats}
    print(f"{'case':<18} {'before s':>9} {'after s':>8} {'ratio':>6} {'CPU before':>11} {'CPU after':>10}  same output")
    for case, cmd in CASES.items():
        r = measure(args.home, cmd, args.repeats)
        if r is None:
            print(f"{case:<18} (no model registered for it in {args.home}: skipped)")
            continue
        out.update({f"{case}.{k}": v for k, v in r.items()})
        print(f"{case:<18} {r['before_s']:>9.2f} {r['after_s']:>8.2f} {r['ratio']:>6.2f} {r['before_cpu_s']:>11.2f} "
              f"{r['after_cpu_s']:>10.2f}  {r['same_output']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
