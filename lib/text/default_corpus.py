"""The embedded default corpus: English text shipped inside the gensim wheel, so a first run needs no download."""

from __future__ import annotations

import bz2
import os
from collections.abc import Iterator
from pathlib import Path

from replearn.lib.errors import CorpusError
from replearn.lib.store.atomic import atomic_path

__all__ = ["WIKI_EXCERPT", "LEE_CORPUS", "default_corpus"]

#: gensim test-data files that make up the default corpus.
WIKI_EXCERPT = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_CORPUS = "lee_background.cor"


def _wiki_paragraphs(path: str) -> Iterator[str]:
    """Article paragraphs of a MediaWiki dump, via gensim's own parser and markup filter."""
    from gensim.corpora.wikicorpus import IGNORED_NAMESPACES, extract_pages, filter_wiki

    with bz2.open(path, "rb") as f:
        for title, text, _pageid in extract_pages(f, filter_namespaces=("0",)):
            if not text or text.lstrip()[:9].lower() == "#redirect":
                continue
            if any(title.startswith(ns + ":") for ns in IGNORED_NAMESPACES):
                continue
            for line in filter_wiki(text).split("\n"):
                line = line.replace("'''", "").replace("''", "").strip()
                if line and not (line.startswith("=") and line.endswith("=")):  # skip headings
                    yield line


def default_corpus(dest: Path) -> Path:
    """Build (once) the embedded default corpus as one UTF-8 text file at ``dest``.

    Made only from text shipped inside the gensim wheel, no downloads:

    * the English Wikipedia excerpt ``enwiki-latest-pages-articles1.xml-
      p000000010p000030302-shortened.bz2`` (106 articles), parsed with
      ``gensim.corpora.wikicorpus.extract_pages`` (main namespace only,
      redirects and ``Category:``/``File:``/... pages skipped) and cleaned with
      ``filter_wiki``; one paragraph per line, headings dropped;
    * ``lee_background.cor`` (Lee et al. 2005 news corpus, 300 documents), one
      document per line.

    About 500k words (simple_preprocess tokens). The file is written to a
    temporary sibling and renamed, so ``dest`` is either absent or complete.

    Args:
        dest: path of the text file to create; its parent is created if needed.

    Returns:
        ``dest``; if it already exists it is returned without rebuilding.

    Raises:
        CorpusError: gensim's test data is not installed.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    from gensim.test.utils import datapath

    wiki, lee = datapath(WIKI_EXCERPT), datapath(LEE_CORPUS)
    for p in (wiki, lee):
        if not os.path.exists(p):
            raise CorpusError(
                f"default corpus source not found: {p}; reinstall gensim (pip install --force-reinstall gensim) "
                "or pass your own corpus path"
            )
    with atomic_path(dest) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as out:
        for para in _wiki_paragraphs(wiki):
            out.write(para + "\n")
        with open(lee, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line:
                    out.write(line + "\n")
    return dest
