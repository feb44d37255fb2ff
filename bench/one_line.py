"""A corpus that is one huge line (the text8 layout) against the same text with its line breaks, in one run.

Issue 15 item 4: replearn used to train such a corpus as one sentence, one job, on one thread, with one
learning rate per epoch. Now a line longer than the sentence cap is cut into sentences (word2vec.c, gensim).
Both corpora go through bench/bare_word2vec.py (the word2vec flow's stages as plain lib calls, the flow's
settings), in one process each, ``--repeats`` times alternating (lines, one line, lines, ...), so that a
shared machine's load falls on both alike::

    python bench/one_line.py --json bench/out/one_line.json [--corpus PATH] [--epochs 5] [--repeats 3]

Writes one flat JSON object: per corpus (``lines``, ``one_line``) and repeat (``.r1``, ...) training words/s,
training seconds, tokens, analogy total, WordSim-353 and SimLex-999; their medians (no suffix); and the ratios
one_line / lines of the medians.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BARE = REPO / "bench" / "bare_word2vec.py"


def one_line_copy(src: Path, dest: Path) -> Path:
    """``src`` (text, .gz) with every line break replaced by a space: one line."""
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", encoding="utf-8", errors="replace") as f, open(dest, "w", encoding="utf-8") as out:
        for line in f:
            out.write(line.rstrip("\n") + " ")
        out.write("\n")
    return dest


def run(corpus: Path, epochs: int, work: Path, name: str) -> dict:
    config = work / f"{name}.config.json"
    config.write_text(subprocess.run([sys.executable, str(BARE), "--print-config", "--corpus", str(corpus),
                                      "--set", f"epochs={epochs}"], check=True, capture_output=True,
                                     text=True).stdout)
    out_json = work / f"{name}.json"
    subprocess.run([sys.executable, str(BARE), "--config", str(config), "--out", str(work / name), "--json",
                    str(out_json)], check=True)
    r = json.loads(out_json.read_text())
    return {f"{name}.{k}": r[k] for k in ("tokens", "documents", "train_seconds", "analogy_total",
                                          "wordsim353_spearman", "simlex999_spearman") if k in r} | {
        f"{name}.words_per_second": round(r["tokens"] * epochs / r["train_seconds"]) if r.get("train_seconds") else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "lib" / "text" / "corpora" / "books.txt.gz")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    r: dict = {"corpus": str(a.corpus), "epochs": a.epochs, "repeats": a.repeats, "load_1m_start": os.getloadavg()[0]}
    runs: dict[str, list[dict]] = {"lines": [], "one_line": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpora = {"lines": a.corpus, "one_line": one_line_copy(a.corpus, work / "one-line.txt")}
        for i in range(1, a.repeats + 1):
            for name, corpus in corpora.items():
                one = run(corpus, a.epochs, work, name)
                runs[name].append(one)
                r |= {f"{k}.r{i}": v for k, v in one.items()}
    for name, rows in runs.items():
        for k in rows[0]:
            values = [row[k] for row in rows if row.get(k) is not None]
            if values:
                r[k] = statistics.median(values)
    r["load_1m_end"] = os.getloadavg()[0]
    for k in ("words_per_second", "analogy_total", "wordsim353_spearman"):
        if r.get(f"lines.{k}") and r.get(f"one_line.{k}") is not None:
            r[f"ratio.{k}"] = round(r[f"one_line.{k}"] / r[f"lines.{k}"], 3)
    print(json.dumps(r, indent=2))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
