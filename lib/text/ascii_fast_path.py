"""The ASCII fast path: a block of text lines tokenized with numpy straight on the bytes.

With the default pattern (:data:`~replearn.lib.text.config.LETTERS`) the lines
that are pure ASCII are tokenized with numpy on the raw bytes: on ASCII text
``[^\\W\\d_]+`` is exactly ``[A-Za-z]+``, NFKC (any form) is the identity,
Unicode lower-casing is ASCII lower-casing (``byte | 0x20`` on letters), and
there are no invalid bytes nor BOMs to count. The lines holding a byte
>= 0x80 are decoded and tokenized by the polars kernels of
:mod:`replearn.lib.text.word_rules` (normalizing each of them; normalizing
ASCII is a no-op) and merged back in line order, so the result is the same
as tokenizing every line with polars. Decoding, NFKC and lower-casing are
line-local (``"\\n"`` is a boundary for all three), so doing them on the
non-ASCII lines joined by ``"\\n"`` changes nothing.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from replearn.lib.text.config import LETTERS, TokenizerConfig
from replearn.lib.text.token_shards import TOKENS_SCHEMA
from replearn.lib.text.utf8_repair import decode_utf8
from replearn.lib.text.word_rules import TokenBlock, block_from_lists, polars_text_block, token_expr

__all__ = ["MAX_SLOW_SHARE", "tokenize_text_block"]

#: Above this share of non-ASCII lines a block is tokenized by polars alone.
MAX_SLOW_SHARE = 0.25
_TOKEN_LIST = TOKENS_SCHEMA.field("tokens").type  # list<element: string>


def tokenize_text_block(raw: bytes, config: TokenizerConfig, expr: pl.Expr) -> TokenBlock:
    """Tokenize a block of UTF-8 text, one document per line (split at ``b"\\n"``).

    Pure-ASCII lines go through numpy, the others through polars (see the
    module docstring); the result equals
    ``block_from_lists(*polars_text_block(raw, config, expr))``. Blocks with
    more than :data:`MAX_SLOW_SHARE` non-ASCII lines, patterns other than
    :data:`~replearn.lib.text.config.LETTERS`, and blocks of 2 GiB or more go to
    :func:`~replearn.lib.text.word_rules.polars_text_block` whole.

    Args:
        raw: undecoded bytes, possibly with invalid UTF-8 and BOMs.
        config: the word rules.
        expr: ``token_expr(config)``.

    Returns:
        A :class:`~replearn.lib.text.word_rules.TokenBlock` of the lines with
        >= 1 token, in line order, with the invalid UTF-8 and BOM counts.
    """
    n = len(raw)
    if config.pattern != LETTERS or n >= 2**31 - 1:
        return block_from_lists(*polars_text_block(raw, config, expr))
    a = np.frombuffer(raw, dtype=np.uint8)
    newlines, line_starts, slow = _split_lines(a)
    if slow.size > MAX_SLOW_SHARE * line_starts.size:
        return block_from_lists(*polars_text_block(raw, config, expr))
    line_ends = np.append(newlines, n)
    slow_spans = list(zip(line_starts[slow].tolist(), line_ends[slow].tolist()))

    values, starts = _ascii_tokens(a, slow_spans, config)
    first_token = np.searchsorted(starts, line_starts)  # index in values of each line's first token
    counts = np.diff(first_token, append=starts.size)  # tokens per line (0 on non-ASCII lines so far)
    invalid = boms = 0
    if slow_spans:
        slow_values, slow_counts, invalid, boms = _slow_line_tokens(raw, slow_spans, config)
        counts[slow] = slow_counts
        first_token[slow] = np.cumsum(slow_counts) - slow_counts  # index in slow_values
    docs = np.flatnonzero(counts)
    list_offsets = np.zeros(docs.size + 1, dtype=np.int32)
    np.cumsum(counts[docs], dtype=np.int32, out=list_offsets[1:])
    if slow_spans and docs.size:
        values = _interleave(values, slow_values, slow, docs, first_token, counts, line_starts.size)
    tokens = pa.ListArray.from_arrays(pa.array(list_offsets), values, type=_TOKEN_LIST)
    table = pa.Table.from_arrays([tokens], schema=TOKENS_SCHEMA)
    return TokenBlock(table, int(list_offsets[-1]), invalid, boms)


def _split_lines(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions of ``b"\\n"``, (L,) line starts, sorted indices of the lines holding a byte >= 0x80) of bytes ``a``.

    Lines as ``str.split("\\n")``: the text after the last ``"\\n"`` is a line, maybe empty.
    """
    newlines = np.flatnonzero(a == 10)
    line_starts = np.empty(newlines.size + 1, dtype=np.int64)
    line_starts[0] = 0
    line_starts[1:] = newlines + 1
    high = np.flatnonzero(a >= 0x80)
    slow = np.unique(np.searchsorted(newlines, high)) if high.size else high  # lines with non-ASCII bytes
    return newlines, line_starts, slow


def _ascii_tokens(a: np.ndarray, slow_spans: list[tuple[int, int]],
                  config: TokenizerConfig) -> tuple[pa.StringArray, np.ndarray]:
    """(tokens, their start bytes in ``a``) of the ASCII lines: runs of letters of ``min_len..max_len`` bytes."""
    letter = _letter_mask(a, slow_spans)
    starts, lengths = _keep_runs(letter, config.min_len, config.max_len)
    chars = np.compress(letter[1:-1], a)
    del letter
    if config.lowercase:
        chars |= np.uint8(0x20)
    offsets = np.zeros(starts.size + 1, dtype=np.int32)
    np.cumsum(lengths, dtype=np.int32, out=offsets[1:])
    values = pa.StringArray.from_buffers(starts.size, pa.py_buffer(offsets), pa.py_buffer(chars))
    return values, starts


def _letter_mask(a: np.ndarray, slow_spans: list[tuple[int, int]]) -> np.ndarray:
    """(N + 2,) bool mask over the N bytes ``a``: ``mask[i + 1]`` is True where ``a[i]`` is an ASCII letter
    on an ASCII line (not one of ``slow_spans``); False pads both ends."""
    letter = np.empty(a.size + 2, dtype=bool)
    letter[0] = letter[-1] = False
    scratch = np.bitwise_or(a, np.uint8(0x20))  # ASCII letters to lower case
    scratch -= np.uint8(ord("a"))  # wraps around: letters are now 0..25
    np.less(scratch, np.uint8(26), out=letter[1:-1])
    del scratch
    for s, e in slow_spans:
        letter[s + 1 : e + 1] = False
    return letter


def _keep_runs(letter: np.ndarray, min_len: int, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(start bytes, lengths) of the runs of letters of ``min_len..max_len`` bytes, in order.

    The runs too short or too long are dropped whole: their letters are cleared
    from ``letter`` (in place), so the mask then holds the kept tokens only.
    """
    runs = np.flatnonzero(letter[1:] != letter[:-1]).reshape(-1, 2)  # run i of letters: a[runs[i, 0]:runs[i, 1]]
    starts = runs[:, 0]
    lengths = runs[:, 1] - starts
    good = lengths >= min_len
    good &= lengths <= max_len
    dropped = np.flatnonzero(~good)
    if dropped.size:
        _clear_runs(letter, starts[dropped], lengths[dropped])
        starts, lengths = starts[good], lengths[good]
    return starts, lengths


def _clear_runs(letter: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> None:
    """Set ``letter[s + 1 : s + 1 + length]`` to False for each run (vectorised, no Python loop)."""
    letter[starts + 1] = False  # the first letter (all of it for the many 1-letter runs)
    longer = np.flatnonzero(lengths > 1)
    if longer.size:
        starts, lengths = starts[longer], lengths[longer]
        first = np.cumsum(lengths) - lengths
        total = int(first[-1] + lengths[-1])
        letter[np.repeat(starts - first, lengths) + np.arange(1, total + 1)] = False


def _slow_line_tokens(raw: bytes, slow_spans: list[tuple[int, int]],
                      config: TokenizerConfig) -> tuple[pa.Array, np.ndarray, int, int]:
    """(all tokens, (S,) tokens per line, invalid UTF-8 count, BOMs removed) of the non-ASCII lines, by polars."""
    text, invalid, boms = decode_utf8(b"\n".join([raw[s:e] for s, e in slow_spans]))
    # every line here is non-ASCII (or ASCII once its BOMs are gone, which normalizes to itself)
    lists = pl.DataFrame({"text": text.split("\n")}).select(token_expr(config, normalize=True))
    lists = lists.to_series().to_arrow()
    counts = lists.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    return lists.flatten().cast(pa.string()), counts, invalid, boms


def _interleave(values: pa.Array, slow_values: pa.Array, slow: np.ndarray, docs: np.ndarray,
                first_token: np.ndarray, counts: np.ndarray, n_lines: int) -> pa.Array:
    """The tokens of the documents ``docs`` in line order, from runs of ASCII and non-ASCII documents.

    ``first_token[line]`` indexes ``values`` for an ASCII line and
    ``slow_values`` for a line in ``slow``; ``counts[line]`` is its token count.
    """
    is_slow = np.zeros(n_lines, dtype=bool)
    is_slow[slow] = True
    doc_slow = is_slow[docs]
    cuts = (np.flatnonzero(doc_slow[1:] != doc_slow[:-1]) + 1).tolist()
    first, last = docs[[0, *cuts]], docs[[c - 1 for c in cuts] + [docs.size - 1]]
    run_start, run_stop = first_token[first], first_token[last] + counts[last]
    return pa.concat_arrays([
        (slow_values if s else values).slice(b, e - b)
        for s, b, e in zip(doc_slow[[0, *cuts]].tolist(), run_start.tolist(), run_stop.tolist())
    ])
