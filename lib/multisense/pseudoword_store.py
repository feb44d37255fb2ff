"""Save and reload what :func:`~.pseudowords.build_pseudoword_corpus` made, so evaluation need not rebuild it.

Layout: ``<dir>/corpus/`` (the training corpus, an :class:`EncodedCorpus`),
``<dir>/vocab.parquet`` (its vocabulary) and ``<dir>/occurrences.npz``: the
pairs, the merged tokens, the held-out sentence count, the occurrence arrays
(pair, label, pos, start, end) of both splits and the held-out token store. The
training split's token store is the training corpus itself (``ids.int32``), so
it is not stored twice. The ``.npz`` is written to a temporary name and renamed.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from replearn.lib.errors import ReplearnInputError
from replearn.lib.multisense.pseudowords import Occurrences, PseudowordData
from replearn.lib.text.vocab import read_vocabulary, write_vocabulary
from replearn.lib.word2vec.corpus import IDS_FILE, EncodedCorpus

OCCURRENCES_FILE = "occurrences.npz"
VOCAB_FILE = "vocab.parquet"
_FIELDS = ("pair", "label", "pos", "start", "end")


def save_pseudoword_data(data: PseudowordData, out_dir: Path) -> Path:
    """Write ``data``'s vocabulary and occurrences beside its training corpus; returns the ``.npz`` path.

    ``data.corpus`` must already live in ``out_dir / "corpus"`` (as
    :func:`build_pseudoword_corpus` writes it when given that folder).

    Raises:
        ReplearnInputError: the training corpus is not under ``out_dir``.
    """
    out_dir = Path(out_dir)
    if Path(data.corpus.path).resolve() != (out_dir / "corpus").resolve():
        raise ReplearnInputError(f"the pseudo-word training corpus {data.corpus.path} is not {out_dir / 'corpus'}")
    write_vocabulary(data.vocab, out_dir / VOCAB_FILE)
    arrays = {f"{split}_{k}": getattr(getattr(data, split), k) for split in ("train", "test") for k in _FIELDS}
    arrays["test_tokens"] = data.test.tokens
    arrays["pairs"] = np.array(data.pairs, dtype=str).reshape(-1, 2)
    arrays["merged"] = np.array(data.merged, dtype=str)
    arrays["test_sentences"] = np.array(data.test_sentences, dtype=np.int64)
    path = out_dir / OCCURRENCES_FILE
    tmp = out_dir / f".{OCCURRENCES_FILE}.tmp-{uuid.uuid4().hex[:8]}.npz"
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_pseudoword_data(out_dir: Path) -> PseudowordData:
    """Read back what :func:`save_pseudoword_data` wrote (identical arrays, same vocabulary).

    Raises:
        FileNotFoundError: a file of the layout is missing (name in the message).
    """
    out_dir = Path(out_dir)
    path = out_dir / OCCURRENCES_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the pseudo-word stage again to rebuild it")
    corpus = EncodedCorpus.open(out_dir / "corpus")
    with np.load(path, allow_pickle=False) as z:
        train_tokens = np.fromfile(corpus.path / IDS_FILE, dtype=np.int32).astype(np.int64)
        train = Occurrences(*(z[f"train_{k}"] for k in _FIELDS), tokens=train_tokens)
        test = Occurrences(*(z[f"test_{k}"] for k in _FIELDS), tokens=z["test_tokens"])
        pairs = [(str(a), str(b)) for a, b in z["pairs"]]
        return PseudowordData(pairs, [str(m) for m in z["merged"]], corpus, read_vocabulary(out_dir / VOCAB_FILE),
                              train, test, int(z["test_sentences"]))
