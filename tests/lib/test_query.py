"""lib/text/query: a query goes through the corpus's token rules (the polars tokenizer's, checked against it)."""

from __future__ import annotations

import unicodedata

import polars as pl

from replearn.lib.text.config import TokenizerConfig
from replearn.lib.text.query import query_tokens, query_word, tokenizer_of
from replearn.lib.text.word_rules import token_expr, token_lists

TEXTS = ["ČESKÁ republika, Praha 2024!", unicodedata.normalize("NFD", "česká řeka"), "ＦＵＬＬ width Ｉｎｆｏ",
         "The river-bank's water_level x", "Straße İstanbul ǅemal", ""]


def test_query_tokens_equal_the_corpus_tokenizer():
    cfg = TokenizerConfig()
    want = token_lists(pl.Series(TEXTS), cfg, token_expr(cfg)).to_list()
    assert [query_tokens(t, cfg) for t in TEXTS] == want


def test_query_word_finds_the_corpus_token():
    assert query_word("ČESKÁ") == "česká" == query_word(unicodedata.normalize("NFD", "česká"))
    assert query_word("  King ") == "king"
    assert query_word("King", TokenizerConfig(lowercase=False)) == "King"
    assert query_tokens(None) == []


def test_tokenizer_of_recorded_settings():
    assert tokenizer_of(None) == TokenizerConfig()
    cfg = tokenizer_of({"lowercase": False, "normalization": "NFC", "min_len": 2, "max_len": 15, "unknown": 1})
    assert cfg.lowercase is False and cfg.normalization == "NFC"


def test_word_vectors_engine_normalises_queries():
    import numpy as np

    from replearn.lib.store.faiss_index import build_index
    from replearn.lib.vectors import KeyedVectors
    from replearn.serving.word_vectors_engine import WordVectorsEngine

    rng = np.random.default_rng(0)
    words = ["česká", "praha", "brno", "ostrava"]
    vectors = rng.normal(size=(4, 8)).astype(np.float32)
    engine = WordVectorsEngine(KeyedVectors(words, vectors), build_index(vectors, "cos", "Flat", ids=np.arange(4)))
    assert engine.neighbours(["ČESKÁ"], [], topn=2) == engine.neighbours(["česká"], [], topn=2)
    assert engine.neighbours([unicodedata.normalize("NFD", "Česká")], [], topn=2)[0][0] in words[1:]
