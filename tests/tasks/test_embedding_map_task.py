"""The embedding-map task: the probe-word map for word vectors (senses for multi-sense ones), the plain scatter
when no probe is in the vocabulary, and the labelled scatter for images; each logged to the MLflow run."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from prefect import flow

from replearn.infra.tracking import client, experiment_id, tracking_uri
from replearn.lib.store.embeddings_table import EmbeddingsMetadata, write_embeddings
from replearn.tasks.export import embedding_map_task


def png_width(path) -> int:
    """The width in pixels from the PNG's IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", head[16:20])[0]


def table(path, family, keys, x, **columns):
    meta = EmbeddingsMetadata(family=family, dim=x.shape[1], normalized=False, similarity="cos",
                              config=columns.pop("config", {}))
    write_embeddings(path, keys, x, meta, ids=np.arange(len(keys), dtype=np.int64), **columns)
    return str(path)


@pytest.mark.slow
def test_word_maps_fallback_and_image_map(prefect_harness, home):
    uri = tracking_uri(home)
    run_id = client(uri).create_run(experiment_id(uri, "t", home)).info.run_id
    rng = np.random.default_rng(0)
    words = ["king", "queen", "war", "money"] + [f"w{i}" for i in range(196)]
    w2v = table(home / "w2v.parquet", "word2vec", words, rng.standard_normal((200, 8)).astype(np.float32))
    ms_keys = ["bank", "bank"] + words[1:]
    ms = table(home / "ms.parquet", "multisense", ms_keys, rng.standard_normal((201, 8)).astype(np.float32),
               sense=np.array([0, 1] + [0] * 199, dtype=np.int16),
               config={"priors_of_multi_sense_words": {"bank#0": 0.7, "bank#1": 0.3}})
    img = table(home / "img.parquet", "clip", [f"i{i}" for i in range(60)],
                rng.standard_normal((60, 8)).astype(np.float32), label=[str(i % 3) for i in range(40)] + [None] * 20,
                modality=["image"] * 40 + ["text"] * 20)

    @flow
    def maps():
        return [embedding_map_task(w2v, str(home / "a.png"), uri, run_id, probes=["king", "nowhere", "war"]),
                embedding_map_task(w2v, str(home / "b.png"), uri, run_id),                  # default probes
                embedding_map_task(w2v, str(home / "c.png"), uri, run_id, probes=["nowhere", "nothing"]),
                embedding_map_task(ms, str(home / "d.png"), uri, run_id),                   # bank's two senses
                embedding_map_task(img, str(home / "e.png"), uri, run_id)]

    out = maps()
    assert [a.path for a in out] == [str(home / f"{c}.png") for c in "abcde"]
    word_map_px, scatter_px = 1430, 1400                                 # 11 in at 130 dpi; 10 in at 140 dpi
    assert [png_width(a.path) for a in out] == [word_map_px, word_map_px, scatter_px, word_map_px, scatter_px]
    logged = {a.path for a in client(uri).list_artifacts(run_id, "plots")}
    assert {f"plots/{c}.png" for c in "abcde"} <= logged
