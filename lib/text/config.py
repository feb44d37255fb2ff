"""The tokenizer's settings (:class:`TokenizerConfig`) and its report (:class:`TokenizeStats`).

Word rules
----------
The defaults of :class:`TokenizerConfig` reproduce the word rules of
``gensim.utils.simple_preprocess(doc)`` (gensim 4.x, ``gensim/utils.py``):
lower-case, maximal runs of letters (no digits), keep tokens of 2..15
characters. Known differences, all on inputs other than plain ASCII words:
``simple_preprocess`` treats ``_`` as a letter (``foo_bar`` is one token, and
tokens starting with ``_`` are dropped), while here ``_`` separates tokens;
NFKC normalization is applied first (``ﬁ`` -> ``fi``); and polars' regex
engine (Rust ``regex``) counts combining marks as word characters where
Python's ``re`` does not. The rules are applied by
:mod:`replearn.lib.text.word_rules` (and, for ASCII lines,
:mod:`replearn.lib.text.ascii_fast_path`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import polars as pl

__all__ = ["LETTERS", "NORMALIZATION_FORMS", "TokenizerConfig", "TokenizeStats"]

#: Unicode normalization forms accepted by :attr:`TokenizerConfig.normalization`.
NORMALIZATION_FORMS = ("NFC", "NFKC", "NFD", "NFKD")
#: The default pattern, runs of letters: on ASCII text exactly ``[A-Za-z]+``, which
#: lets :func:`replearn.lib.text.ascii_fast_path.tokenize_text_block` tokenize ASCII
#: lines with numpy on the raw bytes.
LETTERS = r"[^\W\d_]+"


@dataclass(frozen=True)
class TokenizerConfig:
    """How text becomes tokens.

    The defaults reproduce the word rules of ``gensim.utils.simple_preprocess``
    (lower-case; maximal runs of letters, no digits; 2..15 characters) — see the
    module docstring for the few differences on non-ASCII text and ``_``.

    Attributes:
        lowercase: lower-case the text before matching (Unicode-aware).
        normalization: Unicode normalization form applied first, one of
            ``"NFC"``, ``"NFKC"``, ``"NFD"``, ``"NFKD"``, or ``None`` for none.
        pattern: a regex in Rust ``regex`` syntax (polars' engine: no
            look-around, no back-references); every non-overlapping match is a
            token. Default ``[^\\W\\d_]+``: runs of letters.
        min_len: shortest token kept, in characters (Unicode code points), >= 1.
        max_len: longest token kept, in characters, >= ``min_len``. Longer
            tokens are dropped, not truncated (as in ``simple_preprocess``).
        text_column: the string column holding documents in Parquet input.

    Raises:
        ValueError: a bound is out of range, the normalization form is unknown,
            the pattern does not compile in polars, or ``text_column`` is empty.
    """

    lowercase: bool = True
    normalization: str | None = "NFKC"
    pattern: str = LETTERS
    min_len: int = 2
    max_len: int = 15
    text_column: str = "text"

    def __post_init__(self) -> None:
        if self.min_len < 1:
            raise ValueError(f"min_len must be >= 1, got {self.min_len}")
        if self.max_len < self.min_len:
            raise ValueError(f"max_len must be >= min_len ({self.min_len}), got {self.max_len}")
        if self.normalization is not None and self.normalization not in NORMALIZATION_FORMS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATION_FORMS} or None, got {self.normalization!r}"
            )
        if not self.text_column:
            raise ValueError("text_column must be a non-empty column name")
        try:
            pl.Series([""]).str.extract_all(self.pattern)
        except Exception as e:  # polars raises ComputeError for a bad regex
            raise ValueError(
                f"pattern {self.pattern!r} does not compile in polars' regex engine "
                f"(Rust regex syntax: no look-around or back-references): {e}"
            ) from e


@dataclass(frozen=True)
class TokenizeStats:
    """What :func:`replearn.lib.text.tokenize.tokenize_corpus` read and wrote.

    Attributes:
        files: input files read (>= 1).
        documents: documents (rows) written, i.e. non-empty lines / rows with
            at least one token.
        tokens: tokens written (>= 1).
        invalid_utf8: invalid UTF-8 sequences replaced by U+FFFD (text input
            only; Parquet strings are already decoded).
        boms_removed: byte-order marks (U+FEFF) removed, wherever they occurred.
        shards: shard file names inside the output folder, in order.
        null_documents: Parquet rows whose text is null, skipped.
        empty_documents: Parquet rows whose text holds no token, skipped.
    """

    files: int
    documents: int
    tokens: int
    invalid_utf8: int
    boms_removed: int
    shards: tuple[str, ...]
    null_documents: int = 0
    empty_documents: int = 0

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict (``shards`` as a list)."""
        d = dataclasses.asdict(self)
        d["shards"] = list(self.shards)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TokenizeStats":
        """Inverse of :meth:`to_dict`; keys other than the fields (e.g. ``path``) are ignored."""
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name != "shards" and f.name in d},
                   shards=tuple(d["shards"]))
