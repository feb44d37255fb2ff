"""The embedded corpora, so a first run needs no download: the books corpus (the default) and gensim's small text.

* ``books`` (the default): public-domain Project Gutenberg books (fiction,
  poetry, folklore, westerns, quotation dictionaries), about 5.1 million words,
  shipped gzipped inside this package (``lib/text/corpora/books.txt.gz``, 11 MB).
  Large enough for word vectors a person recognises (money -> cash, wages).
* ``gensim``: about 0.5 million words of English text shipped inside the gensim
  wheel (a Wikipedia excerpt and the Lee news corpus), built once into the data
  home by :func:`default_corpus`; fast, for tests and quick tries.

A flow's ``corpus`` parameter takes a path, or one of these names
(:func:`resolve_corpus`).
"""

from __future__ import annotations

import bz2
import os
from collections.abc import Iterator
from pathlib import Path

from replearn.lib.errors import CorpusError
from replearn.lib.store.atomic import atomic_path

__all__ = ["WIKI_EXCERPT", "LEE_CORPUS", "BOOKS", "DEFAULT_CORPUS", "EMBEDDED_CORPORA", "default_corpus",
           "embedded_corpus", "names_embedded", "resolve_corpus"]

#: gensim test-data files that make up the default corpus.
WIKI_EXCERPT = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_CORPUS = "lee_background.cor"
#: The books corpus inside this package.
BOOKS = Path(__file__).resolve().parent / "corpora" / "books.txt.gz"
#: The names a ``corpus`` parameter accepts instead of a path, with what each is.
EMBEDDED_CORPORA = {
    "books": "public-domain Project Gutenberg books, 5.1 M words (the default)",
    "gensim": "the English text in the gensim wheel (Wikipedia excerpt + Lee news corpus), 0.5 M words, fast",
}
#: The corpus a text flow reads when none is given.
DEFAULT_CORPUS = "books"


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
    """Build (once) the embedded ``gensim`` corpus as one UTF-8 text file at ``dest``.

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


def embedded_corpus(name: str, data_dir: Path) -> Path:
    """The file of the embedded corpus ``name`` (a key of :data:`EMBEDDED_CORPORA`).

    Args:
        name: ``"books"`` or ``"gensim"``.
        data_dir: where the ``gensim`` corpus is built once (``<home>/data``).

    Raises:
        CorpusError: an unknown name (the message lists the names), or as :func:`default_corpus`.
    """
    if name == "books":
        if not BOOKS.is_file():
            raise CorpusError(f"the embedded books corpus {BOOKS} is missing from this installation; reinstall "
                              "replearn (pip install -e .) or pass your own corpus path")
        return BOOKS
    if name == "gensim":
        return default_corpus(Path(data_dir) / "gensim-corpus.txt")
    raise CorpusError(f"no embedded corpus named {name!r}; embedded corpora: {', '.join(EMBEDDED_CORPORA)}")


def names_embedded(corpus: str | None) -> bool:
    """Whether a ``corpus`` parameter names an embedded corpus (empty, or a name of :data:`EMBEDDED_CORPORA` that
    is not an existing path: a user's own file or folder of that name wins)."""
    return not corpus or (corpus in EMBEDDED_CORPORA and not Path(corpus).exists())


def resolve_corpus(corpus: str | None, data_dir: Path) -> Path:
    """The corpus path a flow reads: ``corpus`` as a path when it exists, else an embedded corpus of that name;
    :data:`DEFAULT_CORPUS` when ``corpus`` is None or empty.

    Raises:
        CorpusError: neither an existing path nor an embedded corpus name.
    """
    if not names_embedded(corpus):
        return Path(corpus)
    return embedded_corpus(corpus or DEFAULT_CORPUS, data_dir)
