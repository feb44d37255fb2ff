"""Word analogies by 3CosAdd (vector offset), vectorised.

"a is to b as c is to ?": predict ``d* = argmax_d cos(d, b - a + c)`` over unit
vectors, leaving out a, b and c (Mikolov, Yih & Zweig 2013, "Linguistic
Regularities in Continuous Space Word Representations", NAACL; Mikolov et al.
2013, "Efficient Estimation of Word Representations in Vector Space" -- the
``questions-words.txt`` test set; the name 3CosAdd is from Levy & Goldberg 2014).

``evaluate_analogies`` reproduces gensim 4's
``KeyedVectors.evaluate_word_analogies(path, restrict_vocab=...)`` question for
question (same OOV rule, same upper-casing, same "skip case variants of the
input words among the top 5" rule) but scores ~1000 questions per matrix product
instead of one ``most_similar`` call each.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from replearn.lib.errors import ReplearnInputError
from replearn.lib.topk import exact_topk
from replearn.lib.vectors import KeyedVectors

__all__ = ["AnalogyResult", "evaluate_analogies", "read_analogies", "three_cos_add", "questions_words_path"]

# Candidates gensim inspects per question: most_similar(..., topn=5), first one that
# is not a case variant of a, b or c wins.
_GENSIM_TOPN = 5
# Scores matrix budget per batch, in float32 elements (~128 MiB).
_MAX_BATCH_ELEMENTS = 32 * 1024 * 1024


def questions_words_path() -> str:
    """Path of gensim's bundled ``questions-words.txt`` (19,544 questions, 14 sections)."""
    from gensim.test.utils import datapath

    return datapath("questions-words.txt")


# --------------------------------------------------------------------------- core
def _queries(unit: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Unit query vectors ``unit(unit_b + unit_c - unit_a)``, ``(Q, D) float32``.

    Same float32 order of operations as gensim's ``most_similar(positive=[b, c],
    negative=[a])`` (sum, divide by the total weight 3, normalise), so near-ties
    break the same way as often as possible.
    """
    q = unit[b] + unit[c]
    q -= unit[a]
    q /= np.float32(3.0)
    n = np.linalg.norm(q, axis=1, keepdims=True)
    np.divide(q, n, out=q, where=n > 0)
    return q


def _batch_rows(batch_size: int, n: int) -> int:
    """Questions per block: ``batch_size``, lowered so one block's ``(B, n)`` scores stay near ~128 MiB."""
    return max(1, min(int(batch_size), _MAX_BATCH_ELEMENTS // max(n, 1)))


def _as_index(x, n: int, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ReplearnInputError(f"{name} holds an index outside [0, {n}); indices must address rows of unit_vectors")
    return arr


def three_cos_add(
    unit_vectors: np.ndarray,
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    c_idx: np.ndarray,
    exclude: bool = True,
    batch_size: int = 1000,
) -> np.ndarray:
    """Solve "a : b :: c : ?" for many questions at once by 3CosAdd.

    ``d*_i = argmax_{d != a_i, b_i, c_i} cos(u_d, u_{b_i} - u_{a_i} + u_{c_i})``
    (Mikolov, Yih & Zweig 2013, eq. in sec. 4; Levy & Goldberg 2014 call it
    3CosAdd). With unit vectors ``u`` this is ``argmax_d u_d . q_i`` where
    ``q_i = unit(u_b + u_c - u_a)``.

    Args:
        unit_vectors: ``(N, D) float32``, rows L2-normalised (zero rows allowed);
            the candidate set is all ``N`` rows (slice it to restrict the vocabulary).
        a_idx, b_idx, c_idx: ``(Q,)`` integer rows in ``[0, N)``.
        exclude: leave a, b, c out of the candidates (standard; gensim does).
        batch_size: questions per ``(B, D) @ (D, N)`` product; lowered
            automatically so a batch's scores fit in ~128 MiB.

    Returns:
        ``(Q,) int64`` predicted rows. Ties go to the lowest row.

    Raises:
        ReplearnInputError: index arrays of different lengths or out of range,
            or ``unit_vectors`` not 2-D.
    """
    unit = np.asarray(unit_vectors, dtype=np.float32)
    if unit.ndim != 2:
        raise ReplearnInputError(f"unit_vectors must be (N, D), got shape {unit.shape}")
    n = unit.shape[0]
    a, b, c = (_as_index(x, n, name) for x, name in ((a_idx, "a_idx"), (b_idx, "b_idx"), (c_idx, "c_idx")))
    if not (len(a) == len(b) == len(c)):
        raise ReplearnInputError(f"a_idx, b_idx, c_idx lengths differ: {len(a)}, {len(b)}, {len(c)}")
    if len(a) == 0 or n == 0:
        return np.empty(len(a), dtype=np.int64)
    skip = np.stack([a, b, c], axis=1) if exclude else None
    _, I = exact_topk(_queries(unit, a, b, c), unit, 1, "ip", exclude=skip, batch=_batch_rows(batch_size, n))
    return np.maximum(I[:, 0], 0)  # every row excluded (N <= 3): row 0, as argmax over all -inf gives


# ------------------------------------------------------------------------- file
@dataclass
class _Section:
    name: str
    questions: list[tuple[str, str, str, str]] = field(default_factory=list)


def read_analogies(path: str | os.PathLike, case_insensitive: bool = True) -> tuple[list[_Section], int]:
    """Parse a ``questions-words.txt``-style file the way gensim does.

    Lines ``": NAME"`` open a section; other lines are ``a b c d`` (whitespace
    separated); lines without exactly 4 tokens are skipped. Words are upper-cased
    when ``case_insensitive`` (gensim upper-cases, it does not lower-case).

    Returns:
        ``(sections, n_skipped_lines)``.

    Raises:
        ReplearnInputError: the file is missing, not UTF-8, or has a question
            before the first section header.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ReplearnInputError(f"analogy file {path!r} does not exist; pass path=None for gensim's questions-words.txt")
    sections: list[_Section] = []
    skipped = 0
    try:
        with open(path, encoding="utf-8") as fin:
            for line_no, line in enumerate(fin):
                if line.startswith(": "):
                    sections.append(_Section(line.lstrip(": ").strip()))
                    continue
                if not sections:
                    raise ReplearnInputError(
                        f"{path}: line {line_no + 1} comes before any ': section' header; "
                        "start the file with a line like ': capital-common-countries'"
                    )
                words = line.split()
                if len(words) != 4:
                    skipped += 1
                    continue
                if case_insensitive:
                    words = [w.upper() for w in words]
                sections[-1].questions.append(tuple(words))
    except UnicodeDecodeError as exc:
        raise ReplearnInputError(f"{path} is not valid UTF-8 ({exc}); re-encode it as UTF-8") from exc
    return sections, skipped


# ----------------------------------------------------------------------- result
@dataclass(frozen=True)
class AnalogyResult:
    """Analogy accuracies.

    Attributes:
        semantic: accuracy in [0, 1] over in-vocabulary questions of sections not
            starting with ``gram`` (0.0 when there are none, as gensim reports).
        syntactic: same over sections starting with ``gram``.
        total: accuracy over all in-vocabulary questions -- gensim's returned score.
        n_correct: questions answered correctly.
        n_questions: questions evaluated (all four words in the restricted vocabulary).
        n_oov: questions skipped because a word is outside the restricted vocabulary.
        sections: ``{section name: (n_correct, n_questions)}`` in file order.
    """

    semantic: float
    syntactic: float
    total: float
    n_correct: int
    n_questions: int
    n_oov: int
    sections: dict[str, tuple[int, int]]

    @property
    def score(self) -> float:
        """Correct answers over ALL questions, out-of-vocabulary ones counted wrong, in [0, 1].

        Unlike ``total`` (gensim's accuracy over in-vocabulary questions) it is
        comparable between models with different vocabularies, so it is the
        primary metric for promoting a model in the registry.
        """
        n = self.n_questions + self.n_oov
        return self.n_correct / n if n else 0.0

    @property
    def oov_ratio(self) -> float:
        """Share of questions skipped for OOV words, in [0, 1] (gensim logs it x100)."""
        n = self.n_questions + self.n_oov
        return self.n_oov / n if n else 0.0

    def to_dict(self, prefix: str = "analogy_") -> dict[str, float]:
        """Flat ``{name: number}`` for metric loggers (names use only ``[A-Za-z0-9_.-]``)."""
        out: dict[str, float] = {
            f"{prefix}total": self.total,
            f"{prefix}semantic": self.semantic,
            f"{prefix}syntactic": self.syntactic,
            f"{prefix}n_correct": float(self.n_correct),
            f"{prefix}n_questions": float(self.n_questions),
            f"{prefix}n_oov": float(self.n_oov),
            f"{prefix}oov_ratio": self.oov_ratio,
            f"{prefix}score": self.score,
        }
        for name, (ok, n) in self.sections.items():
            key = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
            out[f"{prefix}section.{key}"] = ok / n if n else 0.0
        return out


def _acc(ok: int, n: int) -> float:
    return ok / n if n else 0.0


# ----------------------------------------------------------------------- driver
def evaluate_analogies(
    kv: KeyedVectors,
    path: str | os.PathLike | None = None,
    restrict_vocab: int | None = 30000,
    case_insensitive: bool = True,
    batch_size: int = 1000,
) -> AnalogyResult:
    """Accuracy of 3CosAdd on a word-analogy file, identical to gensim's
    ``KeyedVectors.evaluate_word_analogies(path, restrict_vocab)``.

    Rules (all gensim's):

    * the vocabulary is ``kv.words[:restrict_vocab]``; with ``case_insensitive``
      words are compared upper-cased and the first (most frequent) case variant
      supplies the vector;
    * a question with any word outside it is skipped and counted in ``n_oov``;
    * the prediction is the best candidate of
      ``most_similar(positive=[b, c], negative=[a], topn=5, restrict_vocab)``
      (a, b, c themselves excluded) whose upper-cased form is not a, b or c;
      if all 5 are case variants of the inputs the 5th is taken.

    Args:
        kv: the vectors, most frequent word first.
        path: analogy file (``": section"`` headers, ``a b c d`` lines); default
            gensim's ``questions-words.txt`` (Mikolov et al. 2013).
        restrict_vocab: size of the candidate / question vocabulary (>= 1);
            ``None`` uses all words.
        case_insensitive: compare upper-cased words.
        batch_size: questions per matrix product.

    Returns:
        AnalogyResult.

    Raises:
        ReplearnInputError: bad file (see ``read_analogies``) or bad ``restrict_vocab``.
    """
    if path is None:
        path = questions_words_path()
    n_vocab = kv.restricted_size(restrict_vocab)
    ok_vocab, canon = _question_vocab(kv.words[:n_vocab], case_insensitive)
    sections, _ = read_analogies(path, case_insensitive=case_insensitive)
    quads, sec_of, n_oov = _encode_questions(sections, ok_vocab)
    correct = _gensim_correct(kv.unit[:n_vocab], quads, canon, batch_size)
    return _tally(sections, sec_of, correct, n_oov)


def _question_vocab(words: list[str], case_insensitive: bool) -> tuple[dict[str, int], np.ndarray]:
    """gensim's ``ok_vocab`` and the canonical row of every candidate.

    Returns:
        ``(ok_vocab, canon)``: ``ok_vocab`` maps each (upper-cased) word to the row
        of its most frequent variant, as gensim builds it; ``canon`` ``(n,) int64``
        is the ``ok_vocab`` row of candidate ``j``'s (upper-cased) form -- two
        candidates are "the same word" for gensim's ignore/correct tests iff their
        canon rows match.
    """
    ok_vocab: dict[str, int] = {}
    for i, w in enumerate(words):
        ok_vocab.setdefault(w.upper() if case_insensitive else w, i)
    if case_insensitive:
        canon = np.fromiter((ok_vocab[w.upper()] for w in words), dtype=np.int64, count=len(words))
    else:
        canon = np.arange(len(words), dtype=np.int64)
    return ok_vocab, canon


def _encode_questions(sections: list[_Section], ok_vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows of the in-vocabulary questions: ``(quads (Q, 4) int64, section of each (Q,) int64, n_oov)``."""
    sec_of: list[int] = []
    quads: list[tuple[int, int, int, int]] = []
    n_oov = 0
    for s, sec in enumerate(sections):
        for q in sec.questions:
            try:
                quads.append((ok_vocab[q[0]], ok_vocab[q[1]], ok_vocab[q[2]], ok_vocab[q[3]]))
                sec_of.append(s)
            except KeyError:
                n_oov += 1
    return np.asarray(quads, dtype=np.int64).reshape(-1, 4), np.asarray(sec_of, dtype=np.int64), n_oov


def _gensim_correct(unit: np.ndarray, quads: np.ndarray, canon: np.ndarray, batch_size: int) -> np.ndarray:
    """``(Q,) bool``: whether gensim's answer to each ``(a, b, c, d)`` question is ``d``.

    gensim walks ``most_similar(positive=[b, c], negative=[a], topn=5)`` (a, b, c
    excluded) and keeps the first candidate that is not a case variant of a, b
    or c; if all of them are, the last one.
    """
    a, b, c, d = quads.T
    k = min(_GENSIM_TOPN, len(unit))
    if len(quads) == 0 or k == 0:
        return np.zeros(len(quads), dtype=bool)
    _, I = exact_topk(_queries(unit, a, b, c), unit, k, "ip", exclude=quads[:, :3],
                      batch=_batch_rows(batch_size, len(unit)))
    valid = I >= 0  # -1: fewer than 5 candidates remain
    cI = canon[np.where(valid, I, 0)]
    keep = valid & (cI != canon[a][:, None]) & (cI != canon[b][:, None]) & (cI != canon[c][:, None])
    last_valid = np.where(valid.any(axis=1), k - 1 - valid[:, ::-1].argmax(axis=1), -1)
    col = np.where(keep.any(axis=1), keep.argmax(axis=1), last_valid)
    pred = np.where(col >= 0, np.take_along_axis(I, np.maximum(col, 0)[:, None], axis=1)[:, 0], -1)
    has = pred >= 0
    correct = np.zeros(len(quads), dtype=bool)
    correct[has] = canon[pred[has]] == d[has]
    return correct


def _tally(sections: list[_Section], sec_of: np.ndarray, correct: np.ndarray, n_oov: int) -> AnalogyResult:
    """Per-section, semantic (sections not starting with ``gram``), syntactic and total accuracies."""
    sec_ok = np.bincount(sec_of, weights=correct, minlength=len(sections))
    sec_n = np.bincount(sec_of, minlength=len(sections))
    per: dict[str, tuple[int, int]] = {}
    sem_ok = sem_n = syn_ok = syn_n = 0
    for s, sec in enumerate(sections):
        ok, n = int(sec_ok[s]), int(sec_n[s])
        prev = per.get(sec.name, (0, 0))
        per[sec.name] = (prev[0] + ok, prev[1] + n)
        if sec.name.startswith("gram"):
            syn_ok, syn_n = syn_ok + ok, syn_n + n
        else:
            sem_ok, sem_n = sem_ok + ok, sem_n + n
    n_correct = int(correct.sum())
    return AnalogyResult(
        semantic=_acc(sem_ok, sem_n),
        syntactic=_acc(syn_ok, syn_n),
        total=_acc(n_correct, len(correct)),
        n_correct=n_correct,
        n_questions=len(correct),
        n_oov=n_oov,
        sections=per,
    )
