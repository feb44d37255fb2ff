"""Stage cache: each family's flow run twice with the same inputs, in a fresh data home.

The second run reuses every completed stage (Prefect cache keyed on the inputs'
content and the task source, results persisted) and only starts / ends its
MLflow run, looks up the cache and registers a model version. Prints, per
family, both wall times and their ratio (the issue's bar: second <= 10 % of
first). word2vec and multisense train on the embedded gensim corpus (0.5 M words), metric
and CLIP on scikit-learn's 8x8 digits; each family's defaults unless
``--epochs`` / ``--dim`` are given.

    python bench/stage_cache.py [--family all|word2vec|multisense|metric|clip ...] [--epochs N] [--dim D]
                                [--json PATH]

``--json`` writes one flat object: ``<family>.first_s``, ``<family>.cached_s``,
``<family>.ratio``, ``<family>.same_outputs``, ``<family>.epochs``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

FAMILIES = ("word2vec", "multisense", "metric", "clip")
#: epochs when --epochs is not given (None: the family's default); word2vec keeps this bench's earlier 5.
DEFAULT_EPOCHS = {"word2vec": 5}


def _flow_and_params(family: str, home: str, epochs: int | None, dim: int | None) -> tuple[Callable, object]:
    """The flow of ``family`` and its parameters in ``home`` (settings given override the defaults)."""
    epochs = epochs if epochs is not None else DEFAULT_EPOCHS.get(family)
    settings = {k: v for k, v in (("epochs", epochs), ("dim", dim)) if v is not None}
    if family == "word2vec":
        from replearn.flows.params import Word2VecParams
        from replearn.flows.word2vec import word2vec_flow
        return word2vec_flow, Word2VecParams(home=home, corpus="gensim", **settings)
    if family == "multisense":
        from replearn.flows.multisense import multisense_flow
        from replearn.flows.params import MultisenseParams
        return multisense_flow, MultisenseParams(home=home, corpus="gensim", **settings)
    if family == "metric":
        from replearn.flows.metric import metric_flow
        from replearn.flows.params import MetricParams
        return metric_flow, MetricParams(home=home, **settings)
    if family == "clip":
        from replearn.flows.clip import clip_flow
        from replearn.flows.params import ClipParams
        return clip_flow, ClipParams(home=home, **settings)
    raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")


def _warm_up(home: str) -> None:
    """A tiny word2vec run on another corpus (nothing of it is reusable): starts Prefect's temporary API and
    imports the flow machinery before any timing."""
    from replearn.flows.params import Word2VecParams
    from replearn.flows.word2vec import word2vec_flow

    warm = Path(home) / "warm-up.txt"
    warm.write_text("the cat sat on the mat and the dog sat on the log\n" * 200)
    word2vec_flow(Word2VecParams(corpus=str(warm), home=home, epochs=1, dim=8, min_count=1, model_name="warm-up"))


def measure(family: str, home: str, epochs: int | None, dim: int | None) -> dict:
    """Run ``family``'s flow twice in ``home``; ``{<family>.first_s, .cached_s, .ratio, .same_outputs, .epochs}``."""
    flow, params = _flow_and_params(family, home, epochs, dim)
    t0 = time.perf_counter()
    first = flow(params)
    t1 = time.perf_counter()
    second = flow(params)
    t2 = time.perf_counter()
    return {f"{family}.first_s": round(t1 - t0, 2), f"{family}.cached_s": round(t2 - t1, 2),
            f"{family}.ratio": round((t2 - t1) / (t1 - t0), 4),
            f"{family}.same_outputs": first["embeddings"] == second["embeddings"],
            f"{family}.epochs": getattr(params, "epochs", None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", nargs="+", default=["all"], choices=["all", *FAMILIES])
    ap.add_argument("--epochs", type=int, help="training epochs of every family (default: each family's own)")
    ap.add_argument("--dim", type=int, help="embedding dimension of every family (default: each family's own)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    families = FAMILIES if "all" in args.family else tuple(dict.fromkeys(args.family))
    out: dict = {}
    from replearn.infra.runners import process_local_prefect

    with tempfile.TemporaryDirectory() as home, process_local_prefect():  # as the CLI runs flows
        _warm_up(home)
        for family in families:
            r = measure(family, home, args.epochs, args.dim)
            out.update(r)
            print(f"{family}: first run {r[f'{family}.first_s']:.1f} s, cached rerun {r[f'{family}.cached_s']:.1f} s: "
                  f"{100 * r[f'{family}.ratio']:.1f} % (outputs reused: {r[f'{family}.same_outputs']})", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
