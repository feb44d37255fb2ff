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
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from replearn.lib.errors import ReplearnInputError
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


def _score_batches(
    unit: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, exclude: bool, batch_size: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(rows, S)``: ``S[i, j] = cos(unit_j, b_i - a_i + c_i)`` for the questions in
    ``rows``; ``S`` is ``(B, N) float32`` with ``-inf`` at a, b, c when ``exclude``."""
    n = unit.shape[0]
    bs = max(1, min(int(batch_size), _MAX_BATCH_ELEMENTS // max(n, 1)))
    for s in range(0, len(a), bs):
        sl = slice(s, min(s + bs, len(a)))
        qa, qb, qc = a[sl], b[sl], c[sl]
        S = _queries(unit, qa, qb, qc) @ unit.T  # (B, D) @ (D, N) -> (B, N)
        if exclude:
            r = np.arange(S.shape[0])
            S[r, qa] = -np.inf
            S[r, qb] = -np.inf
            S[r, qc] = -np.inf
        yield sl, S


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
    pred = np.empty(len(a), dtype=np.int64)
    for sl, S in _score_batches(unit, a, b, c, exclude, batch_size):
        pred[sl] = np.argmax(S, axis=1)
    return pred


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
    words = kv.words[:n_vocab]
    unit = kv.unit[:n_vocab]

    # ok_vocab: (upper-cased) word -> row of its most frequent variant, as gensim builds it.
    ok_vocab: dict[str, int] = {}
    for i, w in enumerate(words):
        ok_vocab.setdefault(w.upper() if case_insensitive else w, i)
    # canon[j]: the ok_vocab row of candidate j's (upper-cased) form; two candidates
    # are "the same word" for gensim's ignore/correct tests iff their canon rows match.
    if case_insensitive:
        canon = np.fromiter((ok_vocab[w.upper()] for w in words), dtype=np.int64, count=n_vocab)
    else:
        canon = np.arange(n_vocab, dtype=np.int64)

    sections, _ = read_analogies(path, case_insensitive=case_insensitive)
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

    Q = np.asarray(quads, dtype=np.int64).reshape(-1, 4)
    a, b, c, d = Q[:, 0], Q[:, 1], Q[:, 2], Q[:, 3]
    correct = np.zeros(len(Q), dtype=bool)
    for sl, S in _score_batches(unit, a, b, c, True, batch_size):
        qa, qb, qc, qd = a[sl], b[sl], c[sl], d[sl]
        rows = np.arange(S.shape[0])
        pending = np.ones(S.shape[0], dtype=bool)
        pred = np.full(S.shape[0], -1, dtype=np.int64)
        # gensim walks the top 5 (a, b, c excluded) and keeps the first candidate that is
        # not a case variant of a, b or c; mostly the argmax, so peel off only when needed.
        for _ in range(min(_GENSIM_TOPN, n_vocab)):
            r = rows[pending]
            if r.size == 0:
                break
            j = np.argmax(S[r], axis=1)
            alive = np.isfinite(S[r, j])  # -inf: fewer candidates than 5 remain
            r, j = r[alive], j[alive]
            pred[r] = j
            cj = canon[j]
            variant = (cj == qa[r]) | (cj == qb[r]) | (cj == qc[r])
            pending[:] = False
            pending[r[variant]] = True
            S[r[variant], j[variant]] = -np.inf
        has = pred >= 0
        correct[sl][has] = canon[pred[has]] == qd[has]

    sec_ok = np.bincount(np.asarray(sec_of, dtype=np.int64), weights=correct, minlength=len(sections))
    sec_n = np.bincount(np.asarray(sec_of, dtype=np.int64), minlength=len(sections))
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
        total=_acc(n_correct, len(Q)),
        n_correct=n_correct,
        n_questions=len(Q),
        n_oov=n_oov,
        sections=per,
    )
