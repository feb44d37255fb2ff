"""Sample text and helpers shared by the tokenizer tests (test_tokenize.py, test_corpus_files.py, ...)."""

from __future__ import annotations

import random
from pathlib import Path

from gensim.utils import simple_preprocess

REPO = Path(__file__).resolve().parents[2]
BOOKS = REPO.parent / "shared" / "data" / "corpus" / "books.txt.gz"

LINES = [
    "The quick brown Fox jumps over the lazy dog.",
    "",
    "123 456 -- !!",
    "Numbers like 42abc and x7y are split; a I o are too short.",
    "Supercalifragilisticexpialidocious is too long, but fifteenletters ok.",
]
EXPECTED = [simple_preprocess(line) for line in LINES if simple_preprocess(line)]


def leftovers(parent: Path) -> list[str]:
    """Temporary (``.tmp-``) or moved-aside (``.old-``) entries left in ``parent``."""
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def random_ascii_lines(n: int, seed: int = 0) -> list[str]:
    """``n`` lines of ASCII words of 1..20 letters, digits and punctuation."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    seps = [" ", "  ", ", ", ". ", "-", "'", "\t", " 123 ", "9", "(", ") ", "!", "/", ":", '"']
    lines = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 30)):
            parts.append("".join(rng.choice(letters) for _ in range(rng.choice([1, 1, 2, 3, 5, 8, 14, 15, 16, 20]))))
            parts.append(rng.choice(seps))
        lines.append("".join(parts))
    return lines
