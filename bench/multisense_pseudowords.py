"""Benchmark: multi-sense skip-gram on the books corpus — pseudo-words, similarity, senses of ambiguous words.

Tokenizes ``books.txt.gz`` (lib/text/tokenize), builds the vocabulary
(min_count 5) and trains a reference single-sense skip-gram on the *unmerged*
corpus (same epochs). Pseudo-word pairs are chosen by the fixed rule of
lib/multisense/pseudowords.py (ranks 500..5000, content words, partner = the
nearest-in-count candidate whose reference-vector cosine is < 0.2); every
chosen pair is reported. The pairs are merged, 10 % of the sentences held out,
and on the merged training corpus (dim 100, window 5, negative 5, sample 1e-3)
are trained:

* multi-sense skip-gram (lib/multisense; 1 warm-up epoch, senses initialised by
  clustering each multi-sense word's contexts, then EM), and
* single-sense skip-gram (lib/word2vec), same epochs.

Printed: pseudo-word accuracy per pair (posterior over +-5 words, and the other
contexts: +-10, the whole held-out sentence, keep-probability weights) with the
majority baseline and the ceiling (the reference skip-gram's separate vectors of
a and b classifying the same occurrences with the same posterior); senses pruned;
WS-353 / SimLex-999 Spearman (multi-sense average and MaxSim vs skip-gram);
nearest words per sense of a few ambiguous words; words/s.

Scored as word-sense induction is scored (SemEval-2010 WSI's supervised mapping, lib/multisense/wsi_mapping.py):
each induced sense of a merged token is mapped to the word it most often stands for on 80 % of its held-out
occurrences, and the argmax of the posterior is scored on the other 20 %; beside it the one-to-one (2-sense)
figure, the majority baseline, the ceiling and the share of headroom gained, per pair and as a mean, for each
seed of ``--seeds`` (the multi-sense model is retrained per seed; the pairs and the ceiling stay). The reference
skip-gram that chooses the pairs and gives the ceiling is trained on 1 thread (deterministic) and cached in
``--cache`` (keyed on the corpus's content and its settings), so the pairs never move between runs.

    python bench/multisense_pseudowords.py --json bench/out/multisense.json [--epochs 4] [--pairs 8] \
        [--seeds 1,2,3] [--max-senses K] [--test-fraction 0.1] [--cache bench/out/cache] \
        [--estep-window 0] [--sense-init cluster] [--cluster-features input] [--init-noise X] \
        [--sense-count-base B] [--estep soft|sample] [--oracle]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "corpus" / "books.txt.gz"
AMBIGUOUS = ("bank", "spring", "bear", "fair", "light", "ring", "well")


def oracle_init(data, init_noise: float, width: int = 5):
    """``after_sense_init`` hook: each merged token's first two senses start from its *true* split.

    Diagnostic only. Sense z of merged token x = v_x + init_noise |v_x| d_z, d_z the
    unit mean of the centred, unit-length context features sum_y u(y) (+-width
    words) of the training occurrences where word z of the pair stood: the
    cluster init of lib/multisense/cluster.py with the true labels in place of
    the k-means ones. Whether EM keeps this split tells if the init is what
    limits the pseudo-word accuracy.
    """

    def hook(sv, start, syn0, syn1):
        occ = data.train
        for i, tok in enumerate(data.merged):
            x = data.vocab.index[tok]
            rows = np.flatnonzero(occ.pair == i)
            ctx = occ.window(width, rows)
            f = np.where((ctx >= 0)[..., None], syn1[np.maximum(ctx, 0)], 0.0).sum(axis=1)
            f -= f.mean(axis=0)
            f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
            d = np.stack([f[occ.label[rows] == z].mean(axis=0) for z in (0, 1)])
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            sv[start[x]:start[x] + 2] = syn0[x] + init_noise * np.linalg.norm(syn0[x]) * d

    return hook


#: Issue 18's targets for the supervised mapping (means over the pairs, then over the seeds).
TARGET_MAPPED, TARGET_HEADROOM = 0.80, 0.75


def report_mapped(mapped: dict, fig: dict) -> None:
    """Print and record the supervised-mapping figures of every seed: per pair the mean (and sd) over the seeds,
    then the means over the pairs with their spread over the seeds, and the issue's two verdicts."""
    seeds = list(mapped)
    pairs = mapped[seeds[0]]
    fields = ("mapped", "one_to_one", "majority", "ceiling", "headroom")
    print(f"\nsupervised sense mapping (SemEval-2010 WSI: map on 80 % of the held-out occurrences, score the other "
          f"20 %), posterior over +-5 words, seeds {seeds}:")
    print(f"{'pair':28s} {'n_map':>6s} {'n_eval':>6s} {'senses':>6s} {'mapped':>13s} {'1-to-1':>7s} {'major.':>7s} "
          f"{'ceiling':>7s} {'headroom':>8s}")
    for i, r in enumerate(pairs):
        xs = {f: np.array([getattr(mapped[s][i], f) for s in seeds]) for f in fields}
        senses = np.mean([mapped[s][i].senses_used for s in seeds])
        sd = f"+-{xs['mapped'].std(ddof=1):.3f}" if len(seeds) > 1 else ""
        print(f"{r.merged:28s} {r.n_map:6d} {r.n_eval:6d} {senses:6.1f} {xs['mapped'].mean():7.3f}{sd:>6s} "
              f"{xs['one_to_one'].mean():7.3f} {xs['majority'].mean():7.3f} {xs['ceiling'].mean():7.3f} "
              f"{np.nanmean(xs['headroom']):8.2f}")
        fig[f"map_{i}_pair"] = r.merged
        for f in fields:
            fig[f"map_{i}_{f}"] = float(np.nanmean(xs[f]))
        fig[f"map_{i}_mapped_sd"] = float(xs["mapped"].std(ddof=1)) if len(seeds) > 1 else 0.0
        fig[f"map_{i}_senses_used"] = float(senses)
    for f in fields:
        per_seed = np.array([np.nanmean([getattr(r, f) for r in mapped[s]]) for s in seeds])
        fig[f"map_mean_{f}"] = float(per_seed.mean())
        fig[f"map_mean_{f}_sd"] = float(per_seed.std(ddof=1)) if len(seeds) > 1 else 0.0
        fig[f"map_mean_{f}_seeds"] = " ".join(f"{x:.3f}" for x in per_seed)
    fig["map_seeds"] = ",".join(map(str, seeds))
    fig["target_mapped"] = "PASS" if fig["map_mean_mapped"] >= TARGET_MAPPED else "FAIL"
    fig["target_headroom"] = "PASS" if fig["map_mean_headroom"] >= TARGET_HEADROOM else "FAIL"
    print(f"mean over pairs: mapped {fig['map_mean_mapped']:.3f} (sd over seeds {fig['map_mean_mapped_sd']:.3f}; "
          f"{fig['map_mean_mapped_seeds']}), one-to-one {fig['map_mean_one_to_one']:.3f}, majority "
          f"{fig['map_mean_majority']:.3f}, ceiling {fig['map_mean_ceiling']:.3f}, headroom "
          f"{fig['map_mean_headroom']:.2f} (sd {fig['map_mean_headroom_sd']:.2f})")
    print(f"{fig['target_mapped']}  mapped accuracy >= {TARGET_MAPPED}: {fig['map_mean_mapped']:.3f}")
    print(f"{fig['target_headroom']}  share of headroom >= {TARGET_HEADROOM}: {fig['map_mean_headroom']:.2f}")


def reference_vectors(corpus_path: Path, corpus, vocab, wcfg, cache: Path):
    """The reference skip-gram on the unmerged corpus (chooses the pairs, gives the ceiling): ``wcfg`` on 1 thread
    (bit-for-bit reproducible), read from ``cache`` when a run with the same corpus content, vocabulary and settings
    made it. Returns an object with ``syn0`` and ``syn1``."""
    import dataclasses
    import hashlib
    from types import SimpleNamespace

    from replearn.lib.store.atomic import atomic_write_npz, read_npz
    from replearn.lib.store.embeddings_table import content_hash
    from replearn.lib.text.vocab import keep_probability, noise_distribution
    from replearn.lib.word2vec.trainer import train_sgns

    one = dataclasses.replace(wcfg, threads=1)
    key = hashlib.sha256(json.dumps([content_hash(corpus_path), len(vocab), one.to_dict()], sort_keys=True)
                         .encode()).hexdigest()[:16]
    path = cache / f"reference-{key}.npz"
    if path.exists():
        print(f"reference skip-gram: cached {path}")
        return SimpleNamespace(**read_npz(path))
    t0 = time.perf_counter()
    ref = train_sgns(corpus, vocab.counts, one, keep_prob=keep_probability(vocab.counts, 1e-3),
                     noise_probs=noise_distribution(vocab.counts, 0.75))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_npz(path, syn0=ref.syn0, syn1=ref.syn1)
    print(f"reference skip-gram: trained on 1 thread in {time.perf_counter() - t0:.0f} s, cached {path}")
    return SimpleNamespace(syn0=ref.syn0, syn1=ref.syn1)


def seed_figures(model, kv, ms_result, sg_result) -> dict:
    """WS-353 and SimLex-999 (multi-sense average and MaxSim, skip-gram of the same seed) and words/s of one seed's
    models: ``{ws353,simlex}_{avg,maxsim,sg}``, ``ms_wps``, ``sg_wps``."""
    from replearn.lib.eval.similarity import evaluate_word_pairs, simlex999_path, wordsim353_path
    from replearn.lib.multisense.similarity import evaluate_average, evaluate_maxsim

    out = {"ms_wps": ms_result.words_per_second, "sg_wps": sg_result.words_per_second}
    for name, path in (("ws353", wordsim353_path()), ("simlex", simlex999_path())):
        out.update({f"{name}_avg": evaluate_average(model, path).spearman,
                    f"{name}_maxsim": evaluate_maxsim(model, path).spearman,
                    f"{name}_sg": evaluate_word_pairs(kv, path).spearman})
    return out


def report_seeds(per_seed: dict[int, dict], fig: dict) -> None:
    """Per seed and as mean +- sd: the SimLex-999 gaps to skip-gram and the words/s ratio, against the targets."""
    seeds = sorted(per_seed)
    gap_avg = np.array([per_seed[s]["simlex_avg"] - per_seed[s]["simlex_sg"] for s in seeds])
    gap_max = np.array([per_seed[s]["simlex_maxsim"] - per_seed[s]["simlex_sg"] for s in seeds])
    ratio = np.array([per_seed[s]["ms_wps"] / per_seed[s]["sg_wps"] for s in seeds])
    for s in seeds:
        for k, v in per_seed[s].items():
            fig[f"seed{s}_{k}"] = v
    fig.update({"simlex_gap_avg_mean": float(gap_avg.mean()), "simlex_gap_avg_sd": float(gap_avg.std()),
                "simlex_gap_maxsim_mean": float(gap_max.mean()), "simlex_gap_maxsim_sd": float(gap_max.std()),
                "speed_ratio_median": float(np.median(ratio))})
    print(f"\nper seed {seeds}: SimLex-999 average - skip-gram " + " ".join(f"{g:+.4f}" for g in gap_avg)
          + f" (mean {gap_avg.mean():+.4f}, sd {gap_avg.std():.4f}); MaxSim - skip-gram "
          + " ".join(f"{g:+.4f}" for g in gap_max) + f" (mean {gap_max.mean():+.4f})")
    print("words/s multi-sense / skip-gram: " + " ".join(f"{r:.2f}x" for r in ratio) + f" (median {np.median(ratio):.2f}x)")
    for name, ok in (("SimLex-999 average within 0.02 of skip-gram", gap_avg.mean() >= -0.02),
                     ("SimLex-999 MaxSim within 0.02 of skip-gram", gap_max.mean() >= -0.02),
                     ("words/s >= 0.5x skip-gram", np.median(ratio) >= 0.5)):
        print(f"{'PASS' if ok else 'FAIL'}  {name}")


def main() -> None:
    from replearn.lib.multisense.config import MultiSenseConfig
    from replearn.lib.multisense.pseudowords import (build_pseudoword_corpus, ceiling_accuracy, ceiling_predictions,
                                                     choose_pairs, evaluate_pseudowords, pair_cosine)
    from replearn.lib.multisense.wsi_mapping import evaluate_mapped
    from replearn.lib.multisense.trainer import train_multisense
    from replearn.lib.text.tokenize import tokenize_corpus
    from replearn.lib.text.vocab import build_vocabulary, count_tokens, keep_probability, noise_distribution
    from replearn.lib.vectors import KeyedVectors
    from replearn.lib.word2vec.config import Word2VecConfig
    from replearn.lib.word2vec.corpus import encode_corpus
    from replearn.lib.word2vec.trainer import train_sgns

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--epochs", type=int, default=4, help="multi-sense epochs (the first is the skip-gram warm-up)")
    ap.add_argument("--sg-epochs", type=int, default=None, help="single-sense skip-gram epochs (default: --epochs)")
    ap.add_argument("--estep-window", type=int, default=0, help="MultiSenseConfig.estep_window")
    ap.add_argument("--sense-init", default="cluster", choices=("cluster", "noise"), help="MultiSenseConfig.sense_init")
    ap.add_argument("--cluster-features", default="input", choices=("input", "context"),
                    help="MultiSenseConfig.cluster_features")
    ap.add_argument("--sense-count-base", type=float, default=None, help="MultiSenseConfig.sense_count_base")
    ap.add_argument("--estep", default="soft", choices=("soft", "sample"), help="MultiSenseConfig.estep")
    ap.add_argument("--init-noise", type=float, default=None,
                    help="MultiSenseConfig.init_noise (default: the config's default)")
    ap.add_argument("--max-cosine", type=float, default=0.2, help="pair rule: reference-vector cosine below this")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--oracle", action="store_true",
                    help="also train a model whose merged tokens start from their true split (diagnostic)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--test-fraction", type=float, default=0.1,
                    help="share of the sentences held out (their occurrences are split 80/20 for the mapping)")
    ap.add_argument("--seeds", default="1", help="comma-separated seeds of the multi-sense model (e.g. 1,2,3)")
    ap.add_argument("--max-senses", type=int, default=None, help="MultiSenseConfig.max_senses (default: the config's)")
    ap.add_argument("--cache", type=Path, default=REPO / "bench" / "out" / "cache",
                    help="where the reference skip-gram is kept between runs")
    ap.add_argument("--prior", default=None, choices=("dirichlet", "stick_breaking"), help="MultiSenseConfig.prior")
    ap.add_argument("--dp-alpha", type=float, default=None, help="MultiSenseConfig.dp_alpha (stick-breaking)")
    ap.add_argument("--kernel", default=None, choices=("pair", "shared"), help="MultiSenseConfig.kernel")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.sg_epochs is None:
        args.sg_epochs = args.epochs
    if not args.corpus.exists():
        sys.exit(f"corpus {args.corpus} not found (expected in ../shared/data/corpus/)")
    fig: dict = {"corpus": str(args.corpus), "epochs": args.epochs, "sg_epochs": args.sg_epochs}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tokenize_corpus(args.corpus, work / "tokens")
        vocab = build_vocabulary(count_tokens(work / "tokens"), min_count=5)
        corpus = encode_corpus(sorted((work / "tokens").glob("*.parquet")), vocab.words, work / "encoded", 1000)
        wcfg = Word2VecConfig(dim=100, window=5, negative=5, epochs=args.sg_epochs, threads=args.threads)
        ref_noise = noise_distribution(vocab.counts, 0.75)
        ref = reference_vectors(args.corpus, corpus, vocab, wcfg, args.cache)
        pairs = choose_pairs(vocab.words, n_pairs=args.pairs, vectors=ref.syn0, max_cosine=args.max_cosine)
        data = build_pseudoword_corpus(corpus, vocab, pairs, work / "merged", test_fraction=args.test_fraction)
        v2 = data.vocab
        noise = noise_distribution(v2.counts, 0.75)
        keep = keep_probability(v2.counts, 1e-3)
        fig["pairs_rule"] = (f"choose_pairs: ranks 500..5000, alphabetic, >= 5 letters, not a stop word, not -ly/-ed/"
                             f"-ing; partner = first of the next 10 candidates with cosine < {args.max_cosine} in "
                             f"skip-gram on the unmerged corpus; first n")
        fig["pairs_cosine"] = {f"{a}_{b}": round(pair_cosine(ref.syn0, vocab.index[a], vocab.index[b]), 3)
                               for a, b in pairs}
        fig.update({"vocab": len(v2), "train_tokens": data.corpus.n_tokens, "test_sentences": data.test_sentences})

        overrides = {} if args.init_noise is None else {"init_noise": args.init_noise}
        if args.sense_count_base is not None:
            overrides["sense_count_base"] = args.sense_count_base
        if args.max_senses is not None:
            overrides["max_senses"] = args.max_senses
        if args.prior is not None:
            overrides["prior"] = args.prior
        if args.dp_alpha is not None:
            overrides["dp_alpha"] = args.dp_alpha
        if args.kernel is not None:
            overrides["kernel"] = args.kernel
        seeds = [int(s) for s in args.seeds.split(",")]
        overrides["seed"] = seeds[0]
        cfg = MultiSenseConfig(dim=100, window=5, negative=5, epochs=args.epochs, threads=args.threads,
                               estep_window=args.estep_window, sense_init=args.sense_init,
                               cluster_features=args.cluster_features, estep=args.estep, **overrides)
        res = train_multisense(data.corpus, v2.counts, cfg, keep_prob=keep, noise_probs=noise)
        model = res.to_vectors(v2.words, v2.counts, noise, cfg)
        fig.update({"ms_seconds": res.seconds, "ms_words_per_s": res.words_per_second, "ms_sense_rows": len(res.sv),
                    "ms_senses_pruned": len(res.pruned), "ms_config": json.dumps(cfg.to_dict())})

        if args.oracle:
            ores = train_multisense(data.corpus, v2.counts, cfg, keep_prob=keep, noise_probs=noise,
                                    after_sense_init=oracle_init(data, cfg.init_noise))
            oracle = evaluate_pseudowords(ores.to_vectors(v2.words, v2.counts, noise, cfg), data)
            fig["pw_mean_accuracy_oracle_init"] = float(np.mean([r.accuracy for r in oracle]))
            print("oracle init (true split at the start of EM), +-5 words: mean "
                  f"{fig['pw_mean_accuracy_oracle_init']:.3f}; per pair " + " ".join(f"{r.accuracy:.2f}" for r in oracle))
        sg = train_sgns(data.corpus, v2.counts, wcfg, keep_prob=keep, noise_probs=noise)
        kv = KeyedVectors(v2.words, sg.syn0)
        fig.update({"sg_seconds": sg.seconds, "sg_words_per_s": sg.words_per_second})
        variants = {"w5": dict(context="window", width=5), "w5_keep": dict(context="window", width=5, weights=keep),
                    "w10": dict(context="window", width=10), "w10_keep": dict(context="window", width=10, weights=keep),
                    "sent": dict(context="sentence"), "sent_keep": dict(context="sentence", weights=keep)}
        ceilings = {k: ceiling_accuracy(ref.syn0, ref.syn1, vocab, ref_noise, 5, data, **v) for k, v in variants.items()}
        allres = {k: evaluate_pseudowords(model, data, **v) for k, v in variants.items()}
        ceiling_pred = ceiling_predictions(ref.syn0, ref.syn1, vocab, ref_noise, 5, data)
        mapped = {seeds[0]: evaluate_mapped(model, data, ceiling_pred)}
        per_seed = {seeds[0]: seed_figures(model, kv, res, sg)}
        for s in seeds[1:]:
            scfg = dataclasses.replace(cfg, seed=s)
            rs = train_multisense(data.corpus, v2.counts, scfg, keep_prob=keep, noise_probs=noise)
            smodel = rs.to_vectors(v2.words, v2.counts, noise, scfg)
            mapped[s] = evaluate_mapped(smodel, data, ceiling_pred)
            ssg = train_sgns(data.corpus, v2.counts, dataclasses.replace(wcfg, seed=s), keep_prob=keep,
                             noise_probs=noise)
            per_seed[s] = seed_figures(smodel, KeyedVectors(v2.words, ssg.syn0), rs, ssg)
            print(f"seed {s}: trained in {rs.seconds:.0f} s", flush=True)
    report_mapped(mapped, fig)
    report_seeds(per_seed, fig)
    print("\nmean accuracy by posterior context (model / ceiling):")
    for k in variants:
        fig[f"pw_mean_accuracy_{k}"] = float(np.mean([r.accuracy for r in allres[k]]))
        fig[f"pw_mean_ceiling_{k}"] = float(np.mean(ceilings[k]))
        fig[f"pw_pairs_ge_85_{k}"] = int(sum(r.accuracy >= 0.85 for r in allres[k]))
        print(f"  {k:10s} {fig[f'pw_mean_accuracy_{k}']:.3f} / {fig[f'pw_mean_ceiling_{k}']:.3f}  "
              f"({fig[f'pw_pairs_ge_85_{k}']} pairs >= 0.85)  per pair: "
              + " ".join(f"{r.accuracy:.2f}" for r in allres[k]))
    results, ceiling = allres["w5"], ceilings["w5"]
    print(f"\npseudo-words, posterior over +-5 words ({len(results)} pairs; {fig['pairs_rule']}):")
    print(f"{'pair':28s} {'K':>2s} {'priors':24s} {'n_test':>6s} {'acc':>6s} {'base':>6s} {'ceiling':>7s}")
    for i, r in enumerate(results):
        c = ceiling[i] if ceiling is not None else float("nan")
        print(f"{r.merged:28s} {r.n_senses:2d} {' '.join(f'{p:.2f}' for p in r.prior):24s} {r.n_test:6d} "
              f"{r.accuracy:6.3f} {r.baseline:6.3f} {c:7.3f}")
        fig[f"pw_{i}_n_test"] = r.n_test
        fig[f"pw_{i}_ceiling"] = c
        fig[f"pw_{i}_pair"] = r.merged
        fig[f"pw_{i}_accuracy"] = r.accuracy
        fig[f"pw_{i}_baseline"] = r.baseline
        fig[f"pw_{i}_nontrivial_senses"] = r.nontrivial_senses
        fig[f"pw_{i}_priors"] = " ".join(f"{p:.3f}" for p in r.prior)
    fig["pw_mean_accuracy"] = float(np.mean([r.accuracy for r in results]))
    fig["pw_mean_baseline"] = float(np.mean([r.baseline for r in results]))
    fig["pw_pairs_ge_85"] = int(sum(r.accuracy >= 0.85 for r in results))
    if ceiling is not None:
        fig["pw_mean_ceiling"] = float(np.mean(ceiling))
        print(f"ceiling (separate skip-gram vectors of a and b, same posterior): mean {fig['pw_mean_ceiling']:.3f}")
    print(f"mean accuracy {fig['pw_mean_accuracy']:.3f} (majority baseline {fig['pw_mean_baseline']:.3f}); "
          f"{fig['pw_pairs_ge_85']}/{len(results)} pairs >= 0.85")
    print(f"senses pruned: {len(res.pruned)} (first 10: "
          f"{[(v2.words[p.word], p.sense, round(p.prior, 4)) for p in res.pruned[:10]]})")

    first = per_seed[seeds[0]]  # the first seed's models, scored once in seed_figures
    for name in ("ws353", "simlex"):
        fig[f"{name}_sg"], fig[f"{name}_ms_avg"] = first[f"{name}_sg"], first[f"{name}_avg"]
        fig[f"{name}_ms_maxsim"] = first[f"{name}_maxsim"]
        print(f"{name}: skip-gram {fig[f'{name}_sg']:.4f}  multisense avg {fig[f'{name}_ms_avg']:.4f}  "
              f"maxSim {fig[f'{name}_ms_maxsim']:.4f}  (avg - sg = {fig[f'{name}_ms_avg'] - fig[f'{name}_sg']:+.4f})")
    print(f"words/s: multisense {fig['ms_words_per_s']:,.0f} ({fig['ms_seconds']:.0f} s), "
          f"skip-gram {fig['sg_words_per_s']:,.0f} ({fig['sg_seconds']:.0f} s)")

    print("\nnearest words per sense (against prior-weighted average word vectors):")
    for w in AMBIGUOUS:
        if w not in model:
            continue
        prior = model.sense_prior(w)
        for z, nb in enumerate(model.sense_neighbours(w, topn=8)):
            line = ", ".join(x for x, _ in nb)
            print(f"  {w}[{z}] p={prior[z]:.2f}: {line}")
            fig[f"nb_{w}_{z}"] = f"p={prior[z]:.2f}: {line}"
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(fig, indent=1))


if __name__ == "__main__":
    main()
