"""Family -> query engine (the MLflow-free class behind each registered pyfunc), imported only when asked for:
word vectors need numpy + FAISS, metric and CLIP also torch."""

from __future__ import annotations

import importlib

#: family -> (module, class) of its engine
ENGINES = {"word2vec": ("replearn.serving.word_vectors_engine", "WordVectorsEngine"),
           "metric": ("replearn.serving.image_engine", "ImageNeighboursEngine"),
           "clip": ("replearn.serving.clip_engine", "ClipSearchEngine"),
           "multisense": ("replearn.serving.multisense_engine", "MultiSenseEngine")}


def engine_class(family: str) -> type:
    """The engine class of ``family``.

    Raises:
        KeyError: an unknown family.
    """
    module, name = ENGINES[family]
    return getattr(importlib.import_module(module), name)
