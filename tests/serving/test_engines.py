"""Each family's MLflow-free engine answers exactly as its registered pyfunc (saved and loaded through MLflow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from replearn.lib.store.embeddings_table import EmbeddingsMetadata, write_embeddings
from replearn.lib.store.faiss_index import build_index, save_index
from replearn.serving.engines import ENGINES, engine_class


def _table(tmp_path, family, keys, vectors, **columns):
    emb = write_embeddings(tmp_path / "e.parquet", keys, vectors,
                           EmbeddingsMetadata(family=family, dim=vectors.shape[1], normalized=False, similarity="cos"),
                           **columns)
    idx = save_index(build_index(vectors, "cos"), tmp_path / "index.faiss", metric="cos", factory="Flat")
    return {"embeddings": str(emb), "index": str(idx), "index_meta": str(tmp_path / "index.json")}


def _word2vec(tmp_path):
    rng = np.random.default_rng(0)
    arts = _table(tmp_path, "word2vec", [f"w{i}" for i in range(200)], rng.normal(size=(200, 16)).astype(np.float32))
    return arts, [{"positive": "w1", "topn": 5}, {"positive": "w3 w4", "negative": "w7", "topn": 3}]


def _png(tmp_path, size):
    p = tmp_path / "query.png"
    Image.fromarray((np.random.default_rng(1).random((size, size)) * 255).astype(np.uint8)).save(p)
    return str(p)


def _metric(tmp_path):
    from replearn.lib.metric.config import MetricTrainConfig
    from replearn.lib.metric.encoder_file import save_encoder
    from replearn.lib.metric.encoders import EncoderConfig, build_encoder

    config = EncoderConfig(kind="mlp", in_size=8, channels=(8,), dim=4)
    torch.manual_seed(0)
    save_encoder(tmp_path / "encoder.pt", build_encoder(config), config, MetricTrainConfig())
    rng = np.random.default_rng(0)
    arts = _table(tmp_path, "metric", [f"img{i}" for i in range(40)], rng.normal(size=(40, 4)).astype(np.float32),
                  label=[str(i % 3) for i in range(40)])
    return {**arts, "encoder": str(tmp_path / "encoder.pt")}, [{"id": 3, "topn": 4},
                                                                {"image": _png(tmp_path, 8), "topn": 2}]


def _clip(tmp_path):
    from replearn.lib.clip.config import TextTowerConfig
    from replearn.lib.clip.image_tower import ImageTowerConfig
    from replearn.lib.clip.model import ClipConfig, build_model, model_state

    captions = ["a handwritten one", "a handwritten two", "a handwritten three"]
    model = build_model(ClipConfig(dim=8, image=ImageTowerConfig(in_size=8, channels=(4,)),
                                   text=TextTowerConfig(width=8)), captions)
    torch.save(model_state(model), tmp_path / "clip.pt")
    rng = np.random.default_rng(0)
    keys = [f"img{i}" for i in range(20)] + captions
    vectors = rng.normal(size=(len(keys), 8)).astype(np.float32)
    arts = _table(tmp_path, "clip", keys, vectors, modality=["image"] * 20 + ["text"] * 3,
                  label=[str(i % 3) for i in range(20)] + [None] * 3)
    return {**arts, "model": str(tmp_path / "clip.pt")}, [{"text": "a handwritten two", "topn": 5},
                                                          {"image": _png(tmp_path, 8), "topn": 2},
                                                          {"id": 4, "topn": 3}]


def _multisense(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_toy", Path(__file__).parents[1] / "lib" / "test_multisense_model.py")
    toy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy)                      # the multi-sense tests' toy model (4 words, 5 senses)
    path = toy.toy_model().save(tmp_path / "multisense")
    return {"model": str(path)}, [{"word": "bank", "context": "the river", "topn": 2}, {"word": "money"},
                                  {"word": "bank", "context": "zzqx"}]


FIXTURES = {"word2vec": _word2vec, "metric": _metric, "clip": _clip, "multisense": _multisense}


@pytest.mark.filterwarnings("ignore:.*input example was not provided")
@pytest.mark.parametrize("family", sorted(ENGINES))
def test_engine_answers_like_the_registered_pyfunc(family, tmp_path):
    import mlflow.pyfunc

    from replearn.tasks.register import MODELS, _model_code

    artifacts, queries = FIXTURES[family](tmp_path)
    model_class, spec = MODELS[family]
    saved = tmp_path / "model"
    mlflow.pyfunc.save_model(str(saved), python_model=str(_model_code(model_class, tmp_path)), artifacts=artifacts,
                             signature=spec.SIGNATURE, pip_requirements=["replearn"])
    pyfunc = mlflow.pyfunc.load_model(str(saved), suppress_warnings=True)
    engine = engine_class(family).load(artifacts)
    lazy = engine_class(family).load(artifacts, eager=False)   # the CLI's: encoders loaded on first use
    assert engine.family == family and model_class.engine_class is engine_class(family)
    for q in queries:
        want = pyfunc.predict(pd.DataFrame([q]))
        for e in (engine, lazy):
            got = pd.DataFrame(e.answer([q]), columns=list(e.COLUMNS))
            assert len(got) > 0
            pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_the_engines_bad_queries_say_what_the_pyfunc_says(tmp_path):
    from mlflow.exceptions import MlflowException

    from replearn.serving.query import ask
    from replearn.serving.query_errors import QueryError
    from replearn.serving.word_vectors_model import WordVectorsModel

    artifacts, _ = _word2vec(tmp_path)
    engine = engine_class("word2vec").load(artifacts)
    model = WordVectorsModel()
    model.engine = engine
    for bad in ({"positive": "zzz"}, {"positive": "w1", "topn": 0}):
        with pytest.raises(MlflowException) as served:
            model.predict(None, pd.DataFrame([bad]))
        with pytest.raises(QueryError) as fast:
            ask(engine, [bad])
        assert str(fast.value) == served.value.message and isinstance(fast.value, ValueError)
