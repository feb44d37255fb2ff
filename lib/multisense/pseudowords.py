"""Pseudo-word evaluation of sense induction (Gale, Church & Yarowsky 1992; Schütze 1998).

Two unrelated, similarly frequent words a and b are replaced everywhere by one
merged token ``a_b``; a model trained on the merged corpus should give the
merged token (at least) two senses, and the posterior p(z | a_b, context) of a
held-out occurrence should tell which word stood there.

Protocol (all deterministic):

1. :func:`choose_pairs` (fixed rule, computed before merging; no pair is
   dropped after looking at results):

   * candidates: the words of vocabulary ranks [rank_lo, rank_hi) (default
     500..5000, count descending) that are alphabetic, at least ``min_len``
     (default 5) letters long, not in :data:`STOPWORDS` (a hand list of function
     words united with scikit-learn's ``ENGLISH_STOP_WORDS``) and not ending in
     one of ``exclude_suffixes`` (default -ly, -ed, -ing: a crude, fixed filter
     against adverbs and verb forms, so that mostly nouns and adjectives remain);
   * unrelatedness: given reference vectors (single-sense skip-gram trained on
     the *unmerged* corpus), a and b are unrelated when the cosine of their
     vectors is below ``max_cosine`` (default 0.2; related words such as
     arjuna / bharata of the same epic have cosines 0.4-0.7);
   * pairing: walking the candidates in rank order, each candidate a not yet
     paired takes as partner the first later unpaired candidate, among the next
     ``partner_window`` (default 10) candidates, that is unrelated to it (so the
     two counts are close); a candidate without such a partner stays single.
     The first ``n_pairs`` pairs are kept (the most frequent ones, so that every
     merged token has enough occurrences to train two senses).
2. :func:`build_pseudoword_corpus`: every (pseudo-)sentence is held out for
   test when a hash of its index falls below ``test_fraction``; the other
   sentences, with a and b replaced by ``a_b``, form the training corpus (an
   :class:`~replearn.lib.word2vec.corpus.EncodedCorpus` with its own
   vocabulary). Each occurrence of ``a_b`` keeps its true word, its position and
   its sentence, so that any context can be read: ``window`` words each side
   (within the sentence) or the whole sentence.
3. :func:`evaluate_pseudowords`: the log posterior of an occurrence is
   log p(z|x) + sum_y w(y) ell_z(y) (:mod:`.posterior`, ell_z(y) the expected
   negative-sampling log-likelihood) over its context words y: the ``width``
   in-vocabulary words each side (``context="window"``) or every other token of
   its held-out sentence (``context="sentence"``), with w(y) = 1 (the model's
   posterior) or, optionally, word2vec's subsampling keep probability of y (a
   frequent word carries little evidence). Each sense is mapped to the word that
   is most often the truth among the training occurrences whose most probable
   sense it is (majority mapping); a held-out occurrence is predicted as the
   word of its most probable sense; accuracy per pair is reported with the
   majority-class baseline.
4. :func:`ceiling_accuracy`: the same posterior with the two original words'
   vectors of a skip-gram trained on the unmerged corpus as the two "senses":
   what a model that recovered the pair exactly would score.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from replearn.lib.errors import ReplearnInputError, VocabularyError
from replearn.lib.multisense.model import MultiSenseVectors
from replearn.lib.multisense.posterior import context_log_likelihood
from replearn.lib.store.atomic import atomic_path
from replearn.lib.text.vocab import Vocabulary
from replearn.lib.word2vec.corpus import IDS_FILE, META_FILE, OFFSETS_FILE, EncodedCorpus

STOPWORDS = frozenset(
    "the of and to in a is that for it as was with be by on not he i this are or his from at which but "
    "have an they you were her she there been one all we their has would when who will more no if out "
    "so said what up its about into than them can only other new some could time these two may then do "
    "first any my now such like our over me even most made after also did many before must through "
    "back where much your way well down should because each just those how too little us very make "
    "still own see here between both being under never same another know while last might off come "
    "since against go came right used take three upon shall himself herself itself myself yourself "
    "themselves ourselves every without within though although again always nothing something anything "
    "everything around toward towards among perhaps rather almost quite enough whose whom which while "
    "yet thus hence however therefore once twice four five seven eight nine eleven twelve hundred "
    "thousand".split()
) | ENGLISH_STOP_WORDS

#: default suffixes excluded by :func:`choose_pairs` (adverbs, verb forms)
EXCLUDE_SUFFIXES = ("ly", "ed", "ing")

Context = Literal["window", "sentence"]


def merged_token(a: str, b: str) -> str:
    """The token that replaces both a and b: ``"a_b"``."""
    return f"{a}_{b}"


def pair_cosine(vectors: np.ndarray, i: int, j: int) -> float:
    """Cosine of rows i and j of ``vectors`` (0 when one of them is the zero vector)."""
    a, b = np.asarray(vectors[i], dtype=np.float64), np.asarray(vectors[j], dtype=np.float64)
    n = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / n if n > 0 else 0.0


class NoEligiblePairs(ReplearnInputError):
    """No pair of words meets :func:`choose_pairs`' rule (rank band, letters, cosine)."""


def choose_pairs(words: Sequence[str], n_pairs: int = 8, rank_lo: int = 500, rank_hi: int = 5000,
                 min_len: int = 5, stopwords: frozenset[str] = STOPWORDS,
                 exclude_suffixes: tuple[str, ...] = EXCLUDE_SUFFIXES, vectors: np.ndarray | None = None,
                 max_cosine: float = 0.2, partner_window: int = 10) -> list[tuple[str, str]]:
    """Pairs of similarly frequent, unrelated content words by the fixed rule of the module docstring.

    Args:
        words: the vocabulary, most frequent first. n_pairs: >= 1.
        rank_lo, rank_hi: 0-based rank band [rank_lo, rank_hi). min_len: shortest word kept.
        stopwords: words never chosen. exclude_suffixes: words ending so are never chosen.
        vectors: float (len(words), D) reference vectors (single-sense skip-gram on the unmerged corpus),
            rows aligned with ``words``; None: no unrelatedness test (every pair passes).
        max_cosine: a and b are unrelated when cos(vectors[a], vectors[b]) < max_cosine.
        partner_window: how many later candidates are tried as partners, >= 1.

    Returns:
        Up to ``n_pairs`` (a, b) pairs, a more frequent (or equal) than b.

    Raises:
        ReplearnInputError: n_pairs < 1, partner_window < 1, vectors of the wrong length.
        NoEligiblePairs: no eligible pair.
    """
    if n_pairs < 1 or partner_window < 1:
        raise ReplearnInputError(f"n_pairs and partner_window must be >= 1, got {n_pairs}, {partner_window}")
    if vectors is not None and len(vectors) != len(words):
        raise ReplearnInputError(f"vectors have {len(vectors)} rows for {len(words)} words")
    cand = [i for i in range(rank_lo, min(rank_hi, len(words)))
            if words[i].isalpha() and len(words[i]) >= min_len and words[i] not in stopwords
            and not (exclude_suffixes and words[i].endswith(tuple(exclude_suffixes)))]
    used: set[int] = set()
    pairs: list[tuple[str, str]] = []
    for k, a in enumerate(cand):
        if len(pairs) >= n_pairs:
            break
        if a in used:
            continue
        tried = 0
        for b in cand[k + 1:]:
            if b in used:
                continue
            tried += 1
            if tried > partner_window:
                break
            if vectors is None or pair_cosine(vectors, a, b) < max_cosine:
                pairs.append((words[a], words[b]))
                used |= {a, b}
                break
    if not pairs:
        raise NoEligiblePairs(f"no eligible word pairs in ranks [{rank_lo}, {rank_hi}) of a vocabulary of "
                                 f"{len(words)} words; widen the band, lower min_len or raise max_cosine")
    return pairs


@dataclass
class Occurrences:
    """Occurrences of the merged tokens, located in a flat token store of whole sentences.

    Attributes:
        pair: int64 (N,) pair index. label: int64 (N,) 0 = the first word of the pair stood there, 1 = the second.
        pos: int64 (N,) position of the occurrence in ``tokens``.
        start, end: int64 (N,) its sentence is ``tokens[start:end]``.
        tokens: int64 (T,) token ids in the new vocabulary, -1 = a word unknown to it (ignored as context).
    """

    pair: np.ndarray
    label: np.ndarray
    pos: np.ndarray
    start: np.ndarray
    end: np.ndarray
    tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.pair)

    def window(self, width: int, rows: np.ndarray | None = None) -> np.ndarray:
        """int64 (n, 2 * width) the ``width`` tokens each side within the sentence, -1 = padding."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        off = np.concatenate([np.arange(-width, 0), np.arange(1, width + 1)])
        p = self.pos[rows, None] + off[None, :]
        ok = (p >= self.start[rows, None]) & (p < self.end[rows, None])
        return np.where(ok, self.tokens[np.clip(p, 0, max(len(self.tokens) - 1, 0))], -1)


@dataclass
class PseudowordData:
    """What :func:`build_pseudoword_corpus` made.

    Attributes:
        pairs: the (a, b) pairs. merged: their merged tokens.
        corpus: the training corpus (held-out sentences removed). vocab: its vocabulary.
        train: occurrences in training sentences (store: the training corpus).
        test: all occurrences in held-out sentences (store: the held-out sentences).
        test_sentences: number of held-out (pseudo-)sentences.
    """

    pairs: list[tuple[str, str]]
    merged: list[str]
    corpus: EncodedCorpus
    vocab: Vocabulary
    train: Occurrences
    test: Occurrences
    test_sentences: int


def hash_split(sentence_ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Deterministic hash split: bool (n,), True where splitmix64 of (index, seed) falls below ``fraction`` (the
    held-out sentences here; the mapping split of lib/multisense/wsi_mapping.py)."""
    with np.errstate(over="ignore"):
        z = sentence_ids.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction


def build_pseudoword_corpus(corpus: EncodedCorpus, vocab: Vocabulary, pairs: Sequence[tuple[str, str]], out_dir: Path,
                            *, test_fraction: float = 0.1, seed: int = 0,
                            chunk_tokens: int = 2_000_000) -> PseudowordData:
    """Merge each pair into one token, split sentences into train / held-out, record occurrences.

    The encoded corpus is read in chunks of whole sentences; the training corpus
    is written to ``out_dir`` (replaced) in the :class:`EncodedCorpus` format
    with a new vocabulary: the merged words are removed, the merged tokens
    added, counts recounted on the training sentences, words that occur only in
    held-out sentences dropped (and ignored as held-out context). The training
    corpus and the held-out sentences are also kept in memory as the
    occurrences' token stores (int64, 8 bytes per token).

    Args:
        corpus, vocab: the original encoded corpus and its vocabulary.
        pairs: (a, b) word pairs, all words distinct and in ``vocab``.
        out_dir: where the training corpus goes.
        test_fraction: share of sentences held out, in (0, 1). seed: of the split.

    Returns:
        :class:`PseudowordData`.

    Raises:
        VocabularyError: a word of a pair is not in ``vocab`` or appears twice.
        ReplearnInputError: test_fraction not in (0, 1).
    """
    if not 0 < test_fraction < 1:
        raise ReplearnInputError(f"need 0 < test_fraction < 1, got {test_fraction}")
    flat = [w for p in pairs for w in p]
    missing = [w for w in flat if w not in vocab]
    if missing or len(set(flat)) != len(flat):
        raise VocabularyError(f"pair words must be distinct and in the vocabulary; missing {missing}, pairs {pairs}")
    merged = [merged_token(a, b) for a, b in pairs]
    maps = _MergeMaps.of(vocab, pairs)
    train, test = _SplitStore(), _SplitStore()
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        with open(tmp / IDS_FILE, "wb") as f_ids:
            train_counts, ends, n_test_sent = _split_chunks(corpus, maps, train, test, f_ids, test_fraction=test_fraction,
                                                            seed=seed, chunk_tokens=chunk_tokens)
        new_vocab, new_of = _recount_vocabulary(vocab, merged, train_counts)
        _finish_corpus_folder(tmp, new_of, np.concatenate(ends).astype(np.int64), len(new_vocab), merged)
    return PseudowordData(list(pairs), merged, EncodedCorpus.open(out_dir), new_vocab, train.pack(new_of),
                          test.pack(new_of), n_test_sent)


@dataclass(frozen=True)
class _MergeMaps:
    """Per original word id (V,): ``tmp_of`` its temporary id (``V + i`` for the words of pair i, else itself),
    ``pair_of`` its pair (-1: none), ``label_of`` 0 / 1 for the pair's first / second word (-1: none)."""

    tmp_of: np.ndarray
    pair_of: np.ndarray
    label_of: np.ndarray
    n_pairs: int

    @property
    def n_tmp(self) -> int:
        """Temporary ids in use: the V words and the merged tokens."""
        return len(self.tmp_of) + self.n_pairs

    @classmethod
    def of(cls, vocab: Vocabulary, pairs: Sequence[tuple[str, str]]) -> "_MergeMaps":
        V = len(vocab)
        tmp_of = np.arange(V, dtype=np.int64)
        pair_of = np.full(V, -1, dtype=np.int64)
        label_of = np.full(V, -1, dtype=np.int64)
        for i, (a, b) in enumerate(pairs):
            for lab, w in enumerate((a, b)):
                x = vocab.index[w]
                tmp_of[x] = V + i
                pair_of[x] = i
                label_of[x] = lab
        return cls(tmp_of, pair_of, label_of, len(pairs))


_OCCURRENCE_FIELDS = ("pair", "label", "pos", "start", "end", "tokens")


class _SplitStore:
    """The token store of one split (train or held-out) and the merged-token occurrences in it, gathered
    chunk by chunk (tokens in temporary ids until :meth:`pack`)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in _OCCURRENCE_FIELDS}
        self.size = 0

    def add(self, ids: np.ndarray, mapped: np.ndarray, bounds: np.ndarray, keep_sent: np.ndarray,
            maps: _MergeMaps) -> np.ndarray:
        """Append the sentences ``keep_sent`` (S,) of a chunk (``ids`` (T,) original ids, ``mapped`` (T,)
        temporary ids, ``bounds`` (S + 1,) sentence offsets); return their tokens (temporary ids)."""
        lengths = np.diff(bounds)
        keep_tok = np.repeat(keep_sent, lengths)
        new_pos = np.cumsum(keep_tok) - 1 + self.size  # store position of each kept token
        new_end = self.size + np.cumsum(lengths * keep_sent)
        new_start = new_end - lengths
        hits = np.flatnonzero((maps.pair_of[ids] >= 0) & keep_tok)
        s_of = np.searchsorted(bounds, hits, side="right") - 1
        o = self.parts
        o["pair"].append(maps.pair_of[ids[hits]])
        o["label"].append(maps.label_of[ids[hits]])
        o["pos"].append(new_pos[hits])
        o["start"].append(new_start[s_of])
        o["end"].append(new_end[s_of])
        kept = mapped[keep_tok]
        o["tokens"].append(kept)
        self.size += len(kept)
        return kept

    def pack(self, new_of: np.ndarray) -> Occurrences:
        """The :class:`Occurrences`, tokens renumbered by ``new_of`` (temporary id -> new id, -1: dropped)."""
        cat = {k: np.concatenate(v).astype(np.int64) if v else np.zeros(0, np.int64) for k, v in self.parts.items()}
        return Occurrences(cat["pair"], cat["label"], cat["pos"], cat["start"], cat["end"], new_of[cat["tokens"]])


def _split_chunks(corpus: EncodedCorpus, maps: _MergeMaps, train: _SplitStore, test: _SplitStore, f_ids,
                  *, test_fraction: float, seed: int, chunk_tokens: int) -> tuple[np.ndarray, list[np.ndarray], int]:
    """Read ``corpus`` in chunks of whole sentences into ``train`` / ``test`` (:func:`hash_split`), writing the
    training tokens (int32 temporary ids) to ``f_ids``.

    Returns:
        ``(train_counts (V + pairs,) int64, sentence ends of the training corpus (list of arrays, from a 0),
        number of held-out sentences)``.
    """
    train_counts = np.zeros(maps.n_tmp, dtype=np.int64)
    ends = [np.zeros(1, dtype=np.int64)]
    n_test_sent = sent0 = 0
    for ids, bounds in corpus.iter_chunks(chunk_tokens):
        S = len(bounds) - 1
        held = hash_split(np.arange(sent0, sent0 + S), test_fraction, seed)
        sent0 += S
        n_test_sent += int(held.sum())
        mapped = maps.tmp_of[ids]
        kept = train.add(ids, mapped, bounds, ~held, maps)
        train_counts += np.bincount(kept, minlength=len(train_counts))
        kept.astype(np.int32).tofile(f_ids)  # temporary ids, remapped by _finish_corpus_folder
        ends.append(train.size - len(kept) + np.cumsum(np.diff(bounds)[~held]))
        test.add(ids, mapped, bounds, held, maps)
    return train_counts, ends, n_test_sent


def _recount_vocabulary(vocab: Vocabulary, merged: list[str], train_counts: np.ndarray
                        ) -> tuple[Vocabulary, np.ndarray]:
    """The training vocabulary: count descending, word ascending, zero-count words dropped.

    Returns:
        ``(new vocabulary, new_of)``: ``new_of`` maps a temporary id to its new id (-1: dropped).
    """
    tmp_words = list(vocab.words) + merged
    order = sorted((i for i in range(len(tmp_words)) if train_counts[i] > 0),
                   key=lambda i: (-train_counts[i], tmp_words[i]))
    new_of = np.full(len(tmp_words), -1, dtype=np.int64)
    new_of[order] = np.arange(len(order))
    new_vocab = Vocabulary(tuple(tmp_words[i] for i in order), train_counts[order], vocab.min_count, vocab.max_vocab)
    return new_vocab, new_of


def _finish_corpus_folder(folder: Path, new_of: np.ndarray, offsets: np.ndarray, vocab_size: int,
                          merged: list[str]) -> None:
    """Renumber the ids file of ``folder`` by ``new_of``; write the offsets (``(S + 1,)`` int64) and the meta."""
    ids_all = np.fromfile(folder / IDS_FILE, dtype=np.int32)
    new_of[ids_all].astype(np.int32).tofile(folder / IDS_FILE)
    offsets.tofile(folder / OFFSETS_FILE)
    meta = {"n_tokens": int(offsets[-1]), "n_sentences": len(offsets) - 1, "raw_tokens": int(offsets[-1]),
            "vocab_size": vocab_size, "pseudowords": merged}
    (folder / META_FILE).write_text(json.dumps(meta))


def occurrence_log_posterior(log_prior: np.ndarray, table: np.ndarray, occ: Occurrences, rows: np.ndarray,
                             context: Context = "window", width: int = 5,
                             weights: np.ndarray | None = None) -> np.ndarray:
    """Unnormalised log posterior log p(z|x) + sum_y w(y) ell_z(y) of some occurrences (module docstring, step 3).

    Args:
        log_prior: (K,). table: (K, V) ell_z(y) (:func:`.posterior.context_log_likelihood`) over the ids of
            ``occ.tokens``. occ: the occurrences. rows: int indices into ``occ``.
        context: ``"window"`` (``width`` tokens each side) or ``"sentence"`` (every other token of the sentence).
        weights: float (V,) w(y), or None for 1.

    Returns:
        float64 (len(rows), K).
    """
    K, V = table.shape
    t = np.concatenate([table if weights is None else table * np.asarray(weights)[None, :],
                        np.zeros((K, 1))], axis=1)  # column V: unknown / padding, contributes 0
    rows = np.asarray(rows, dtype=np.int64)
    if context == "window":
        ctx = occ.window(width, rows)
        return np.asarray(log_prior, dtype=np.float64)[None, :] + t[:, np.where(ctx < 0, V, ctx)].sum(axis=2).T
    if context != "sentence":
        raise ReplearnInputError(f"context must be 'window' or 'sentence', got {context!r}")
    lo, hi = int(occ.start[rows].min(initial=0)), int(occ.end[rows].max(initial=0))
    tok = occ.tokens[lo:hi]
    cs = np.zeros((K, hi - lo + 1))
    np.cumsum(t[:, np.where(tok < 0, V, tok)], axis=1, out=cs[:, 1:])
    own = occ.tokens[occ.pos[rows]]
    a = cs[:, occ.end[rows] - lo] - cs[:, occ.start[rows] - lo] - t[:, np.where(own < 0, V, own)]
    return np.asarray(log_prior, dtype=np.float64)[None, :] + a.T


@dataclass(frozen=True)
class PairResult:
    """Pseudo-word accuracy of one pair.

    Attributes:
        a, b: the words. merged: the merged token. n_senses: senses of the merged token.
        prior: its sense priors (tuple, sense order). nontrivial_senses: senses with prior >= 0.1.
        sense_word: the word each sense maps to ("a" or "b" text). n_test: held-out occurrences.
        accuracy: share of held-out occurrences whose true word is predicted, in [0, 1] (nan if none).
        baseline: majority-class accuracy on the held-out occurrences (always guessing the more frequent word).
    """

    a: str
    b: str
    merged: str
    n_senses: int
    prior: tuple[float, ...]
    nontrivial_senses: int
    sense_word: tuple[str, ...]
    n_test: int
    accuracy: float
    baseline: float


def evaluate_pseudowords(model: MultiSenseVectors, data: PseudowordData, *, context: Context = "window",
                         width: int = 5, weights: np.ndarray | None = None,
                         nontrivial: float = 0.1) -> list[PairResult]:
    """Accuracy per pair by majority sense-to-word mapping (protocol in the module docstring).

    Args:
        model: trained on ``data.corpus`` with ``data.vocab`` (same word ids).
        data: from :func:`build_pseudoword_corpus`.
        context, width, weights: the posterior's context (:func:`occurrence_log_posterior`).
        nontrivial: prior counted as non-trivial.

    Returns:
        One :class:`PairResult` per pair, in pair order.

    Raises:
        VocabularyError: the model's vocabulary is not ``data.vocab``.
    """
    if tuple(model.words) != tuple(data.vocab.words):
        raise VocabularyError("the model was not trained on this pseudo-word corpus (vocabularies differ)")
    out = []
    for i, ((a, b), tok) in enumerate(zip(data.pairs, data.merged)):
        table = model.context_table(tok)
        log_prior = np.log(model.sense_prior(tok))
        K = len(log_prior)
        tr = np.flatnonzero(data.train.pair == i)
        z_tr = occurrence_log_posterior(log_prior, table, data.train, tr, context, width, weights).argmax(axis=1)
        lab_tr = data.train.label[tr]
        overall = int(np.bincount(lab_tr, minlength=2).argmax()) if len(lab_tr) else 0
        sense_label = np.array([int(np.bincount(lab_tr[z_tr == z], minlength=2).argmax()) if (z_tr == z).any()
                                else overall for z in range(K)])
        te = np.flatnonzero(data.test.pair == i)
        lab_te = data.test.label[te]
        z_te = occurrence_log_posterior(log_prior, table, data.test, te, context, width, weights).argmax(axis=1)
        acc = float((sense_label[z_te] == lab_te).mean()) if len(lab_te) else float("nan")
        base = float(np.bincount(lab_te, minlength=2).max() / len(lab_te)) if len(lab_te) else float("nan")
        prior = tuple(float(p) for p in np.exp(log_prior))
        out.append(PairResult(a, b, tok, K, prior, int(sum(p >= nontrivial for p in prior)),
                              tuple((a, b)[s] for s in sense_label), int(len(lab_te)), acc, base))
    return out


def ceiling_predictions(syn0: np.ndarray, syn1: np.ndarray, vocab: Vocabulary, noise_probs: np.ndarray,
                        negative: int, data: PseudowordData, *, context: Context = "window", width: int = 5,
                        weights: np.ndarray | None = None) -> list[np.ndarray]:
    """The ceiling's predicted word (0 = a, 1 = b) of every held-out occurrence, per pair: int (n_i,) in the order
    of ``np.flatnonzero(data.test.pair == i)``. Arguments as :func:`ceiling_accuracy`, which scores them."""
    to_orig = np.array([vocab.index.get(w, -1) for w in data.vocab.words], dtype=np.int64)
    ok = to_orig >= 0
    out = []
    for i, (a, b) in enumerate(data.pairs):
        rows = [vocab.index[a], vocab.index[b]]
        full = context_log_likelihood(syn0[rows], syn1, noise_probs, negative)
        table = np.zeros((2, len(data.vocab)))
        table[:, ok] = full[:, to_orig[ok]]  # merged tokens (not in vocab) contribute 0
        counts = np.asarray(vocab.counts, dtype=np.float64)[rows]
        te = np.flatnonzero(data.test.pair == i)
        out.append(occurrence_log_posterior(np.log(counts / counts.sum()), table, data.test, te, context, width,
                                            weights).argmax(axis=1) if len(te) else np.zeros(0, np.int64))
    return out


def ceiling_accuracy(syn0: np.ndarray, syn1: np.ndarray, vocab: Vocabulary, noise_probs: np.ndarray, negative: int,
                     data: PseudowordData, *, context: Context = "window", width: int = 5,
                     weights: np.ndarray | None = None) -> list[float]:
    """Upper reference for :func:`evaluate_pseudowords`: senses that are the two original words.

    ``syn0`` / ``syn1`` are single-sense skip-gram vectors trained on the
    *unmerged* corpus with ``vocab`` (so a and b have their own vectors v_a, v_b).
    Each held-out occurrence is classified by the same posterior as the
    multi-sense model (same context words and weights, prior = the two words'
    count shares) with the two "senses" v_a, v_b.

    Args:
        syn0, syn1: float (V, D) input / context vectors over ``vocab``. noise_probs: (V,) over ``vocab``.
        negative: k of the posterior's noise term. data: from :func:`build_pseudoword_corpus` on the same corpus.
        context, width: as :func:`evaluate_pseudowords`. weights: (len(data.vocab),) over the *merged* vocabulary.

    Returns:
        Accuracy per pair (pair order), nan for a pair without held-out occurrences.
    """
    preds = ceiling_predictions(syn0, syn1, vocab, noise_probs, negative, data, context=context, width=width,
                                weights=weights)
    return [float((z == data.test.label[data.test.pair == i]).mean()) if len(z) else float("nan")
            for i, z in enumerate(preds)]
