"""Choose pseudo-word pairs that are unrelated in a reference skip-gram trained on the unmerged corpus.

Step 1 of the pseudo-word protocol (:mod:`replearn.lib.multisense.pseudowords`,
Gale, Church & Yarowsky 1992; Schütze 1998): "unrelated" is measured as in
bench/multisense_pseudowords.py, by the cosine of the two words' vectors in a
single-sense skip-gram with negative sampling (Mikolov et al. 2013; 1 epoch,
dimension 100, subsampling 1e-3, unigram^0.75 noise) trained on the corpus
*before* any pair is merged; :func:`~replearn.lib.multisense.pseudowords.choose_pairs`
keeps a pair only when that cosine is below its ``max_cosine`` (0.2).
"""

from __future__ import annotations

from replearn.lib.multisense.pseudowords import NoEligiblePairs, choose_pairs, merged_token, pair_cosine
from replearn.lib.text.vocab import Vocabulary, keep_probability, noise_distribution
from replearn.lib.word2vec.config import Word2VecConfig
from replearn.lib.word2vec.corpus import EncodedCorpus
from replearn.lib.word2vec.trainer import train_sgns

__all__ = ["REFERENCE_SAMPLE", "choose_unrelated_pairs", "reference_config"]

#: Frequent-word subsampling threshold of the reference skip-gram (word2vec's default).
REFERENCE_SAMPLE = 1e-3


def reference_config(seed: int, threads: int) -> Word2VecConfig:
    """The reference skip-gram's settings: dimension 100, 1 epoch, otherwise :class:`Word2VecConfig`'s defaults."""
    return Word2VecConfig(dim=100, epochs=1, threads=threads, seed=seed)


def choose_unrelated_pairs(corpus: EncodedCorpus, vocab: Vocabulary, n_pairs: int, seed: int, threads: int = 2
                           ) -> tuple[list[tuple[str, str]], dict[str, float]]:
    """Train the reference skip-gram on ``corpus`` and choose ``n_pairs`` unrelated pairs of similarly frequent
    content words by the fixed rule of :func:`~replearn.lib.multisense.pseudowords.choose_pairs`.

    Args:
        corpus: the unmerged corpus, ids in [0, V) of ``vocab``.
        vocab: its vocabulary (V words, most frequent first).
        n_pairs: pairs wanted, >= 1 (fewer come back when fewer are eligible).
        seed: the reference skip-gram's seed (with ``threads`` 1 the pairs are deterministic).
        threads: its training threads, >= 1.

    Returns:
        ``(pairs, cosines)``: the (a, b) pairs, a at least as frequent as b, and
        ``{merged_token(a, b): cos(v_a, v_b)}`` in the reference vectors, rounded to 3 decimals (each < 0.2).

    Raises:
        ReplearnInputError: ``n_pairs < 1``.
        NoEligiblePairs: no eligible pair (see ``choose_pairs``); the message names ``--pseudo-pairs`` and a
            larger corpus as the fix.
    """
    ref = train_sgns(corpus, vocab.counts, reference_config(seed, threads),
                     keep_prob=keep_probability(vocab.counts, REFERENCE_SAMPLE),
                     noise_probs=noise_distribution(vocab.counts))
    try:
        pairs = choose_pairs(list(vocab.words), n_pairs=n_pairs, vectors=ref.syn0)
    except NoEligiblePairs:
        raise NoEligiblePairs(
            f"no eligible word pairs for --pseudo-pairs in this corpus ({len(vocab.words):,} words, "
            f"{corpus.n_tokens:,} tokens): pairs need words of rank 500-5,000 whose reference skip-gram vectors "
            f"have cosine < 0.2, and on a corpus this small all such vectors are alike. Use a larger corpus (the "
            f"books corpus, the default, has 4.9 M tokens) or --pseudo-pairs 0") from None
    cosines = {merged_token(a, b): round(pair_cosine(ref.syn0, vocab.index[a], vocab.index[b]), 3) for a, b in pairs}
    return pairs, cosines
