"""Word-similarity evaluation: rank correlation of model cosines with human judgements.

Datasets: WordSim-353 (Finkelstein et al. 2002, "Placing Search in Context: The
Concept Revisited", ACM TOIS) and SimLex-999 (Hill, Reichart & Korhonen 2015,
"SimLex-999: Evaluating Semantic Models with (Genuine) Similarity Estimation",
Computational Linguistics), both bundled with gensim.

``evaluate_word_pairs`` reproduces gensim 4's ``KeyedVectors.evaluate_word_pairs``
(same parsing, same OOV rule, scipy's ``spearmanr`` / ``pearsonr``), with all
cosines computed in one vectorised pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from scipy import stats

from replearn.lib.errors import ReplearnInputError
from replearn.lib.vectors import KeyedVectors

__all__ = ["SimilarityResult", "evaluate_word_pairs", "read_word_pairs", "wordsim353_path", "simlex999_path"]


def wordsim353_path() -> str:
    """Path of gensim's bundled ``wordsim353.tsv`` (353 pairs, scores 0-10)."""
    from gensim.test.utils import datapath

    return datapath("wordsim353.tsv")


def simlex999_path() -> str:
    """Path of gensim's bundled ``simlex999.txt`` (999 pairs, scores 0-10)."""
    from gensim.test.utils import datapath

    return datapath("simlex999.txt")


@dataclass(frozen=True)
class SimilarityResult:
    """Correlation of model similarities with human scores.

    Attributes:
        spearman: Spearman rank correlation in [-1, 1] (the headline number).
        pearson: Pearson correlation in [-1, 1].
        n_pairs: pairs evaluated (both words in the restricted vocabulary).
        n_oov: pairs skipped because a word is out of vocabulary.
        oov_ratio: ``n_oov / (n_pairs + n_oov)`` in [0, 1] (gensim returns it x100).
        spearman_pvalue, pearson_pvalue: two-sided p-values from scipy.
    """

    spearman: float
    pearson: float
    n_pairs: int
    n_oov: int
    oov_ratio: float
    spearman_pvalue: float = float("nan")
    pearson_pvalue: float = float("nan")

    def to_dict(self, prefix: str = "") -> dict[str, float]:
        """Flat ``{name: number}`` for metric loggers, e.g. ``prefix="wordsim353_"``."""
        return {
            f"{prefix}spearman": self.spearman,
            f"{prefix}pearson": self.pearson,
            f"{prefix}n_pairs": float(self.n_pairs),
            f"{prefix}n_oov": float(self.n_oov),
            f"{prefix}oov_ratio": self.oov_ratio,
        }


def read_word_pairs(
    path: str | os.PathLike, delimiter: str = "\t", case_insensitive: bool = True, encoding: str = "utf8"
) -> tuple[list[tuple[str, str, float]], int]:
    """Parse a ``word1<TAB>word2<TAB>score`` file as gensim does.

    Lines starting with ``#`` are comments; lines that do not split into exactly
    three fields with a float third field are skipped. Words are upper-cased when
    ``case_insensitive`` (gensim's convention).

    Returns:
        ``(pairs, n_skipped_lines)``.

    Raises:
        ReplearnInputError: the file is missing or not in ``encoding``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ReplearnInputError(
            f"word-pair file {path!r} does not exist; use wordsim353_path() or simlex999_path() for the bundled sets"
        )
    pairs: list[tuple[str, str, float]] = []
    skipped = 0
    try:
        with open(path, encoding=encoding) as fin:
            for line in fin:
                if not line or line.startswith("#"):
                    continue
                fields = line.split(delimiter)
                if case_insensitive:
                    fields = [f.upper() for f in fields]
                try:
                    a, b, sim = fields
                    pairs.append((a, b, float(sim)))
                except (ValueError, TypeError):
                    skipped += 1
    except UnicodeDecodeError as exc:
        raise ReplearnInputError(f"{path} is not valid {encoding} ({exc}); re-encode it or pass encoding=") from exc
    return pairs, skipped


def evaluate_word_pairs(
    kv: KeyedVectors,
    path: str | os.PathLike,
    restrict_vocab: int | None = 300000,
    case_insensitive: bool = True,
    delimiter: str = "\t",
    encoding: str = "utf8",
) -> SimilarityResult:
    """Spearman/Pearson correlation between ``cos(v_a, v_b)`` and human scores,
    identical to gensim's ``KeyedVectors.evaluate_word_pairs(path, restrict_vocab=...)``.

    The vocabulary is ``kv.words[:restrict_vocab]``; with ``case_insensitive``
    words compare upper-cased and the most frequent case variant supplies the
    vector. Pairs with a word outside it are skipped (``n_oov``).

    Args:
        kv: the vectors, most frequent word first.
        path: pair file (see ``read_word_pairs``), e.g. ``wordsim353_path()``.
        restrict_vocab: vocabulary size (>= 1); ``None`` uses all words.
        case_insensitive: compare upper-cased words.
        delimiter, encoding: file format.

    Returns:
        SimilarityResult. A correlation is NaN when the model (or gold) scores
        are constant, as scipy returns.

    Raises:
        ReplearnInputError: missing/undecodable file, or no pair in vocabulary
            (message names the file).
    """
    n_vocab = kv.restricted_size(restrict_vocab)
    ok_vocab: dict[str, int] = {}
    for i, w in enumerate(kv.words[:n_vocab]):
        ok_vocab.setdefault(w.upper() if case_insensitive else w, i)

    pairs, _ = read_word_pairs(path, delimiter=delimiter, case_insensitive=case_insensitive, encoding=encoding)
    ia: list[int] = []
    ib: list[int] = []
    gold: list[float] = []
    n_oov = 0
    for a, b, sim in pairs:
        if a in ok_vocab and b in ok_vocab:
            ia.append(ok_vocab[a])
            ib.append(ok_vocab[b])
            gold.append(sim)
        else:
            n_oov += 1
    if len(gold) < 2:
        raise ReplearnInputError(
            f"{len(gold)} valid in-vocabulary word pairs in {os.fspath(path)} (need >= 2 for a correlation; "
            f"{n_oov} pairs out of vocabulary, "
            f"restrict_vocab={restrict_vocab}); check the file format (word<TAB>word<TAB>score) and the vocabulary"
        )
    U = kv.unit
    model = np.einsum("ij,ij->i", U[ia], U[ib])  # (P,) cosines, float32
    spearman = stats.spearmanr(gold, model)
    pearson = stats.pearsonr(gold, model)
    return SimilarityResult(
        spearman=float(spearman[0]),
        pearson=float(pearson[0]),
        n_pairs=len(gold),
        n_oov=n_oov,
        oov_ratio=n_oov / (len(gold) + n_oov),
        spearman_pvalue=float(spearman[1]),
        pearson_pvalue=float(pearson[1]),
    )
