"""Pseudo-word data saved by the pseudo-word stage reads back identical, so evaluation does not rebuild it."""

import json

import numpy as np
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.multisense.pseudoword_store import load_pseudoword_data, save_pseudoword_data
from replearn.lib.multisense.pseudowords import build_pseudoword_corpus
from replearn.lib.text.vocab import Vocabulary
from replearn.lib.word2vec.corpus import IDS_FILE, META_FILE, OFFSETS_FILE, EncodedCorpus

WORDS = ("the", "apple", "river", "water", "tree", "bank", "money")


def small_corpus(tmp_path):
    """60 seeded sentences of 3-8 words over a 7-word vocabulary, written as an encoded corpus."""
    rng = np.random.default_rng(3)
    lengths = rng.integers(3, 9, size=60)
    ids = rng.integers(0, len(WORDS), size=int(lengths.sum()))
    rank = np.empty(len(WORDS), np.int64)
    rank[np.argsort(-np.bincount(ids, minlength=len(WORDS)), kind="stable")] = np.arange(len(WORDS))
    ids = rank[ids].astype(np.int32)  # id 0 = the most frequent word, as a Vocabulary wants
    path = tmp_path / "enc"
    path.mkdir()
    ids.tofile(path / IDS_FILE)
    np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64).tofile(path / OFFSETS_FILE)
    (path / META_FILE).write_text(json.dumps({"n_tokens": len(ids), "n_sentences": 60, "raw_tokens": len(ids),
                                              "vocab_size": len(WORDS)}))
    return EncodedCorpus.open(path), Vocabulary(WORDS, np.bincount(ids, minlength=len(WORDS)), 1, None)


def test_round_trip_equals_the_built_data(tmp_path):
    corpus, vocab = small_corpus(tmp_path)
    data = build_pseudoword_corpus(corpus, vocab, [("apple", "river")], tmp_path / "pw" / "corpus", test_fraction=0.3)
    save_pseudoword_data(data, tmp_path / "pw")
    back = load_pseudoword_data(tmp_path / "pw")
    assert back.pairs == data.pairs and back.merged == data.merged and back.test_sentences == data.test_sentences
    assert back.vocab.words == data.vocab.words
    np.testing.assert_array_equal(back.vocab.counts, data.vocab.counts)
    for split in ("train", "test"):
        for k in ("pair", "label", "pos", "start", "end", "tokens"):
            np.testing.assert_array_equal(getattr(getattr(back, split), k), getattr(getattr(data, split), k))
    assert len(back.train) > 0 and len(back.test) > 0
    assert not list((tmp_path / "pw").glob(".*tmp*"))


def test_errors_name_the_missing_file_and_a_foreign_corpus(tmp_path):
    with pytest.raises(FileNotFoundError, match="occurrences.npz"):
        load_pseudoword_data(tmp_path)
    corpus, vocab = small_corpus(tmp_path)
    data = build_pseudoword_corpus(corpus, vocab, [("apple", "river")], tmp_path / "elsewhere", test_fraction=0.3)
    with pytest.raises(ReplearnInputError, match="not"):
        save_pseudoword_data(data, tmp_path / "pw")
