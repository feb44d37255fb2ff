"""The corpus's token rules applied to a query: a searched word, or the context of a word to disambiguate.

The vocabulary holds tokens as the tokenizer made them (Unicode-normalised, lower-cased; lib/text/word_rules.py
applies the same :class:`~replearn.lib.text.config.TokenizerConfig` to whole corpora with polars). A query must
go through the same rules, or ``ČESKÁ`` and an NFD-encoded ``česká`` miss the token ``česká``. A searched word
is normalised in plain Python (``unicodedata``: a search imports no polars); a context is tokenised by the
corpus tokenizer's own code.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Mapping

from replearn.lib.text.config import TokenizerConfig

__all__ = ["query_word", "query_tokens", "tokenizer_of"]


def query_word(word: str, config: TokenizerConfig = TokenizerConfig()) -> str:
    """``word`` as the tokenizer would have written it: ``config.normalization`` (NFKC by default), then
    lower-cased if ``config.lowercase``; surrounding whitespace removed. The word is kept whole (no pattern
    split), so an unknown word stays recognisable in the error."""
    w = str(word).strip()
    if config.normalization is not None:
        w = unicodedata.normalize(config.normalization, w)
    return w.lower() if config.lowercase else w


def query_tokens(text: str | None, config: TokenizerConfig = TokenizerConfig()) -> list[str]:
    """The tokens of ``text`` exactly as the corpus tokenizer makes them (its own polars code,
    :func:`~replearn.lib.text.word_rules.token_lists`: Python's ``re`` splits on combining marks where it does
    not); [] for None."""
    if text is None:
        return []
    import polars as pl

    from replearn.lib.text.word_rules import token_expr, token_lists

    return token_lists(pl.Series([str(text)]), config, token_expr(config)).to_list()[0]


def tokenizer_of(rules: Mapping | None) -> TokenizerConfig:
    """The :class:`TokenizerConfig` of a model's recorded tokenizer settings (the ``tokenizer`` entry of an
    embeddings table's config); unknown keys are ignored, missing ones take the defaults, None gives the
    defaults."""
    names = {f.name for f in dataclasses.fields(TokenizerConfig)}
    return TokenizerConfig(**{k: v for k, v in (rules or {}).items() if k in names})
