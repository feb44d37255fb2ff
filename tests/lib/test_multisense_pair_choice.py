"""Pseudo-word pairs unrelated in the reference skip-gram: the pairs and cosines equal a recomputation by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.multisense.pair_choice import REFERENCE_SAMPLE, choose_unrelated_pairs, reference_config
from replearn.lib.multisense.pseudowords import choose_pairs, merged_token, pair_cosine
from replearn.lib.text.vocab import Vocabulary, keep_probability, noise_distribution
from replearn.lib.word2vec.corpus import IDS_FILE, META_FILE, OFFSETS_FILE, EncodedCorpus
from replearn.lib.word2vec.trainer import train_sgns


def _word(i: int) -> str:
    """A made-up alphabetic word of 7 letters (no stop word, no -ly / -ed / -ing ending)."""
    return "x" + "".join(chr(97 + (i // 26**k) % 26) for k in range(5)) + "q"


def topic_corpus(tmp_path, n_words=640, n_sent=2500, seed=0) -> tuple[EncodedCorpus, Vocabulary]:
    """Sentences of 8 words, each drawn from one topic of 20 words or, 1 in 4, from anywhere: words of one topic are
    related; ids ranked by count, as a Vocabulary wants."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, n_words // 20, size=n_sent)
    raw = np.where(rng.random((n_sent, 8)) < 0.75, topic[:, None] * 20 + rng.integers(0, 20, (n_sent, 8)),
                   rng.integers(0, n_words, (n_sent, 8)))
    counts = np.bincount(raw.ravel(), minlength=n_words)
    order = np.lexsort((np.arange(n_words), -counts))   # count descending, ties by id
    rank = np.empty(n_words, np.int64)
    rank[order] = np.arange(n_words)
    ids = rank[raw].astype(np.int32).ravel()
    path = tmp_path / "enc"
    path.mkdir()
    ids.tofile(path / IDS_FILE)
    (np.arange(n_sent + 1, dtype=np.int64) * 8).tofile(path / OFFSETS_FILE)
    (path / META_FILE).write_text(json.dumps({"n_tokens": len(ids), "n_sentences": n_sent, "raw_tokens": len(ids),
                                              "vocab_size": n_words}))
    vocab = Vocabulary(tuple(_word(int(i)) for i in order), counts[order], 1, None)
    return EncodedCorpus.open(path), vocab


def test_pairs_and_cosines_equal_the_reference_skip_gram_by_hand(tmp_path):
    corpus, vocab = topic_corpus(tmp_path)
    pairs, cosines = choose_unrelated_pairs(corpus, vocab, n_pairs=4, seed=3, threads=1)

    ref = train_sgns(corpus, vocab.counts, reference_config(3, 1),
                     keep_prob=keep_probability(vocab.counts, REFERENCE_SAMPLE),
                     noise_probs=noise_distribution(vocab.counts, 0.75))
    assert ref.syn0.shape == (len(vocab), 100)
    assert pairs == choose_pairs(list(vocab.words), n_pairs=4, vectors=ref.syn0)
    assert 1 <= len(pairs) <= 4 and list(cosines) == [merged_token(a, b) for a, b in pairs]
    for a, b in pairs:
        c = pair_cosine(ref.syn0, vocab.index[a], vocab.index[b])
        assert cosines[merged_token(a, b)] == round(c, 3) and c < 0.2
        assert vocab.counts[vocab.index[a]] >= vocab.counts[vocab.index[b]]
    assert choose_unrelated_pairs(corpus, vocab, n_pairs=4, seed=3, threads=1) == (pairs, cosines)  # deterministic


def test_no_eligible_pair_is_an_input_error(tmp_path):
    corpus, vocab = topic_corpus(tmp_path, n_words=300)   # every rank below 500: no candidate
    with pytest.raises(ReplearnInputError, match="no eligible word pairs") as e:
        choose_unrelated_pairs(corpus, vocab, n_pairs=2, seed=1, threads=1)
    # the user's fix, not the function's arguments: the option and a larger corpus
    assert "--pseudo-pairs" in str(e.value) and "larger corpus" in str(e.value) and "300 words" in str(e.value)
    with pytest.raises(ReplearnInputError, match="n_pairs"):  # other input errors keep their own message
        choose_unrelated_pairs(corpus, vocab, n_pairs=0, seed=1, threads=1)
