"""Pydantic fields generated from the lib configs, so each training setting has one default, help and range.

A lib config declares a setting once (``replearn.lib.dataclass_config.setting``);
:func:`lib_fields` turns it into a pydantic field with the same type, default,
bounds (``ge``/``gt``/``le``/``lt``) and a description that shows the range
("Embedding dimension (1..4096)"). :func:`flow_field` declares a flow-only field
(data source, registry name, runner) the same way, and :func:`params_model`
assembles a frozen parameters model (the Prefect form; the CLI options are
generated from it in turn).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel, Field, create_model

from replearn.lib.dataclass_config import describe, field_bounds, type_hints, with_range

FieldDef = tuple[Any, Any]  # (annotation, pydantic FieldInfo), as create_model takes it


def lib_fields(config: type, *, exclude: Collection[str] = (), rename: Mapping[str, str] | None = None,
               prefix: str = "") -> dict[str, FieldDef]:
    """Pydantic field definitions for the fields of the lib config dataclass ``config``, in declaration order.

    Args:
        config: a dataclass whose fields are declared with ``setting(...)``.
        exclude: lib field names not to expose (internal settings, or ones the flow derives from the data).
        rename: lib name -> parameter name (e.g. ``{"kind": "encoder"}``).
        prefix: put before every name not renamed (e.g. ``"augment_"`` for a nested config).

    Returns:
        ``{parameter name: (type, Field(default, description=help (range), ge=..., ...))}``.
    """
    rename = rename or {}
    hints = type_hints(config)
    out: dict[str, FieldDef] = {}
    for f in dataclasses.fields(config):
        if f.name in exclude:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[rename.get(f.name, prefix + f.name)] = (hints[f.name], Field(default, description=describe(f),
                                                                         **field_bounds(f)))
    return out


def lib_names(config: type, fields: Mapping[str, FieldDef], *, rename: Mapping[str, str] | None = None,
              prefix: str = "") -> dict[str, str]:
    """``{lib field name: parameter name}`` for the fields of ``config`` that :func:`lib_fields` exposed."""
    rename = rename or {}
    names = {f.name: rename.get(f.name, prefix + f.name) for f in dataclasses.fields(config)}
    return {lib: param for lib, param in names.items() if param in fields}


def flow_field(annotation: Any, default: Any = ..., *, help: str, default_factory: Any = None,
               **bounds: float) -> FieldDef:
    """A flow-only parameter (not a lib setting): its description shows its range as the lib ones do."""
    kw = {"default_factory": default_factory} if default_factory is not None else {"default": default}
    return annotation, Field(description=with_range(help, bounds), **kw, **bounds)


def params_model(name: str, base: type[BaseModel], fields: Mapping[str, FieldDef]) -> type[BaseModel]:
    """The parameters model ``name``: ``base``'s config, validators and methods, ``fields`` in this order.

    ``base`` declares no fields of its own (its validators use ``check_fields=False``);
    the model keeps ``base``'s docstring and is importable from ``base``'s module.
    """
    model = create_model(name, __base__=base, __module__=base.__module__, __doc__=base.__doc__, **fields)
    model.__qualname__ = name
    return model
