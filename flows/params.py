"""Typed flow parameters (pydantic): the Prefect UI renders them as a form; the CLI generates its options from them.

Every training setting comes from its lib config (``Word2VecConfig``,
``MultiSenseConfig``, ``MetricTrainConfig`` + ``EncoderConfig`` + ``AugmentConfig``,
``ClipConfig`` + tower configs): same default, description and range, generated
by :mod:`replearn.flows.param_fields`. Only the flow's own fields (data source,
data home, registry name, runner, probes, ...) are declared here. Each
``*_EXCLUDED`` tuple names the lib fields that are not parameters, and why.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator
from typing_extensions import Annotated

from replearn.flows.param_fields import FieldDef, flow_field, lib_fields, lib_names, params_model
from replearn.lib.clip.config import ClipConfig, ImageTowerConfig, TextTowerConfig, batch_size_for, default_epochs
from replearn.lib.dataclass_config import ConfigError, plain
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.config import (TRIPLET_LOSSES, AugmentConfig, EncoderConfig, MetricTrainConfig,
                                        without_mining)
from replearn.lib.multisense.config import MultiSenseConfig
from replearn.lib.word2vec.config import Word2VecConfig
from replearn.serving.registered import INIT_FROM_PATTERN

# Registry / run names: letters, digits, '.', '_' and '-', starting with a letter or digit; no '/', no '..':
# a name can never climb out of the data home or address another registry namespace.
SafeName = Annotated[str, StringConstraints(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")]

# --------------------------------------------------------------------------- lib fields that are not parameters

WORD2VEC_EXCLUDED = ("chunk_tokens",)  # internal: tokens per training step (loss logging granularity)
MULTISENSE_EXCLUDED = ("chunk_tokens",  # internal: tokens per training step
                       "max_sentence_tokens")  # provenance: the flow encodes the corpus with its own cap
METRIC_EXCLUDED = ("augment",  # the `augment` switch and the augment_* fields below build it
                   "device")  # the flow trains on CPU
ENCODER_EXCLUDED = ("in_size", "in_channels",  # read from the data
                    "channels",  # by image size: default_channels()
                    "normalize")  # always: the exported vectors are unit vectors, searched by cosine
CLIP_EXCLUDED = ("image", "text",  # nested: their fields are image_* / text_* parameters
                 "template_seed",  # the flow's data step holds out templates with its own seed
                 "device")  # the flow trains on CPU
IMAGE_TOWER_EXCLUDED = ("in_size", "in_channels")  # read from the data (grayscale)

# --------------------------------------------------------------------------- shared flow-only fields


def _home() -> FieldDef:
    return flow_field(str | None, None, help="Data home for runs, checkpoints and the MLflow store (default "
                                             "$REPLEARN_HOME or ./.replearn)")


def _model_name(default: str) -> FieldDef:
    return flow_field(SafeName, default, help="Name in the MLflow model registry")


#: A warm start's initial learning rate (bench/warm_start.py, books corpus halves: analogy 0.161 at 0.004, 0.150 at
#: 0.01, 0.106 at 0.025, 0.148 at 0.0015).
WARM_ALPHA = 0.004
InitFrom = Annotated[str, StringConstraints(max_length=200, pattern=INIT_FROM_PATTERN)]


#: What a warm start continues from, per family (the help of the ``init_from`` field).
_INIT_FROM_HELP = {
    "text": "on the corpus files it has not seen: its words keep their vectors, new words are added, the learning "
            "rate restarts at warm_alpha; no new file, nothing registered",
    "images": "its encoder's weights are the starting point (same encoder settings needed)",
}


def _init_from(family: str, data: str) -> FieldDef:
    return flow_field(InitFrom | None, None, help=(
        f"Continue training from a registered model, NAME@ALIAS or NAME@VERSION (replearn-{family}@champion; "
        f"@latest: the newest version, promoted or not), {_INIT_FROM_HELP[data]}. While this run's own model name "
        "has no version yet, the run trains from scratch (a schedule's first run). Empty = train from scratch"))


def _corpus_fields() -> dict[str, FieldDef]:
    return {"corpus": flow_field(str | None, None, help="Text file, .gz/.bz2, folder of them, or Parquet; or an "
                                                        "embedded corpus: 'books' (Project Gutenberg, 5.1 M words; "
                                                        "the default when empty) or 'gensim' (0.5 M words, fast)"),
            "text_column": flow_field(str, "text", help="Text column when the corpus is Parquet"),
            "home": _home(),
            "runner": flow_field(Literal["local", "dask", "ray"], "local", help=(
                "Where the sharded stages run (tokenization partitions; word2vec's export shards): 'local' "
                "(Prefect's thread pool in the flow's process), 'dask' (prefect-dask) or 'ray' (prefect-ray, "
                "pip install -e '.[ray]'); the outputs are the same")),
            "address": flow_field(str | None, None, help="Existing cluster: Dask scheduler (tcp://host:8786) or Ray "
                                                         "(ray://host:10001); empty = a local cluster for this run"),
            "workers": flow_field(int, 2, help="Worker processes of the local Dask / Ray cluster; also the number of "
                                               "word2vec's export shards under dask / ray", ge=1, le=1024),
            "warm_alpha": flow_field(float, WARM_ALPHA, help=(
                "Initial learning rate of a warm start (--init-from), in place of alpha: low, so that the new text "
                "refines the model rather than overwriting it (books corpus: 0.004 kept 5.5 analogy points that "
                "0.025 lost)"), gt=0.0, le=1.0)}


class FlowParams(BaseModel):
    """Base of the flow parameters: frozen, unknown fields refused, the lib configs' own rules checked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def _pick(self, names: dict[str, str]) -> dict:
        """``{lib name: value}`` for a ``{lib name: parameter name}`` map (tuples as lists: plain JSON)."""
        return {lib: plain(getattr(self, param)) for lib, param in names.items()}

    def _lib_configs(self) -> list[tuple[type, dict, dict[str, dict[str, str]]]]:
        """``(lib config class, its fields, {config class name: {lib name: parameter name}})`` per lib config the
        flow builds from these parameters; none in the base class."""
        return []

    @model_validator(mode="after")
    def _lib_rules(self) -> FlowParams:
        """Build the lib configs now, so that a rule between settings (``min_alpha <= alpha``, ``warmup_epochs <
        epochs``) fails when the parameters are made (the Prefect form, the CLI), naming the parameters, and not
        minutes into a run."""
        for cls, values, names in self._lib_configs():
            try:
                cls.from_dict(values)
            except (ConfigError, ReplearnInputError) as e:
                if not hasattr(e, "fields"):  # a rule with its own words (e.g. infonce needs augmentation)
                    raise ValueError(str(e)) from None
                fields = type(self).model_fields
                bad = [(names.get(e.config, {}).get(f, f), v) for f, v in e.fields.items()]
                raise ValueError("; ".join(
                    f"{p}={v!r} does not fit: {fields[p].description if p in fields else 'see ' + e.config}"
                    for p, v in bad)) from None
        return self


class _CorpusParams(FlowParams):
    """The text families' common parameters: the corpus, the data home, and the runner of the sharded stages."""

    @field_validator("address", check_fields=False)
    @classmethod
    def _address_needs_a_cluster_runner(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v and info.data.get("runner", "local") == "local":
            raise ValueError("an address is a Dask or Ray cluster: use it with runner 'dask' or 'ray'")
        return v or None

    @field_validator("probes", check_fields=False)
    @classmethod
    def _probes_normalised_like_the_corpus(cls, v: list[str] | None) -> list[str] | None:
        """``SHIP`` finds ``ship``: probes go through the corpus's normalisation (NFKC, lower case), as queries do
        (lib/text/query.py)."""
        from replearn.lib.text.query import query_word

        return None if v is None else [w for w in (query_word(p) for p in v) if w]

    def check_inputs(self) -> None:
        """Fail in a second on a missing or empty corpus, before any flow starts.

        Raises:
            ReplearnInputError (CorpusError): the corpus path does not exist or holds no readable file.
        """
        from pathlib import Path

        from replearn.lib.text.corpus_files import list_corpus_files
        from replearn.lib.text.default_corpus import names_embedded

        if not names_embedded(self.corpus):
            list_corpus_files(Path(self.corpus))


# --------------------------------------------------------------------------- word2vec

_W2V_TRAIN = lib_fields(Word2VecConfig, exclude=WORD2VEC_EXCLUDED)
_W2V_NAMES = lib_names(Word2VecConfig, _W2V_TRAIN)


class _Word2VecParams(_CorpusParams):
    """Parameters of the word-vector flow. Defaults match word2vec.c / gensim's skip-gram set-up."""

    def train_config(self) -> dict:
        """The fields of :class:`replearn.lib.word2vec.config.Word2VecConfig` as a dict."""
        return self._pick(_W2V_NAMES)

    def _lib_configs(self) -> list:
        return [(Word2VecConfig, self.train_config(), {"Word2VecConfig": _W2V_NAMES})]

    @model_validator(mode="after")
    def _warm_start_needs_negative_sampling(self) -> _Word2VecParams:
        if self.init_from and self.objective != "negative_sampling":
            raise ValueError("init_from continues negative-sampling models only: leave objective 'softmax' out, "
                             "or init_from")
        return self


Word2VecParams = params_model("Word2VecParams", _Word2VecParams, {
    **_corpus_fields(),
    **_W2V_TRAIN,
    "export_matrices": flow_field(list[Literal["input", "context", "mean"]], help="Matrices to export: V, U, (V+U)/2",
                                  default_factory=lambda: ["input"]),
    "model_name": _model_name("replearn-word2vec"),
    "init_from": _init_from("word2vec", "text"),
    "probes": flow_field(list[str] | None, None, help="Words whose nearest neighbours are shown"),
})

# --------------------------------------------------------------------------- multi-sense

_MS_TRAIN = lib_fields(MultiSenseConfig, exclude=MULTISENSE_EXCLUDED)
_MS_NAMES = lib_names(MultiSenseConfig, _MS_TRAIN)


class _MultisenseParams(_CorpusParams):
    """Parameters of the multi-sense word-vector flow (a latent sense per occurrence, learned prior p(z|x))."""

    def train_config(self) -> dict:
        """Fields of :class:`replearn.lib.multisense.config.MultiSenseConfig`."""
        return self._pick(_MS_NAMES)

    def _lib_configs(self) -> list:
        return [(MultiSenseConfig, self.train_config(), {"MultiSenseConfig": _MS_NAMES})]

    @model_validator(mode="after")
    def _warm_start_without_pseudo_words(self) -> _MultisenseParams:
        if self.init_from and self.pseudo_pairs:
            raise ValueError("init_from trains on the new corpus files only, and pseudo-words merge word pairs of the "
                             "training corpus (a vocabulary the model to continue never had): set pseudo_pairs to 0, "
                             "or leave init_from out")
        return self


MultisenseParams = params_model("MultisenseParams", _MultisenseParams, {
    **_corpus_fields(),
    **_MS_TRAIN,
    "pseudo_pairs": flow_field(int, 0, help="Merge this many pairs of unrelated, similarly frequent words into "
                                            "pseudo-words and report how well the posterior recovers them (0 = off)",
                               ge=0, le=100),
    "probes": flow_field(list[str] | None, None, help="Ambiguous words whose senses' neighbours are shown"),
    "model_name": _model_name("replearn-multisense"),
    "init_from": _init_from("multisense", "text"),
})

# --------------------------------------------------------------------------- metric learning

_METRIC_TRAIN = lib_fields(MetricTrainConfig, exclude=METRIC_EXCLUDED)
_METRIC_NAMES = lib_names(MetricTrainConfig, _METRIC_TRAIN)
_ENCODER = lib_fields(EncoderConfig, exclude=ENCODER_EXCLUDED, rename={"kind": "encoder"})
_ENCODER_NAMES = lib_names(EncoderConfig, _ENCODER, rename={"kind": "encoder"})
_AUGMENT = lib_fields(AugmentConfig, prefix="augment_")
_AUGMENT_NAMES = lib_names(AugmentConfig, _AUGMENT, prefix="augment_")


class _MetricParams(FlowParams):
    """Parameters of the metric-learning flow (train on seen classes, evaluate retrieval on unseen ones)."""

    def train_config(self) -> dict:
        """Fields of :class:`replearn.lib.metric.config.MetricTrainConfig` (``augment`` as a dict or None). With
        ``mining`` batch the mining fields, which such a run ignores, are left out (the lib defaults fill them):
        its stage and checkpoint keys stay those of a run made before index mining existed."""
        triplet = self.loss in TRIPLET_LOSSES
        return without_mining({**self._pick(_METRIC_NAMES), "miner": self.miner if triplet else "all",
                               "augment": self._pick(_AUGMENT_NAMES) if (self.loss == "infonce" or self.augment)
                               else None})

    def encoder_config(self) -> dict:
        """The user's fields of :class:`replearn.lib.metric.config.EncoderConfig` (``kind``, ``dim``); the train
        stage adds what the image size decides (:func:`replearn.lib.metric.sizing.encoder_settings`)."""
        return self._pick(_ENCODER_NAMES)

    def _lib_configs(self) -> list:
        names = {"MetricTrainConfig": _METRIC_NAMES, "AugmentConfig": _AUGMENT_NAMES, "EncoderConfig": _ENCODER_NAMES}
        return [(MetricTrainConfig, self.train_config(), names), (EncoderConfig, self.encoder_config(), names)]


MetricParams = params_model("MetricParams", _MetricParams, {
    "data": flow_field(str, "digits", help="'digits' (scikit-learn 8x8), 'mnist:<folder>' (IDX test set), a folder "
                                           "with one sub-folder per class, or Parquet"),
    "image_column": flow_field(str, "image", help="Parquet column of image bytes or paths"),
    "label_column": flow_field(str, "label", help="Parquet column of labels"),
    "train_classes": flow_field(int, 5, help="The first N classes train the encoder; the rest are evaluated", ge=1),
    "home": _home(),
    **_METRIC_TRAIN,
    **_ENCODER,
    "augment": flow_field(bool, True, help="Train on randomly distorted views (small rotation, scale, shift, "
                                           "erasing, noise; the augment_* ranges); InfoNCE always does"),
    **_AUGMENT,
    "model_name": _model_name("replearn-metric"),
    "init_from": _init_from("metric", "images"),
})

# --------------------------------------------------------------------------- CLIP

_CLIP_TRAIN = lib_fields(ClipConfig, exclude=CLIP_EXCLUDED)
_CLIP_NAMES = lib_names(ClipConfig, _CLIP_TRAIN)
_TEXT = lib_fields(TextTowerConfig, rename={"kind": "text_tower"}, prefix="text_")
_TEXT_NAMES = lib_names(TextTowerConfig, _TEXT, rename={"kind": "text_tower"}, prefix="text_")
_IMAGE = lib_fields(ImageTowerConfig, exclude=IMAGE_TOWER_EXCLUDED, prefix="image_")
_IMAGE_NAMES = lib_names(ImageTowerConfig, _IMAGE, prefix="image_")


class _ClipParams(FlowParams):
    """Parameters of the CLIP-style two-tower flow (image tower + text tower in one embedding space)."""

    def train_config(self, image_size: int) -> dict:
        """Fields of :class:`replearn.lib.clip.model.ClipConfig` for images of ``image_size`` pixels
        (epochs and batch size by :func:`~replearn.lib.clip.model.default_epochs` and
        :func:`~replearn.lib.clip.model.batch_size_for`). With ``mining`` batch the mining fields are left out (the
        lib defaults fill them), so a batch run's stage and checkpoint keys are those of a run made before index
        mining existed."""
        return without_mining({**self._pick(_CLIP_NAMES), "image": {"in_size": image_size, **self._pick(_IMAGE_NAMES)},
                               "text": self._pick(_TEXT_NAMES), "epochs": self.epochs or default_epochs(image_size),
                               "batch_size": batch_size_for(image_size, self.batch_size)})

    def most_epochs(self) -> int:
        """``epochs``, or the largest default (:func:`~replearn.lib.clip.model.default_epochs` of the smallest
        images): how many caption draws the data step makes before the image size is known."""
        return self.epochs or default_epochs(1)

    def _lib_configs(self) -> list:
        names = {"ClipConfig": _CLIP_NAMES, "TextTowerConfig": _TEXT_NAMES, "ImageTowerConfig": _IMAGE_NAMES}
        return [(ClipConfig, self.train_config(28), names)]  # the rules do not depend on the image size


ClipParams = params_model("ClipParams", _ClipParams, {
    "data": flow_field(str, "digits", help="'digits' (scikit-learn 8x8, generated captions), 'mnist:<folder>' (IDX "
                                           "test set, generated captions), or Parquet / CSV of (image, caption)"),
    "image_column": flow_field(str, "image", help="Column of image bytes or paths (Parquet / CSV)"),
    "caption_column": flow_field(str, "caption", help="Column of captions (Parquet / CSV)"),
    "home": _home(),
    **_TEXT,
    **_IMAGE,
    **_CLIP_TRAIN,
    "n_test": flow_field(float, 0.2, help="Fraction of pairs held out for evaluation", gt=0, lt=1),
    "model_name": _model_name("replearn-clip"),
    "init_from": _init_from("clip", "images"),
})


class PipelineParams(FlowParams):
    """The whole pipeline: word vectors, then image metric learning, then the image-text model (each optional)."""

    word2vec: Word2VecParams | None = Field(default_factory=Word2VecParams, description="Word vectors (None = skip)")
    metric: MetricParams | None = Field(default_factory=MetricParams, description="Image metric learning (None = skip)")
    clip: ClipParams | None = Field(default_factory=ClipParams, description="Image-text model (None = skip)")
    multisense: MultisenseParams | None = Field(None, description="Multi-sense word vectors (None = skip)")
