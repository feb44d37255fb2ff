"""Warm start (issue 17): a scheduled retraining that continues its champion on the new corpus files only, against
retraining from scratch on the whole corpus; and a scheduled run that finds nothing new.

The books corpus (``../shared/data/corpus/books.txt.gz``; ``--fraction F`` keeps its first F of the lines) is
split by lines into half A (the first half, ``a.txt``) and half B (``b.txt``), plain text files. Every run is
the word2vec flow (``replearn.flows.word2vec.word2vec_flow``) in this process, under the Prefect settings the
CLI uses (``process_local_prefect``), with the flow's defaults (dim 100, window 5, 5 epochs, 2 threads) unless
an option says otherwise. Per repeat (seed 1..R), two fresh data homes, each first warmed up by a tiny run
of another model name on another corpus (the flow machinery imported, the MLflow store created):

- warm home, a corpus folder holding only ``a.txt``: run 1 = ``init_from=replearn-word2vec@champion``
  with nothing registered, so it trains from scratch, as a schedule's first run would; then ``b.txt`` is copied
  in; run 2 = the same ``init_from``: the warm start, trained on B only (``--warm-epochs``, ``--warm-alpha``);
  run 4 = the same again with no new file ("nothing new").
- scratch home, a folder holding ``a.txt`` and ``b.txt``: run 3 = from scratch (no ``init_from``).

The homes take turns going first (warm home first on odd seeds). Compared: run 2 (warm) against run 3 (scratch
on A+B): flow wall time (the whole ``word2vec_flow`` call: what a scheduled run costs), training time (the MLflow
metric ``train.seconds`` of the run), analogy total and score (questions-words.txt, 3CosAdd), WS-353 and
SimLex-999 Spearman, vocabulary size. Run 4: wall time and the count of registered versions of
``replearn-word2vec`` before and after. Targets (PASS/FAIL printed and written):

- ``target_analogy``: warm analogy_total >= scratch analogy_total - 0.01 (1 point; means over the repeats);
- ``target_time``: warm flow wall time <= 0.60 x scratch flow wall time (medians over the repeats; the
  train-only ratio ``ratio_train`` is printed and written beside it, not judged);
- ``target_nothing_new``: every run 4 took <= 10 s, added no version and returned ``model.new_version`` False.
  If run 2 was not promoted champion, ``@champion`` still names version 1, so run 4 finds B new again, but every
  stage is reused and nothing is registered; ``nothing_new.case`` says which happened.

A diagnostic, ``--replay-epochs N``: run 5 continues version 1 (the half-A model) on all of A and B for N epochs
at the from-scratch learning rate (A's file changed by one byte so that it counts as new): how far a warm start
gets when it may read everything again (``replay.*`` keys).

    python bench/warm_start.py --json bench/out/warm_start.json [--corpus PATH] [--fraction 1.0] [--epochs 5]
        [--warm-epochs N] [--warm-alpha A] [--threads 2] [--repeats 1] [--replay-epochs N]

A quick check that it runs: ``--fraction 0.05 --epochs 1`` (under a minute on 2 cores); at that size every run
is mostly fixed costs (about 2-3 s a run), so its time ratio says nothing about the target.

``--json`` writes one flat object. Per run ``R`` in ``scratch_a`` (run 1), ``warm`` (run 2), ``scratch`` (run 3):
``R.flow_s``, ``R.train_s`` (medians; with ``--repeats`` > 1 also ``_min`` and ``_max``), ``R.analogy_total``,
``R.analogy_score``, ``R.wordsim353``, ``R.simlex999`` (means; ``_sd`` with repeats > 1), ``R.vocab_size``,
``R.tokens``, ``R.words_per_s``, ``R.new_version``, ``R.champion`` (last repeat); ``warm.new_files`` (names of the
files run 2 trained on, last repeat), ``warm.init_from``. Ratios: ``ratio_flow``, ``ratio_train`` (warm /
scratch), ``analogy_delta_points`` (100 x (warm - scratch)), ``wordsim353_delta``, ``simlex999_delta``.
Nothing new: ``nothing_new.flow_s`` (median; ``_max``), ``nothing_new.versions_before``,
``nothing_new.versions_after`` (last repeat), ``nothing_new.versions_added`` (sum over the repeats),
``nothing_new.new_version`` (any repeat True), ``nothing_new.new_files`` (count, last repeat),
``nothing_new.case`` (``"no new file"`` or ``"B new again, all cached"``), ``nothing_new.reason``. Targets:
``target_analogy``, ``target_time``, ``target_nothing_new_time``, ``target_nothing_new_registry``,
``target_nothing_new``, ``target_all``. Settings: ``corpus``, ``fraction``, ``lines_a``, ``lines_b``, ``epochs``,
``warm_epochs``, ``alpha``, ``warm_alpha``, ``threads``, ``repeats``, ``loadavg_start``, ``loadavg_end``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpus" / "books.txt.gz"
MODEL = "replearn-word2vec"
INIT_FROM = f"{MODEL}@champion"
MAX_ANALOGY_DROP = 0.01  # analogy_total, as a fraction: 1 point
MAX_TIME_RATIO = 0.60
MAX_NOTHING_NEW_S = 10.0
RUNS = ("scratch_a", "warm", "scratch")
LABELS = {"scratch_a": "run 1: scratch, A", "warm": "run 2: warm, +B", "scratch": "run 3: scratch, A+B"}


def split_corpus(corpus: Path, fraction: float, out: Path) -> tuple[int, int]:
    """Write the first ``fraction`` of the lines of ``corpus`` as ``out/a.txt`` (first half) and ``out/b.txt``
    (second half), bytes unchanged; ``(lines of A, lines of B)``."""
    with gzip.open(corpus, "rb") if corpus.suffix == ".gz" else open(corpus, "rb") as f:
        lines = f.readlines()
    lines = lines[:max(2, int(len(lines) * fraction))]
    half = len(lines) // 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "a.txt").write_bytes(b"".join(lines[:half]))
    (out / "b.txt").write_bytes(b"".join(lines[half:]))
    return half, len(lines) - half


def _warm_up(home: Path) -> None:
    """A tiny word2vec run of another model on another corpus (nothing of it is reusable): imports the flow
    machinery, starts the Prefect API and creates this home's MLflow store before any timing."""
    from replearn.flows.params import Word2VecParams
    from replearn.flows.word2vec import word2vec_flow

    home.mkdir(parents=True, exist_ok=True)
    warm = home / "warm-up.txt"
    warm.write_text("the cat sat on the mat and the dog sat on the log\n" * 200)
    word2vec_flow(Word2VecParams(corpus=str(warm), home=str(home), epochs=1, dim=8, min_count=1,
                                 model_name="warm-up"))


def _versions(uri: str) -> int:
    """How many versions of :data:`MODEL` the registry at ``uri`` holds."""
    from replearn.infra.tracking import client

    return len(client(uri).search_model_versions(f"name = '{MODEL}'"))


def _run(corpus: Path, home: Path, seed: int, settings: dict, init_from: str | None) -> dict:
    """One flow run; the flat figures of its summary, its wall time and its MLflow ``train.seconds``."""
    from replearn.flows.params import Word2VecParams
    from replearn.flows.word2vec import word2vec_flow
    from replearn.infra.tracking import client

    params = Word2VecParams(corpus=str(corpus), home=str(home), seed=seed, init_from=init_from, **settings)
    t0 = time.perf_counter()
    s = word2vec_flow(params)
    flow_s = time.perf_counter() - t0
    m = s.get("metrics") or {}
    run_metrics = client(s["tracking_uri"]).get_run(s["mlflow_run_id"]).data.metrics
    model = s.get("model") or {}
    new_files = s.get("new_files")
    return {"flow_s": flow_s, "train_s": run_metrics.get("train.seconds"),
            "analogy_total": m.get("analogy_total"), "analogy_score": m.get("analogy_score"),
            "wordsim353": m.get("wordsim353_spearman"), "simlex999": m.get("simlex999_spearman"),
            "vocab_size": s.get("vocab_size"), "tokens": s.get("tokens"), "words_per_s": s.get("words_per_second"),
            "new_version": model.get("new_version", True), "champion": model.get("champion"),
            "version": model.get("version"), "reason": model.get("reason"),
            "new_files": None if new_files is None else [Path(p).name for p in new_files],
            "init_from": s.get("init_from"), "tracking_uri": s["tracking_uri"]}


def _replay(split: Path, work: Path, home: Path, seed: int, cold: dict, epochs: int) -> dict:
    """Run 5, a diagnostic: continue version 1 (the half-A model) on all of A and B for ``epochs`` epochs at the
    from-scratch learning rate, A's file changed by one byte so that it counts as new. How far a warm start gets
    when it may read everything again, against run 3 (from scratch on A + B, ``cold["epochs"]`` epochs)."""
    folder = work / "corpus-replay"
    folder.mkdir()
    (folder / "a.txt").write_bytes((split / "a.txt").read_bytes() + b"\n")
    shutil.copy(split / "b.txt", folder / "b.txt")
    settings = {**cold, "epochs": epochs, "warm_alpha": cold.get("alpha", 0.025)}
    out = _run(folder, home, seed, settings, f"{MODEL}@1")
    print(f"  seed {seed} run 5 (diagnostic: v1 continued on A and B, {epochs} epochs): {out['flow_s']:.1f} s, "
          f"analogy total {out['analogy_total']:.4f}", flush=True)
    return out


def one_repeat(split: Path, work: Path, seed: int, cold: dict, warm: dict, replay_epochs: int = 0) -> dict:
    """Runs 1-4 of seed ``seed`` in two fresh homes under ``work``; ``{run name: figures}``, plus the registry
    counts around run 4; with ``replay_epochs``, run 5 (the diagnostic of :func:`_replay`)."""
    out: dict = {}

    def warm_home() -> None:
        home, folder = work / "home-warm", work / "corpus-warm"
        folder.mkdir(parents=True)
        shutil.copy(split / "a.txt", folder / "a.txt")
        _warm_up(home)
        out["scratch_a"] = _run(folder, home, seed, cold, INIT_FROM)
        print(f"  seed {seed} run 1 (scratch, A): {out['scratch_a']['flow_s']:.1f} s", flush=True)
        shutil.copy(split / "b.txt", folder / "b.txt")  # new data lands
        out["warm"] = _run(folder, home, seed, warm, INIT_FROM)
        print(f"  seed {seed} run 2 (warm, +B): {out['warm']['flow_s']:.1f} s, trained on {out['warm']['new_files']}",
              flush=True)
        uri = out["warm"]["tracking_uri"]
        out["versions_before"] = _versions(uri)
        out["nothing_new"] = _run(folder, home, seed, warm, INIT_FROM)
        out["versions_after"] = _versions(uri)
        print(f"  seed {seed} run 4 (nothing new): {out['nothing_new']['flow_s']:.1f} s, versions "
              f"{out['versions_before']} -> {out['versions_after']}", flush=True)
        if replay_epochs:
            out["replay"] = _replay(split, work, home, seed, cold, replay_epochs)

    def scratch_home() -> None:
        home, folder = work / "home-scratch", work / "corpus-scratch"
        folder.mkdir(parents=True)
        for name in ("a.txt", "b.txt"):
            shutil.copy(split / name, folder / name)
        _warm_up(home)
        out["scratch"] = _run(folder, home, seed, cold, None)
        print(f"  seed {seed} run 3 (scratch, A+B): {out['scratch']['flow_s']:.1f} s", flush=True)

    for step in ((warm_home, scratch_home) if seed % 2 else (scratch_home, warm_home)):
        step()
    return out


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def summarise(repeats: list[dict]) -> dict:
    """The flat JSON figures (without the settings) of the repeats' runs."""
    out: dict = {}
    many = len(repeats) > 1
    for run in RUNS:
        rs = [r[run] for r in repeats]
        for k in ("flow_s", "train_s", "words_per_s"):
            xs = [_num(x[k]) for x in rs]
            out[f"{run}.{k}"] = statistics.median(xs)
            if many:
                out[f"{run}.{k}_min"], out[f"{run}.{k}_max"] = min(xs), max(xs)
        for k in ("analogy_total", "analogy_score", "wordsim353", "simlex999"):
            xs = [_num(x[k]) for x in rs]
            out[f"{run}.{k}"] = statistics.fmean(xs)
            if many:
                out[f"{run}.{k}_sd"] = statistics.stdev(xs)
        last = rs[-1]
        for k in ("vocab_size", "tokens", "new_version", "champion"):
            out[f"{run}.{k}"] = last[k]
    out["warm.new_files"] = repeats[-1]["warm"]["new_files"]
    out["warm.init_from"] = repeats[-1]["warm"]["init_from"]
    out["ratio_flow"] = out["warm.flow_s"] / out["scratch.flow_s"]
    out["ratio_train"] = out["warm.train_s"] / out["scratch.train_s"]
    out["analogy_delta_points"] = 100 * (out["warm.analogy_total"] - out["scratch.analogy_total"])
    out["wordsim353_delta"] = out["warm.wordsim353"] - out["scratch.wordsim353"]
    out["simlex999_delta"] = out["warm.simlex999"] - out["scratch.simlex999"]

    nn = [r["nothing_new"] for r in repeats]
    out["nothing_new.flow_s"] = statistics.median(x["flow_s"] for x in nn)
    out["nothing_new.flow_s_max"] = max(x["flow_s"] for x in nn)
    out["nothing_new.versions_before"] = repeats[-1]["versions_before"]
    out["nothing_new.versions_after"] = repeats[-1]["versions_after"]
    out["nothing_new.versions_added"] = sum(r["versions_after"] - r["versions_before"] for r in repeats)
    out["nothing_new.new_version"] = any(bool(x["new_version"]) for x in nn)
    last_files = nn[-1]["new_files"] or []
    out["nothing_new.new_files"] = len(last_files)
    out["nothing_new.case"] = "no new file" if not last_files else "B new again, all cached"
    out["nothing_new.reason"] = nn[-1]["reason"]

    out["target_analogy"] = out["warm.analogy_total"] >= out["scratch.analogy_total"] - MAX_ANALOGY_DROP
    out["target_time"] = out["ratio_flow"] <= MAX_TIME_RATIO
    out["target_nothing_new_time"] = out["nothing_new.flow_s_max"] <= MAX_NOTHING_NEW_S
    out["target_nothing_new_registry"] = (out["nothing_new.versions_added"] == 0
                                          and not out["nothing_new.new_version"])
    out["target_nothing_new"] = out["target_nothing_new_time"] and out["target_nothing_new_registry"]
    out["target_all"] = out["target_analogy"] and out["target_time"] and out["target_nothing_new"]
    return out


def _fmt(v, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and v != v) else format(v, spec)


def report(o: dict) -> None:
    """The table and the verdicts."""
    rows = [("flow wall s", "flow_s", ".1f"), ("train s (train.seconds)", "train_s", ".1f"),
            ("analogy total", "analogy_total", ".4f"), ("analogy score", "analogy_score", ".4f"),
            ("WS-353 Spearman", "wordsim353", ".4f"), ("SimLex-999 Spearman", "simlex999", ".4f"),
            ("vocabulary", "vocab_size", ","), ("tokens trained on", "tokens", ","),
            ("words/s", "words_per_s", ",.0f")]
    heads = [LABELS[r] for r in RUNS]
    w0, w = 24, 22
    print(f"\n{'':<{w0}}" + "".join(f"{h:>{w}}" for h in heads))
    for label, key, spec in rows:
        print(f"{label:<{w0}}" + "".join(f"{_fmt(o.get(f'{r}.{key}'), spec):>{w}}" for r in RUNS))
    print(f"\nrun 2 continued {o['warm.init_from']}, trained on {o['warm.new_files']}; "
          f"registered new version: {o['warm.new_version']}, champion: {o['warm.champion']}")
    print(f"warm / scratch(A+B): flow wall time {o['ratio_flow']:.3f}, training only {o['ratio_train']:.3f}; "
          f"analogy total {o['analogy_delta_points']:+.2f} points, WS-353 {o['wordsim353_delta']:+.4f}, "
          f"SimLex-999 {o['simlex999_delta']:+.4f}")
    print(f"run 4 (nothing new): {o['nothing_new.flow_s']:.2f} s, case: {o['nothing_new.case']}, versions of {MODEL} "
          f"{o['nothing_new.versions_before']} -> {o['nothing_new.versions_after']}, new_version "
          f"{o['nothing_new.new_version']} ({o['nothing_new.reason']})")

    def v(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print(f"\n{v(o['target_analogy'])}  analogy total: warm {o['warm.analogy_total']:.4f} >= scratch "
          f"{o['scratch.analogy_total']:.4f} - {MAX_ANALOGY_DROP} ({o['analogy_delta_points']:+.2f} points)")
    print(f"{v(o['target_time'])}  time, flow wall (the verdict's ratio): warm / scratch {o['ratio_flow']:.3f} <= "
          f"{MAX_TIME_RATIO} (training only: {o['ratio_train']:.3f}, not judged)")
    print(f"{v(o['target_nothing_new'])}  nothing new: {o['nothing_new.flow_s_max']:.2f} s <= "
          f"{MAX_NOTHING_NEW_S:.0f} s ({v(o['target_nothing_new_time'])}), no version added and new_version False "
          f"({v(o['target_nothing_new_registry'])})")
    print(f"{v(o['target_all'])}  all targets", flush=True)


def main() -> None:
    from replearn.flows.params import Word2VecParams

    defaults = Word2VecParams.model_fields
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--fraction", type=float, default=1.0, help="use only the first fraction of the corpus lines")
    ap.add_argument("--epochs", type=int, default=defaults["epochs"].default)
    ap.add_argument("--warm-epochs", type=int, help="epochs of the warm start (default: --epochs)")
    ap.add_argument("--warm-alpha", type=float, default=defaults["warm_alpha"].default,
                    help="initial learning rate of the warm start (the flow's warm_alpha; default: the flow's)")
    ap.add_argument("--threads", type=int, default=defaults["threads"].default)
    ap.add_argument("--replay-epochs", type=int, default=0,
                    help="also run the diagnostic run 5: version 1 continued on all of A and B for N epochs")
    ap.add_argument("--repeats", type=int, default=1, help="rounds, seeds 1..R")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.corpus.exists():
        raise SystemExit(f"no corpus at {args.corpus} (see ../shared/data/README.md)")
    if not 0 < args.fraction <= 1:
        raise SystemExit("--fraction must be in (0, 1]")
    warm_epochs = args.warm_epochs or args.epochs
    alpha = defaults["alpha"].default
    cold = {"epochs": args.epochs, "threads": args.threads}
    warm = {"epochs": warm_epochs, "threads": args.threads,
            "warm_alpha": args.warm_alpha}
    settings = {"corpus": str(args.corpus), "fraction": args.fraction, "epochs": args.epochs,
                "warm_epochs": warm_epochs, "alpha": alpha,
                "warm_alpha": args.warm_alpha,
                "threads": args.threads, "repeats": args.repeats,
                "loadavg_start": round(os.getloadavg()[0], 2)}
    from replearn.infra.runners import process_local_prefect

    repeats: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="warm-start-") as tmp, process_local_prefect():
        split = Path(tmp) / "split"
        settings["lines_a"], settings["lines_b"] = split_corpus(args.corpus, args.fraction, split)
        print(f"corpus {args.corpus.name}, fraction {args.fraction}: A {settings['lines_a']:,} lines, "
              f"B {settings['lines_b']:,} lines; epochs {args.epochs} (warm {warm_epochs}), alpha "
              f"{settings['warm_alpha']} for the warm start, {args.threads} threads", flush=True)
        for seed in range(1, args.repeats + 1):
            repeats.append(one_repeat(split, Path(tmp) / f"seed{seed}", seed, cold, warm, args.replay_epochs))
    settings["loadavg_end"] = round(os.getloadavg()[0], 2)
    out = {**settings, **summarise(repeats)}
    if args.replay_epochs:
        rs = [r["replay"] for r in repeats]
        out.update({"replay.epochs": args.replay_epochs,
                    "replay.flow_s": statistics.median(x["flow_s"] for x in rs),
                    "replay.train_s": statistics.median(_num(x["train_s"]) for x in rs),
                    "replay.analogy_total": statistics.fmean(_num(x["analogy_total"]) for x in rs)})
        out["replay.ratio_flow"] = out["replay.flow_s"] / out["scratch.flow_s"]
    report(out)
    if args.replay_epochs:
        print(f"diagnostic run 5 (v1 continued on A and B, {args.replay_epochs} epochs): analogy total "
              f"{out['replay.analogy_total']:.4f} in {out['replay.ratio_flow']:.2f} of the from-scratch time")
    print(f"load average (1 min): {settings['loadavg_start']} at the start, {settings['loadavg_end']} at the end")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
