"""The word rules as polars kernels: Unicode normalization, lower-casing, regex matching, length filter.

Every document (a line of text, or a row of a Parquet text column) becomes a
list of tokens: normalized (``TokenizerConfig.normalization``, NFKC by
default), lower-cased (Unicode-aware), every non-overlapping match of
``TokenizerConfig.pattern`` (runs of letters by default), kept if it has
``min_len..max_len`` characters (2..15 by default) — the rules of
``gensim.utils.simple_preprocess``, see :mod:`replearn.lib.text.config`.

These kernels are the reference; :mod:`replearn.lib.text.ascii_fast_path`
gives the same tokens faster on pure-ASCII lines. A tokenized block is a
:class:`TokenBlock`: a table of the documents with at least one token, plus
the counts that go into :class:`~replearn.lib.text.config.TokenizeStats`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.token_shards import TOKENS_SCHEMA
from replearn.lib.text.utf8_repair import decode_lines, remove_boms

__all__ = [
    "TokenBlock",
    "token_expr",
    "token_lists",
    "block_from_lists",
    "polars_text_block",
    "tokenize_documents",
]

_NON_ASCII = r"[^\x00-\x7F]"


@dataclass
class TokenBlock:
    """One tokenized block, ready for :class:`~replearn.lib.text.token_shards.ShardWriter`.

    Attributes:
        table: :data:`~replearn.lib.text.token_shards.TOKENS_SCHEMA`, one row per
            document with >= 1 token, in input order.
        tokens: tokens in ``table``.
        invalid_utf8: invalid UTF-8 sequences replaced while decoding the block.
        boms: byte-order marks removed from the block.
        null_documents: null rows skipped (Parquet; text lines are never null).
        empty_documents: non-null rows skipped because they hold no token (Parquet).
    """

    table: pa.Table
    tokens: int
    invalid_utf8: int
    boms: int
    null_documents: int = 0
    empty_documents: int = 0


def _normalize(s: pl.Series, form: str) -> pl.Series:
    """Unicode-normalize only the non-ASCII rows (ASCII is invariant under every form)."""
    idx = s.str.contains(_NON_ASCII).arg_true()
    if len(idx) == 0:
        return s
    return s.scatter(idx, s.gather(idx).str.normalize(form))


def token_expr(config: TokenizerConfig, normalize: bool = False) -> pl.Expr:
    """Expression: column ``text`` (strings) -> ``tokens`` (a list of strings per row).

    Lower-cases (if ``config.lowercase``), extracts every match of
    ``config.pattern`` and keeps those of ``config.min_len..config.max_len``
    characters. Unicode-normalizes every row first if ``normalize``; else the
    caller normalizes (:func:`token_lists` does, on the non-ASCII rows only).
    """
    text = pl.col("text")
    if normalize and config.normalization is not None:
        text = text.str.normalize(config.normalization)
    if config.lowercase:
        text = text.str.to_lowercase()
    tok = pl.element()
    return (
        text.str.extract_all(config.pattern)
        .list.eval(tok.filter(tok.str.len_chars().is_between(config.min_len, config.max_len)))
        .alias("tokens")
    )


def token_lists(s: pl.Series, config: TokenizerConfig, expr: pl.Expr) -> pl.Series:
    """The tokens of each document of ``s``: one list per row, in order, possibly empty.

    ``expr`` is ``token_expr(config)`` (built once per corpus, not per block).
    """
    if config.normalization is not None:
        s = _normalize(s, config.normalization)
    return pl.DataFrame({"text": s}).select(expr).to_series()


def block_from_lists(lists: pl.Series, invalid: int, boms: int) -> TokenBlock:
    """A :class:`TokenBlock` of the non-empty token lists of ``lists``, with the given counts."""
    lists = lists.filter(lists.list.len() > 0)
    n_tokens = int(lists.list.len().sum() or 0)
    table = pa.Table.from_arrays([lists.to_arrow()], names=["tokens"]).cast(TOKENS_SCHEMA)
    return TokenBlock(table, n_tokens, invalid, boms)


def polars_text_block(raw: bytes, config: TokenizerConfig, expr: pl.Expr) -> tuple[pl.Series, int, int]:
    """(token lists of every line, invalid UTF-8 count, BOMs removed) of a text block, all in polars."""
    lines, invalid, boms = decode_lines(raw)
    return token_lists(lines, config, expr), invalid, boms


def tokenize_documents(s: pl.Series, config: TokenizerConfig, expr: pl.Expr) -> TokenBlock:
    """Tokenize a Series of already decoded documents (Parquet rows): BOMs removed and counted, then the word
    rules; null rows and rows without a token are skipped and counted."""
    nulls = s.null_count()
    s, boms = remove_boms(s.fill_null(""))
    block = block_from_lists(token_lists(s, config, expr), 0, boms)
    return dataclasses.replace(block, null_documents=nulls, empty_documents=len(s) - block.table.num_rows - nulls)
