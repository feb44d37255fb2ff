"""UTF-8 repair and byte-order-mark removal, with their counts.

Bad bytes are counted, not fatal: invalid UTF-8 is replaced by U+FFFD (as
``bytes.decode("utf-8", errors="replace")`` does) and counted; byte-order marks
(U+FEFF) are removed wherever they occur, not only at the start of a file, and
counted. The counts end up in :class:`~replearn.lib.text.config.TokenizeStats`
(``invalid_utf8``, ``boms_removed``).
"""

from __future__ import annotations

import polars as pl

__all__ = ["BOM", "decode_utf8", "decode_lines", "remove_boms"]

#: The byte-order mark, U+FEFF (``b"\xef\xbb\xbf"`` in UTF-8).
BOM = "\ufeff"
_REPLACEMENT_BYTES = "\ufffd".encode("utf-8")  # b"\xef\xbf\xbd"


def decode_utf8(raw: bytes) -> tuple[str, int, int]:
    """Decode UTF-8 bytes; returns (text, invalid UTF-8 count, BOMs removed).

    Invalid UTF-8 is replaced by U+FFFD; replacements are counted as U+FFFD
    characters after decoding minus genuine U+FFFD already encoded in the
    bytes. Every U+FEFF (byte-order mark, anywhere) is removed and counted.
    """
    text = raw.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    if invalid:
        invalid -= raw.count(_REPLACEMENT_BYTES)
    boms = text.count(BOM)
    if boms:
        text = text.replace(BOM, "")
    return text, invalid, boms


def decode_lines(raw: bytes) -> tuple[pl.Series, int, int]:
    """Decode a block into a Series of lines; returns (lines, invalid UTF-8 count, BOMs removed).

    As :func:`decode_utf8`; lines are split at ``"\\n"`` only, as ``str.split("\\n")``
    does, inside polars (no Python string per line).
    """
    text, invalid, boms = decode_utf8(raw)
    lines = pl.Series("text", [text], dtype=pl.String).str.split("\n", inclusive=False).explode()
    return lines, invalid, boms


def remove_boms(s: pl.Series) -> tuple[pl.Series, int]:
    """Remove every U+FEFF from the strings of ``s``; returns (strings, BOMs removed).

    For documents that are already decoded (Parquet input), so there is no
    invalid UTF-8 to count.
    """
    boms = int(s.str.count_matches(BOM, literal=True).sum() or 0)
    if boms:
        s = s.str.replace_all(BOM, "", literal=True)
    return s, boms
