"""One default per setting: for every family, the lib config, the flow parameters (the Prefect form) and the
``replearn run FAMILY`` options agree on each setting's default and range, and every lib setting a user sets
can be set from both the form and the CLI.

The map below is written out by hand on purpose (it does not reuse the generator in flows/param_fields.py), so
a setting that drops out of the parameters, or a default declared a second time, fails here.
"""

from __future__ import annotations

from replearn.lib.metric.sizing import encoder_settings

import dataclasses

import pytest
import typer

from replearn.cli.main import app
from replearn.flows.params import ClipParams, MetricParams, MultisenseParams, Word2VecParams
from replearn.lib.clip.config import ClipConfig, ImageTowerConfig, TextTowerConfig, default_epochs
from replearn.lib.dataclass_config import field_bounds
from replearn.lib.metric.config import AugmentConfig, EncoderConfig, MetricTrainConfig
from replearn.lib.multisense.config import MultiSenseConfig
from replearn.lib.word2vec.config import Word2VecConfig

# (family, params model, lib config, parameter name of each lib field: a rename or a prefix, excluded fields)
# Excluded lib fields are not user settings of the flow:
EXCLUDED = {
    Word2VecConfig: {"chunk_tokens"},  # internal: corpus tokens per training step (loss logging granularity)
    MultiSenseConfig: {"chunk_tokens",  # internal, as above
                       "max_sentence_tokens"},  # provenance: the flow encodes the corpus with its own cap
    MetricTrainConfig: {"augment",  # built from the `augment` switch and the augment_* parameters
                        "device"},  # the flows train on CPU
    EncoderConfig: {"in_size", "in_channels",  # read from the data
                    "channels",  # by image size (encoders.default_channels)
                    "normalize"},  # always on: exported vectors are unit vectors searched by cosine
    AugmentConfig: set(),
    ClipConfig: {"image", "text",  # nested configs: their fields are the image_* / text_* parameters
                 "template_seed",  # the data step holds out caption templates with its own seed
                 "device"},  # the flows train on CPU
    TextTowerConfig: set(),
    ImageTowerConfig: {"in_size", "in_channels"},  # read from the data (grayscale images)
}
FAMILIES = [
    ("word2vec", Word2VecParams, Word2VecConfig, {}, ""),
    ("multisense", MultisenseParams, MultiSenseConfig, {}, ""),
    ("metric", MetricParams, MetricTrainConfig, {}, ""),
    ("metric", MetricParams, EncoderConfig, {"kind": "encoder"}, ""),
    ("metric", MetricParams, AugmentConfig, {}, "augment_"),
    ("clip", ClipParams, ClipConfig, {}, ""),
    ("clip", ClipParams, TextTowerConfig, {"kind": "text_tower"}, "text_"),
    ("clip", ClipParams, ImageTowerConfig, {}, "image_"),
]
# option names that differ from the field name (kept from the CLI before the options were generated)
OPTION_ALIASES = {"export_matrices": "--export"}


def _lib_default(f: dataclasses.Field):
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    return list(value) if isinstance(value, tuple) else value


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _cli_options(family: str) -> dict:
    """The options of ``replearn run FAMILY`` as typer builds them: {parameter name: option}."""
    command = typer.main.get_command(app).commands["run"].commands[family]
    return {p.name: p for p in command.params if p.param_type_name == "option"}


def _settings(config: type, rename: dict, prefix: str):
    for f in dataclasses.fields(config):
        if f.name not in EXCLUDED[config]:
            yield f, rename.get(f.name, prefix + f.name)


@pytest.mark.parametrize("family, model, config, rename, prefix", FAMILIES,
                         ids=[f"{f}-{c.__name__}" for f, _, c, _, _ in FAMILIES])
def test_lib_form_and_cli_defaults_are_equal(family, model, config, rename, prefix):
    options = _cli_options(family)
    for f, name in _settings(config, rename, prefix):
        assert name in model.model_fields, f"{config.__name__}.{f.name} is not settable from the Prefect form"
        info = model.model_fields[name]
        lib = _lib_default(f)
        assert _plain(info.get_default(call_default_factory=True)) == lib, f"{name}: form default != lib default"
        assert name in options, f"{config.__name__}.{f.name} is not settable from `replearn run {family}`"
        cli = options[name].default
        assert (list(cli) if isinstance(cli, (list, tuple)) else cli) == lib, f"--{name}: CLI default != lib default"
        bounds = {type(m).__name__.lower(): getattr(m, type(m).__name__.lower()) for m in info.metadata
                  if type(m).__name__ in ("Ge", "Gt", "Le", "Lt")}
        assert bounds == field_bounds(f), f"{name}: form range {bounds} != lib range {field_bounds(f)}"
        assert f.metadata["help"] in info.description


@pytest.mark.parametrize("family, model", [("word2vec", Word2VecParams), ("multisense", MultisenseParams),
                                           ("metric", MetricParams), ("clip", ClipParams)])
def test_every_form_field_has_a_description_with_its_range_and_a_cli_option(family, model):
    options = _cli_options(family)
    for name, info in model.model_fields.items():
        assert info.description, f"{model.__name__}.{name} has no description"
        bounds = [m for m in info.metadata if type(m).__name__ in ("Ge", "Gt", "Le", "Lt")]
        if bounds:
            assert info.description.endswith(")"), f"{name}: the description does not show the range"
        assert name in options, f"{model.__name__}.{name} has no `replearn run {family}` option"
        flag = OPTION_ALIASES.get(name, "--" + name.replace("_", "-"))
        assert flag in options[name].opts


def test_the_example_description_shows_the_range():
    assert Word2VecParams.model_fields["dim"].description == "Embedding dimension (1..4096)"


def test_train_configs_rebuild_the_lib_defaults():
    """The dicts the flows pass on, from default parameters, are the lib defaults (plus what the flow derives)."""
    assert Word2VecConfig.from_dict(Word2VecParams().train_config()) == Word2VecConfig()
    assert MultiSenseConfig.from_dict(MultisenseParams().train_config()) == MultiSenseConfig()
    metric = MetricTrainConfig.from_dict(MetricParams().train_config())
    assert metric == MetricTrainConfig(augment=AugmentConfig())  # the form's `augment` switch is on by default
    enc = EncoderConfig.from_dict(encoder_settings(MetricParams().encoder_config(), 28))
    assert (enc.kind, enc.dim, enc.normalize) == (EncoderConfig().kind, EncoderConfig().dim, True)
    for size in (8, 28):
        clip = ClipConfig.from_dict(ClipParams().train_config(size))
        assert clip.epochs == default_epochs(size) == ClipConfig(image={"in_size": size}).epochs
        assert clip.text == TextTowerConfig() and clip.image == ImageTowerConfig(in_size=size)
        assert (clip.dim, clip.lr, clip.weight_decay, clip.schedule, clip.seed) == \
               (ClipConfig().dim, ClipConfig().lr, ClipConfig().weight_decay, ClipConfig().schedule, ClipConfig().seed)


def test_the_defaults_chosen_where_they_disagreed():
    """multisense epochs 5 (lib) vs 4 (form, CLI); metric batch 256 vs 128 and miner all vs batch_hard: the
    measured choice (bench/README.md; the metric figures in lib/metric/config.py) is the one everywhere."""
    assert MultiSenseConfig().epochs == MultisenseParams().epochs == 4
    assert MetricTrainConfig().batch_size == MetricParams().batch_size == 128
    assert MetricTrainConfig().miner == MetricParams().miner == "all"


def test_lib_validation_reads_the_declared_ranges():
    with pytest.raises(ValueError, match="dim=5000"):
        Word2VecConfig(dim=5000)
    with pytest.raises(ValueError, match="objective='cbow'"):
        Word2VecConfig(objective="cbow")
    with pytest.raises(ValueError, match="batch_size=1"):
        MetricTrainConfig(batch_size=1)
    with pytest.raises(ValueError, match="erase_prob=2"):
        AugmentConfig(erase_prob=2)
    assert Word2VecConfig(max_vocab=None).max_vocab is None  # None where the annotation allows it


@pytest.mark.parametrize("config", [Word2VecConfig(), MultiSenseConfig(), MetricTrainConfig(augment={}),
                                    EncoderConfig(), AugmentConfig(), ClipConfig(), TextTowerConfig(),
                                    ImageTowerConfig()], ids=lambda c: type(c).__name__)
def test_one_dict_round_trip_for_every_config(config):
    import json

    d = config.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain JSON: nested configs as dicts, tuples as lists
    assert type(config).from_dict({**d, "unknown_key": 1}) == config
