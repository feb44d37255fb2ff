"""Typed flow parameters (pydantic): the Prefect UI renders them as a form; the CLI fills them from options."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Word2VecParams(BaseModel):
    """Parameters of the word-vector flow. Defaults match word2vec.c / gensim's skip-gram set-up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    corpus: str | None = Field(None, description="Text file, .gz/.bz2, folder of them, or Parquet; "
                                                 "empty = the embedded default corpus (gensim's Wikipedia excerpt + Lee corpus)")
    text_column: str = Field("text", description="Text column when the corpus is Parquet")
    home: str | None = Field(None, description="Data home for runs, checkpoints and the MLflow store (default ./.replearn)")
    min_count: int = Field(5, ge=1, description="Drop words seen fewer times")
    max_vocab: int | None = Field(None, ge=1, description="Keep at most this many most frequent words")
    dim: int = Field(100, ge=1, le=4096, description="Embedding dimension")
    window: int = Field(5, ge=1, le=50, description="Maximum context window (dynamic)")
    negative: int = Field(5, ge=1, le=50, description="Noise words per positive pair")
    sample: float = Field(1e-3, ge=0.0, lt=1.0, description="Subsampling threshold t (0 = off)")
    epochs: int = Field(5, ge=1, le=1000)
    alpha: float = Field(0.025, gt=0.0, le=1.0, description="Initial learning rate (linear decay)")
    min_alpha: float = Field(0.0001, ge=0.0)
    objective: Literal["negative_sampling", "softmax"] = "negative_sampling"
    threads: int = Field(2, ge=1, le=256)
    seed: int = 1
    max_sentence_tokens: int | None = Field(1000, ge=1, description="Join lines into pseudo-sentences of this many tokens")
    export_matrices: list[Literal["input", "context", "mean"]] = Field(default_factory=lambda: ["input"],
                                                                        description="Matrices to export: V, U, (V+U)/2")
    model_name: str = Field("replearn-word2vec", description="Name in the MLflow model registry")
    probes: list[str] | None = Field(None, description="Words whose nearest neighbours are shown")

    def train_config(self) -> dict:
        """The fields of :class:`replearn.lib.word2vec.config.Word2VecConfig` as a dict."""
        keys = ("dim", "window", "negative", "sample", "epochs", "alpha", "min_alpha", "min_count", "max_vocab",
                "objective", "threads", "seed", "max_sentence_tokens")
        return {k: getattr(self, k) for k in keys}
