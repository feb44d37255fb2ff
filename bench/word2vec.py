"""Benchmark: replearn skip-gram (both kernels) vs gensim, word2vec.c and fastText, side by side, on the books corpus.

Same tokens, same sentences (consecutive documents joined into sentences of at
most 1,000 tokens), same hyperparameters (dim 100, window 5, negative 5,
min_count 5, sample 1e-3, lr 0.025, 5 epochs), at 1 and 2 threads (``--threads``).
Trainers (``--trainers``, default all):

- ``gensim``: gensim Word2Vec (sg=1), timed: ``train()`` only.
- ``replearn``: replearn's skip-gram, kernel "shared" (the context words of a
  centre word share its noise words), timed: ``train_sgns`` only.
- ``replearn_pair``: the same with kernel "pair" (word2vec.c's per-pair update).
- ``word2vec_c``: the original word2vec.c from ``../shared/peers/word2vec-c/``
  (``--peers``), built here with the system C compiler (``$CC``, else ``cc`` or
  ``gcc``) and the build line of ``../shared/peers/README.md``, from a copy that
  clears ``eof`` when a thread restarts for its next epoch (unchanged, one thread
  trains one of the ``-iter`` epochs: :data:`W2V_C_EPOCH_RESTART`); run on a text file
  of the same sentences (one a line, tokens space-separated) with
  ``-cbow 0 -size 100 -window 5 -negative 5 -hs 0 -sample 1e-3 -iter E
  -min-count 5 -alpha 0.025 -binary 0``. Timed: the whole process, vocabulary
  build included (it first reads the whole file to count its vocabulary).
- ``fasttext``: ``fasttext.train_unsupervised`` (pip ``fasttext-numpy2``, the
  ``bench`` extra) on the same text file as plain skip-gram (minn = maxn = 0, so no
  subwords; t 1e-3, lr 0.025). Timed: ``train_unsupervised``, which also builds its
  vocabulary from the file.

A peer that is missing (no C compiler, no source, fastText not installed) is
skipped with one line; the rest still runs and the JSON lacks that peer's keys.

words/s = corpus tokens x epochs / timed seconds (the same token count for
every trainer). Each training runs in its own child process so its peak RSS is
its own: VmHWM of a Python child at its end (gensim, replearn, fastText: the
interpreter and the vectors included); for word2vec.c, ``ru_maxrss`` from
``os.wait4`` on the program, spawned by a small Python child (an exec'd child's
figure also counts the high-water mark of the process that spawned it, here
about 16 MB, recorded as ``spawn_rss_mb_word2vec_c_t{T}``: far under
word2vec.c's own 120 MB hash table and 400 MB noise table). Every run's vectors
are scored by the same evaluation code (identical to gensim's evaluate_*
functions). ``--repeats`` rounds, each running every trainer at every thread
count, the trainer order reversed every other round; round i seeds gensim
and replearn with 1 + i, so the spread includes the seed's (word2vec.c and
fastText's ``train_unsupervised`` take no seed: at one thread every run gives
the same vectors, so they run once there); quality: mean and sd over
the rounds (analogy total also min and max), speed: median words/s with min and
max. Ratios of replearn (both kernels) against each peer and PASS/FAIL lines for
issue 16's targets (words/s >= 2.0x gensim; analogy total >= best of gensim and
word2vec.c - 0.5 points; WS-353 and SimLex-999 >= gensim - 0.01; peak RSS <=
gensim) are printed and written.

JSON keys (one flat object): ``{figure}_{trainer}_t{T}`` (e.g.
``words_per_s_replearn_t2``, ``analogy_total_sd_word2vec_c_t1``);
``words_per_s_ratio_{r}_vs_{peer}_t{T}``, ``analogy_total_diff_points_{r}_vs_{peer
or best}_t{T}``, ``{wordsim353,simlex999}_diff_{r}_vs_gensim_t{T}``,
``peak_rss_ratio_{r}_vs_gensim_t{T}`` and ``target_{speed,analogy,wordsim353,
simlex999,memory,all}_{r}_t{T}`` (booleans) for r in replearn, replearn_pair.

Also measures tokenization throughput (end to end, .gz to token shards) against
`gensim.utils.simple_preprocess`, a plain `re.findall` loop and, where
installed, the Hugging Face `tokenizers` pre-tokenizer.

    python bench/word2vec.py --json bench/out/word2vec.json [--corpus PATH] [--epochs 5] [--threads 1,2]
        [--repeats 3] [--trainers gensim,replearn,replearn_pair,word2vec_c,fasttext] [--peers DIR]
        [--skip-tokenize-peers]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpus" / "books.txt.gz"
DEFAULT_PEERS = REPO.parent / "shared" / "peers"
HYPER = dict(dim=100, window=5, negative=5, min_count=5, sample=1e-3, alpha=0.025)
MAX_SENTENCE = 1000  # consecutive documents are joined into sentences of at most this many tokens
TRAINERS = ("gensim", "replearn", "replearn_pair", "word2vec_c", "fasttext")
LABELS = {"gensim": "gensim", "replearn": "replearn", "replearn_pair": "replearn_pair", "word2vec_c": "word2vec.c",
          "fasttext": "fastText"}
KERNELS = {"replearn": "shared", "replearn_pair": "pair"}
UNSEEDED = ("word2vec_c", "fasttext")  # no seed option (train_unsupervised takes none): fixed streams per thread  # replearn's rows and their Word2VecConfig.kernel
# ../shared/peers/README.md's build line, after the compiler and `word2vec.c -o word2vec`
W2V_C_FLAGS = ["-lm", "-pthread", "-O3", "-march=native", "-Wall", "-funroll-loops", "-Wno-unused-result"]


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


# ---------------------------------------------------------------- the same sentences for every trainer
def iter_sentences(token_dir: Path):
    """The token shards' documents joined into sentences of at most MAX_SENTENCE tokens, in order.

    A document is never split: one longer than MAX_SENTENCE is a sentence of its own.
    """
    from replearn.lib.text.token_shards import iter_token_shards

    cur: list[str] = []
    for table in iter_token_shards(token_dir):
        for doc in table.column("tokens").to_pylist():
            if cur and len(cur) + len(doc) > MAX_SENTENCE:
                yield cur
                cur = []
            cur.extend(doc)
    if cur:
        yield cur


def write_text(token_dir: Path, path: Path) -> int:
    """The sentences of :func:`iter_sentences` as text, one a line, tokens space-separated; returns the tokens."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for s in iter_sentences(token_dir):
            f.write(" ".join(s))
            f.write("\n")
            n += len(s)
    return n


# ---------------------------------------------------------------- peers: availability
def find_compiler() -> tuple[list[str] | None, str]:
    """The C compiler to build word2vec.c with: ``$CC`` (may hold arguments), else ``cc`` or ``gcc`` on PATH."""
    cc = os.environ.get("CC", "").strip()
    if cc:
        parts = shlex.split(cc)
        found = shutil.which(parts[0])
        return ([found, *parts[1:]], "") if found else (None, f"no C compiler: CC={cc} not found")
    for name in ("cc", "gcc"):
        if found := shutil.which(name):
            return [found], ""
    return None, "no C compiler on PATH (set CC)"


#: word2vec.c's epoch restart in TrainModelThread. It never clears ``eof``, so a thread that reached the end of the
#: file skips every later epoch: with one thread ``-iter 5`` trains one epoch (and its learning rate never decays
#: below 0.8 alpha); with more, the last thread's part may be trained once. The bench builds a copy that clears it.
W2V_C_EPOCH_RESTART = "      sentence_length = 0;\n      fseek(fi, file_size / (long long)num_threads * (long long)id, SEEK_SET);"
W2V_C_EOF_FIX = "      sentence_length = 0;\n      eof = 0;\n      fseek(fi, file_size / (long long)num_threads * (long long)id, SEEK_SET);"


def build_word2vec_c(source_dir: Path, work: Path) -> tuple[Path | None, str]:
    """Compile ``source_dir/word2vec.c`` into ``work``; returns (executable, "") or (None, why not).

    The copy compiled clears ``eof`` when a thread starts its next epoch (:data:`W2V_C_EPOCH_RESTART`), so
    ``-iter`` epochs are trained at any thread count; the source is compiled unchanged (with a printed line)
    when that statement is not found.
    """
    src = source_dir / "word2vec.c"
    if not src.is_file():
        return None, f"source not found at {src} (--peers)"
    cc, why = find_compiler()
    if cc is None:
        return None, why
    text = src.read_text(encoding="utf-8", errors="replace")
    if text.count(W2V_C_EPOCH_RESTART) == 1:
        src = work / "word2vec.c"
        src.write_text(text.replace(W2V_C_EPOCH_RESTART, W2V_C_EOF_FIX), encoding="utf-8")
    else:
        print("word2vec.c: epoch restart not found, compiled unchanged (with one thread it may train one epoch)")
    exe = work / "word2vec"
    res = subprocess.run([*cc, str(src), "-o", str(exe), *W2V_C_FLAGS], capture_output=True, text=True)
    if res.returncode != 0 or not exe.is_file():
        last = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        return None, f"build with {' '.join(cc)} failed: {last}"
    return exe, ""


def compiler_version() -> str:
    cc, _ = find_compiler()
    if cc is None:
        return ""
    res = subprocess.run([*cc, "--version"], capture_output=True, text=True)
    return (res.stdout.strip().splitlines() or [""])[0]


def fasttext_missing() -> str:
    """Why the fastText peer cannot run, or "" when it can."""
    try:
        import fasttext  # noqa: F401
    except ImportError:
        return "pip install fasttext-numpy2 (the bench extra)"
    return ""


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""


# ---------------------------------------------------------------- trainers (child processes)
def child_replearn(token_dir: Path, out: Path, epochs: int, threads: int, min_count: int = HYPER["min_count"],
                   stage: str = "all", kernel: str | None = None, seed: int = 1) -> dict:
    """Vocabulary + encoding ("prepare"), training ("train"), or both ("all") in this process.

    With stage "train" the vocabulary and encoded corpus written by a "prepare" run
    beside ``out`` are reused, so the process's memory is the trainer's alone.
    ``kernel`` is ``Word2VecConfig.kernel`` (None: the config's default).
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
        corpus = encode_corpus(sorted(token_dir.glob("*.parquet")), vocab.words, out.parent / "encoded", MAX_SENTENCE)
    prep = time.perf_counter() - t0
    if stage == "prepare":
        return {"prep_seconds": prep, "vocab": len(vocab), "peak_rss_mb": peak_rss_mb()}
    cfg = Word2VecConfig(epochs=epochs, threads=threads, seed=seed, **{**HYPER, "min_count": min_count},
                         **({"kernel": kernel} if kernel else {}))
    with RssSampler() as sampler:
        r = train_sgns(corpus, vocab.counts, cfg, keep_prob=keep_probability(vocab.counts, cfg.sample),
                       noise_probs=noise_distribution(vocab.counts))
    np.save(out, r.syn0)
    (out.parent / "words.json").write_text(json.dumps(list(vocab.words)))
    return {"train_seconds": r.seconds, "prep_seconds": prep, "raw_words": corpus.raw_tokens * epochs,
            "vocab": len(vocab), "peak_rss_mb": peak_rss_mb(), "train_rss_mb": sampler.peak_mb}


def child_gensim(token_dir: Path, out: Path, epochs: int, threads: int, seed: int = 1) -> dict:
    import numpy as np
    from gensim.models import Word2Vec

    t0 = time.perf_counter()
    sentences = list(iter_sentences(token_dir))
    raw = sum(len(s) for s in sentences)
    m = Word2Vec(sg=1, vector_size=HYPER["dim"], window=HYPER["window"], negative=HYPER["negative"], hs=0,
                 min_count=HYPER["min_count"], sample=HYPER["sample"], alpha=HYPER["alpha"], workers=threads,
                 seed=seed)
    m.build_vocab(sentences)
    prep = time.perf_counter() - t0
    t = time.perf_counter()
    m.train(sentences, total_examples=len(sentences), epochs=epochs)
    seconds = time.perf_counter() - t
    np.save(out, m.wv.vectors)
    (out.parent / "words.json").write_text(json.dumps(list(m.wv.index_to_key)))
    return {"train_seconds": seconds, "prep_seconds": prep, "raw_words": raw * epochs, "vocab": len(m.wv),
            "peak_rss_mb": peak_rss_mb()}


def child_word2vec_c(exe: Path, text: Path, tokens: int, out: Path, epochs: int, threads: int) -> dict:
    """Run the word2vec.c program on ``text``; time the whole process, vocabulary build included.

    This child spawns it and reaps it with ``os.wait4``: the ``ru_maxrss`` that returns is the
    program's peak RSS, floored by this small process's own high-water mark at the spawn
    (``spawn_rss_mb``: a child started by fork/vfork + exec keeps its spawner's mark), which is
    why numpy is imported only afterwards. Its text vectors are then read into words.json +
    vectors.npy (the ``</s>`` row dropped).
    """
    vec_txt = out.parent / "vectors.txt"
    cmd = [str(exe), "-train", str(text), "-output", str(vec_txt), "-cbow", "0", "-size", str(HYPER["dim"]),
           "-window", str(HYPER["window"]), "-negative", str(HYPER["negative"]), "-hs", "0",
           "-sample", str(HYPER["sample"]), "-threads", str(threads), "-iter", str(epochs),
           "-min-count", str(HYPER["min_count"]), "-alpha", str(HYPER["alpha"]), "-binary", "0"]
    log = out.parent / "word2vec.log"
    spawn_rss = peak_rss_mb()
    with open(log, "wb") as f:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
    if p.returncode != 0:
        tail = log.read_bytes()[-2000:].decode("utf-8", "replace")
        raise RuntimeError(f"word2vec.c exited with {p.returncode}: {' '.join(cmd)}\n{tail}")
    import numpy as np

    words, rows = [], []
    with open(vec_txt, encoding="utf-8") as f:
        n, dim = map(int, f.readline().split())
        for line in f:
            parts = line.rstrip().split(" ")
            if parts[0] != "</s>":
                words.append(parts[0])
                rows.append(parts[1:])
    vectors = np.array(rows, dtype=np.float32)
    if vectors.shape != (len(words), dim) or len(words) + 1 != n:
        raise RuntimeError(f"word2vec.c wrote {vectors.shape} vectors for a header of {n} x {dim}")
    np.save(out, vectors)
    (out.parent / "words.json").write_text(json.dumps(words))
    vec_txt.unlink()
    return {"train_seconds": seconds, "raw_words": tokens * epochs, "vocab": len(words),
            "peak_rss_mb": usage.ru_maxrss / 1024, "spawn_rss_mb": spawn_rss}


def child_fasttext(text: Path, tokens: int, out: Path, epochs: int, threads: int) -> dict:
    """fastText plain skip-gram (no subwords) on ``text``; timed: train_unsupervised (vocabulary build included)."""
    import fasttext
    import numpy as np

    t = time.perf_counter()
    m = fasttext.train_unsupervised(str(text), model="skipgram", dim=HYPER["dim"], ws=HYPER["window"],
                                    neg=HYPER["negative"], minCount=HYPER["min_count"], t=HYPER["sample"],
                                    epoch=epochs, lr=HYPER["alpha"], thread=threads, minn=0, maxn=0, verbose=0)
    seconds = time.perf_counter() - t
    words = [w for w in m.words if w != "</s>"]
    np.save(out, np.stack([m.get_word_vector(w) for w in words]).astype(np.float32))
    (out.parent / "words.json").write_text(json.dumps(words))
    return {"train_seconds": seconds, "raw_words": tokens * epochs, "vocab": len(words),
            "peak_rss_mb": peak_rss_mb()}


def run_child(which: str, work: Path, epochs: int, threads: int, peer: dict, seed: int = 1) -> dict:
    """Train ``which`` in a child process (this file with ``--child``); returns its figures."""
    out_dir = work / which
    out_dir.mkdir(exist_ok=True)
    child = "replearn" if which in KERNELS else which
    cmd = [sys.executable, __file__, "--child", child, "--tokens", str(work / "tokens"),
           "--out", str(out_dir / "vectors.npy"), "--epochs", str(epochs), "--threads", str(threads), "--seed", str(seed)]
    if which in KERNELS:
        cmd += ["--kernel", KERNELS[which]]
    if which in ("word2vec_c", "fasttext"):
        cmd += ["--text", str(peer["text"]), "--text-tokens", str(peer["tokens"])]
    if which == "word2vec_c":
        cmd += ["--binary", str(peer["word2vec_c"])]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{which} child ({threads} threads) failed:\n{res.stderr[-3000:]}")
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


# ---------------------------------------------------------------- figures
QUALITY = ("analogy_semantic", "analogy_syntactic", "analogy_total", "wordsim353", "simlex999")
PEERS = ("gensim", "word2vec_c", "fasttext")  # what replearn's rows are compared with
SPEED_TARGET = 2.0  # issue 16: words/s >= 2.0x gensim's
ANALOGY_SLACK_POINTS = 0.5  # analogy total >= best(gensim, word2vec.c) - 0.5 points
SIMILARITY_SLACK = 0.01  # WS-353, SimLex-999 >= gensim's - 0.01


def summarise(rs: list[dict]) -> dict:
    """One trainer at one thread count over the repeats: median words/s (min, max), mean (sd) of the scores."""
    wps = sorted(r["raw_words"] / r["train_seconds"] for r in rs)
    s = {"words_per_s": statistics.median(wps), "words_per_s_min": wps[0], "words_per_s_max": wps[-1],
         "train_seconds": statistics.median(r["train_seconds"] for r in rs),
         "peak_rss_mb": max(x["peak_rss_mb"] for x in rs), "vocab": rs[-1]["vocab"],
         "king_neighbours": rs[-1]["king_neighbours"], "runs": len(rs)}
    for key in QUALITY:
        values = [x[key] for x in rs]
        s[key] = statistics.mean(values)
        s[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        if key == "analogy_total":
            s[f"{key}_min"], s[f"{key}_max"] = min(values), max(values)
    return s


def comparisons(fig: dict, threads: list[int]) -> None:
    """Add replearn's (both kernels') ratios and differences against the peers, and issue 16's verdicts, to ``fig``."""
    for t in threads:
        sfx = f"_t{t}"
        best = [p for p in ("gensim", "word2vec_c") if f"analogy_total_{p}{sfx}" in fig]
        if best:
            best_peer = max(best, key=lambda p: fig[f"analogy_total_{p}{sfx}"])
            fig[f"analogy_total_best_peer{sfx}"] = best_peer
        for r in KERNELS:
            if f"words_per_s_{r}{sfx}" not in fig:
                continue
            for p in PEERS:
                if f"words_per_s_{p}{sfx}" in fig:
                    fig[f"words_per_s_ratio_{r}_vs_{p}{sfx}"] = (fig[f"words_per_s_{r}{sfx}"]
                                                                 / fig[f"words_per_s_{p}{sfx}"])
                    fig[f"analogy_total_diff_points_{r}_vs_{p}{sfx}"] = 100 * (fig[f"analogy_total_{r}{sfx}"]
                                                                            - fig[f"analogy_total_{p}{sfx}"])
            if best:
                fig[f"analogy_total_diff_points_{r}_vs_best{sfx}"] = 100 * (fig[f"analogy_total_{r}{sfx}"]
                                                                         - fig[f"analogy_total_{best_peer}{sfx}"])
                fig[f"target_analogy_{r}{sfx}"] = (fig[f"analogy_total_diff_points_{r}_vs_best{sfx}"]
                                                   >= -ANALOGY_SLACK_POINTS)
            if f"words_per_s_gensim{sfx}" in fig:
                for key in ("wordsim353", "simlex999"):
                    fig[f"{key}_diff_{r}_vs_gensim{sfx}"] = fig[f"{key}_{r}{sfx}"] - fig[f"{key}_gensim{sfx}"]
                    fig[f"target_{key}_{r}{sfx}"] = fig[f"{key}_diff_{r}_vs_gensim{sfx}"] >= -SIMILARITY_SLACK
                fig[f"peak_rss_ratio_{r}_vs_gensim{sfx}"] = (fig[f"peak_rss_mb_{r}{sfx}"]
                                                             / fig[f"peak_rss_mb_gensim{sfx}"])
                fig[f"target_speed_{r}{sfx}"] = fig[f"words_per_s_ratio_{r}_vs_gensim{sfx}"] >= SPEED_TARGET
                fig[f"target_memory_{r}{sfx}"] = fig[f"peak_rss_mb_{r}{sfx}"] <= fig[f"peak_rss_mb_gensim{sfx}"]
            verdicts = [fig[f"target_{k}_{r}{sfx}"] for k in ("speed", "analogy", "wordsim353", "simlex999", "memory")
                        if f"target_{k}_{r}{sfx}" in fig]
            if len(verdicts) == 5:
                fig[f"target_all_{r}{sfx}"] = all(verdicts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts; every trainer runs at each")
    ap.add_argument("--repeats", type=int, default=3,
                    help="rounds of every trainer at every thread count, alternating order (speed: medians, "
                         "quality: means)")
    ap.add_argument("--trainers", default=",".join(TRAINERS), help=f"comma list, any of {','.join(TRAINERS)}")
    ap.add_argument("--peers", type=Path, default=DEFAULT_PEERS,
                    help="folder holding word2vec-c/word2vec.c (default ../shared/peers)")
    ap.add_argument("--json", type=Path, help="write the figures here as one flat JSON object")
    ap.add_argument("--skip-tokenize-peers", action="store_true", help="only time replearn's tokenizer")
    ap.add_argument("--child", choices=["replearn", "gensim", "word2vec_c", "fasttext"], help=argparse.SUPPRESS)
    ap.add_argument("--tokens", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--min-count", type=int, default=HYPER["min_count"], help=argparse.SUPPRESS)
    ap.add_argument("--stage", choices=["all", "prepare", "train"], default="all", help=argparse.SUPPRESS)
    ap.add_argument("--kernel", choices=sorted(set(KERNELS.values())), help=argparse.SUPPRESS)
    ap.add_argument("--text", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--text-tokens", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--binary", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        threads = int(args.threads)
        if args.child == "replearn":
            r = child_replearn(args.tokens, args.out, args.epochs, threads, args.min_count, args.stage, args.kernel,
                               args.seed)
        elif args.child == "gensim":
            r = child_gensim(args.tokens, args.out, args.epochs, threads, args.seed)
        elif args.child == "word2vec_c":
            r = child_word2vec_c(args.binary, args.text, args.text_tokens, args.out, args.epochs, threads)
        else:
            r = child_fasttext(args.text, args.text_tokens, args.out, args.epochs, threads)
        print(json.dumps(r))
        return
    try:
        threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        ap.error(f"--threads: a comma list of integers, not {args.threads!r}")
    trainers = [t.strip() for t in args.trainers.split(",") if t.strip()]
    if not threads or min(threads) < 1:
        ap.error("--threads: at least one count, each >= 1")
    if unknown := [t for t in trainers if t not in TRAINERS]:
        ap.error(f"--trainers: unknown {','.join(unknown)} (choose from {','.join(TRAINERS)})")
    if not args.corpus.exists():
        sys.exit(f"corpus {args.corpus} not found: the books corpus lives in ../shared/data/corpus/ beside the repo")
    fig: dict = {"corpus": str(args.corpus), "epochs": args.epochs, "threads": ",".join(map(str, threads))}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        peer: dict = {}
        skipped = []
        if "word2vec_c" in trainers:
            exe, why = build_word2vec_c(args.peers / "word2vec-c", work)
            if exe is None:
                print(f"skipping word2vec.c: {why}", flush=True)
                skipped.append(f"word2vec_c: {why}")
                trainers.remove("word2vec_c")
            else:
                peer["word2vec_c"] = exe
                fig["word2vec_c_compiler"] = compiler_version()
        if "fasttext" in trainers:
            if why := fasttext_missing():
                print(f"skipping fastText: {why}", flush=True)
                skipped.append(f"fasttext: {why}")
                trainers.remove("fasttext")
            else:
                fig["fasttext_version"] = package_version("fasttext-numpy2") or package_version("fasttext")
        if "gensim" in trainers:
            fig["gensim_version"] = package_version("gensim")
        if not trainers:
            sys.exit("no trainer left to run")
        fig["trainers"] = ",".join(trainers)
        fig["skipped"] = "; ".join(skipped)
        if args.skip_tokenize_peers:
            from replearn.lib.text.tokenize import tokenize_corpus

            t = time.perf_counter()
            st = tokenize_corpus(args.corpus, work / "tokens")
            fig["tok_tokens_per_s_replearn"] = st.tokens / (time.perf_counter() - t)
        else:
            fig.update(bench_tokenize(args.corpus, work, args.repeats))
        if {"word2vec_c", "fasttext"} & set(trainers):
            peer["text"] = work / "corpus.txt"
            peer["tokens"] = fig["corpus_tokens"] = write_text(work / "tokens", peer["text"])
        runs: dict[tuple[str, int], list[dict]] = {(w, t): [] for t in threads for w in trainers}
        for rep in range(args.repeats):  # alternate, so a noisy neighbour hurts all alike
            order = trainers if rep % 2 == 0 else trainers[::-1]
            for t in threads:
                for which in order:
                    if which in UNSEEDED and t == 1 and rep > 0:
                        continue  # no seed option and one thread: every run gives the same vectors
                    r = run_child(which, work, args.epochs, t, peer, seed=1 + rep)
                    r.update(evaluate(work, which))  # every run's vectors are scored: quality varies run to run too
                    runs[(which, t)].append(r)
        for (which, t), rs in runs.items():
            fig.update({f"{k}_{which}_t{t}": v for k, v in summarise(rs).items()})
            if which == "word2vec_c":
                fig[f"spawn_rss_mb_word2vec_c_t{t}"] = max(r["spawn_rss_mb"] for r in rs)
        fig["repeats"] = args.repeats
    comparisons(fig, threads)
    print_table(fig, trainers, threads)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(fig, indent=2))


def print_table(f: dict, trainers: list[str], threads: list[int]) -> None:
    cols = ["words/s", "min-max", "peak RSS MB", "analogy sem", "analogy syn", "analogy total", "sd", "WS-353",
            "SimLex-999", "vocab"]
    widths = [11, 17, 12, 12, 12, 14, 7, 8, 11, 8]
    for t in threads:
        sfx = f"_t{t}"
        print(f"\n{t} thread{'s' if t > 1 else ''} (speed: median of {f['repeats']}; quality: mean of {f['repeats']})")
        print(f"{'':14}" + "".join(f"{c:>{w}}" for c, w in zip(cols, widths)))
        for who in trainers:
            g = lambda k: f[f"{k}_{who}{sfx}"]  # noqa: E731
            cells = [f"{g('words_per_s'):,.0f}",
                     f"{g('words_per_s_min') / 1e3:,.0f}k-{g('words_per_s_max') / 1e3:,.0f}k",
                     f"{g('peak_rss_mb'):,.0f}", f"{g('analogy_semantic'):.4f}", f"{g('analogy_syntactic'):.4f}",
                     f"{g('analogy_total'):.4f}", f"{g('analogy_total_sd'):.4f}", f"{g('wordsim353'):.3f}",
                     f"{g('simlex999'):.3f}", f"{g('vocab'):,}"]
            name = LABELS[who] + ("*" if who in ("word2vec_c", "fasttext") else "")
            print(f"{name:14}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
        for r in KERNELS:
            if f"words_per_s_{r}{sfx}" not in f:
                continue
            speed = [f"{f[f'words_per_s_ratio_{r}_vs_{p}{sfx}']:.2f}x {LABELS[p]}" for p in PEERS
                     if f"words_per_s_ratio_{r}_vs_{p}{sfx}" in f]
            analogy = [f"{f[f'analogy_total_diff_points_{r}_vs_{p}{sfx}']:+.2f} vs {LABELS[p]}"
                       for p in ("gensim", "word2vec_c") if f"analogy_total_diff_points_{r}_vs_{p}{sfx}" in f]
            if f"analogy_total_diff_points_{r}_vs_best{sfx}" in f:
                analogy.append(f"{f[f'analogy_total_diff_points_{r}_vs_best{sfx}']:+.2f} vs the best "
                               f"({LABELS[f[f'analogy_total_best_peer{sfx}']]})")
            parts = ([f"words/s {', '.join(speed)}"] if speed else []) + (
                [f"analogy points {', '.join(analogy)}"] if analogy else [])
            if f"peak_rss_ratio_{r}_vs_gensim{sfx}" in f:
                parts += [f"WS-353 {f[f'wordsim353_diff_{r}_vs_gensim{sfx}']:+.3f} and SimLex "
                          f"{f[f'simlex999_diff_{r}_vs_gensim{sfx}']:+.3f} vs gensim",
                          f"peak RSS {f[f'peak_rss_ratio_{r}_vs_gensim{sfx}']:.2f}x gensim"]
            if parts:
                print(f"{LABELS[r]}: " + "; ".join(parts))
        for r in KERNELS:
            lines = targets(f, r, sfx)
            if lines:
                print(f"issue 16 targets, {LABELS[r]}, {t} thread{'s' if t > 1 else ''}: " + "; ".join(lines))
        for who in trainers:
            print(f"king -> {LABELS[who]}: {f[f'king_neighbours_{who}{sfx}']}")
    notes = {"word2vec_c": "* word2vec.c: whole process, vocabulary build included",
             "fasttext": "* fastText: train_unsupervised, vocabulary build included"}
    if any(k in trainers for k in notes):
        print("\n" + "\n".join(v for k, v in notes.items() if k in trainers)
              + "\n  gensim, replearn: training only (vocabulary built before the clock)")
    if "tok_speed_ratio_vs_simple_preprocess" in f:
        print("\ntokenization, tokens/s: " + ", ".join(
            f"{n} {f[f'tok_tokens_per_s_{n}']:,.0f}" for n in ("replearn", "simple_preprocess", "re_findall", "hf_tokenizers")
            if f"tok_tokens_per_s_{n}" in f) + f"; replearn / simple_preprocess = {f['tok_speed_ratio_vs_simple_preprocess']:.1f}x")


def targets(f: dict, r: str, sfx: str) -> list[str]:
    """Issue 16's PASS/FAIL lines for replearn row ``r`` at one thread count (those its peers allow)."""
    verdict = {True: "PASS", False: "FAIL"}
    out = []
    if f"target_speed_{r}{sfx}" in f:
        out.append(f"words/s {f[f'words_per_s_ratio_{r}_vs_gensim{sfx}']:.2f}x gensim >= {SPEED_TARGET}x: "
                   f"{verdict[f[f'target_speed_{r}{sfx}']]}")
    if f"target_analogy_{r}{sfx}" in f:
        best = f[f"analogy_total_best_peer{sfx}"]
        out.append(f"analogy total {f[f'analogy_total_{r}{sfx}']:.4f} vs the best peer, {LABELS[best]} "
                   f"{f[f'analogy_total_{best}{sfx}']:.4f}: {f[f'analogy_total_diff_points_{r}_vs_best{sfx}']:+.2f} "
                   f"points >= -{ANALOGY_SLACK_POINTS}: {verdict[f[f'target_analogy_{r}{sfx}']]}")
    for key, name in (("wordsim353", "WS-353"), ("simlex999", "SimLex")):
        if f"target_{key}_{r}{sfx}" in f:
            out.append(f"{name} {f[f'{key}_{r}{sfx}']:.3f} >= gensim {f[f'{key}_gensim{sfx}']:.3f} - "
                       f"{SIMILARITY_SLACK}: {verdict[f[f'target_{key}_{r}{sfx}']]}")
    if f"target_memory_{r}{sfx}" in f:
        out.append(f"peak RSS {f[f'peak_rss_mb_{r}{sfx}']:,.0f} <= gensim {f[f'peak_rss_mb_gensim{sfx}']:,.0f} MB: "
                   f"{verdict[f[f'target_memory_{r}{sfx}']]}")
    return out


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
