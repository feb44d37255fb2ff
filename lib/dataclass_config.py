"""Frozen-dataclass configs: each setting declared once (default, one-line help, range), checked and round-tripped.

A lib config declares every field with :func:`setting`::

    dim: int = setting(100, help="Embedding dimension", ge=1, le=4096)

The metadata is the single source of the setting: :func:`range_checks` validates
it in ``__post_init__``, and the flow parameters (the Prefect form) and the CLI
options are generated from it (``replearn.flows.param_fields``). :class:`Config`
gives every config the same plain-dict round trip (``to_dict`` / ``from_dict``,
nested configs included) and checkpoint key (``training_key``).
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

T = TypeVar("T")

BOUNDS = ("ge", "gt", "le", "lt")


def setting(default: Any = dataclasses.MISSING, *, help: str, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, in_training_key: bool = True,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field carrying its one-line ``help`` and its range (``ge``/``gt``/``le``/``lt``, inclusive or not).

    Args:
        default / default_factory: as for :func:`dataclasses.field`.
        help: one line, no range (the range is appended by :func:`describe`).
        in_training_key: False for settings that change speed or placement, not the trained weights
            (``threads``, ``device``): :meth:`Config.training_key` leaves them out.
    """
    meta = {"help": help, **{k: v for k, v in zip(BOUNDS, (ge, gt, le, lt)) if v is not None}}
    if not in_training_key:
        meta["in_training_key"] = False
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def field_bounds(f: dataclasses.Field) -> dict[str, float]:
    """``{"ge": 1, "le": 4096}``: the declared bounds of a :func:`setting` field (empty if none)."""
    return {k: f.metadata[k] for k in BOUNDS if k in f.metadata}


def range_text(bounds: Mapping[str, float]) -> str:
    """Words for a range: ``1..4096``, ``>= 1``, ``> 0``, ``0 <= x < 1``; "" for no bounds."""
    lo = (">=", bounds["ge"]) if "ge" in bounds else (">", bounds["gt"]) if "gt" in bounds else None
    hi = ("<=", bounds["le"]) if "le" in bounds else ("<", bounds["lt"]) if "lt" in bounds else None
    if lo and hi:
        if lo[0] == ">=" and hi[0] == "<=":
            return f"{lo[1]:g}..{hi[1]:g}"
        return f"{lo[1]:g} {'<=' if lo[0] == '>=' else '<'} x {hi[0]} {hi[1]:g}"
    if lo or hi:
        op, v = lo or hi
        return f"{op} {v:g}"
    return ""


def with_range(help: str, bounds: Mapping[str, float]) -> str:
    """``help`` followed by its range in parentheses: "Embedding dimension (1..4096)"."""
    text = range_text(bounds)
    return f"{help} ({text})" if text else help


def describe(f: dataclasses.Field) -> str:
    """The field's help with its range, e.g. "Embedding dimension (1..4096)"; the name if it has no help."""
    return with_range(f.metadata.get("help", f.name.replace("_", " ")), field_bounds(f))


def type_hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass (``Literal[...]``, ``int | None``)."""
    return typing.get_type_hints(cls)


def _members(tp: Any) -> tuple[Any, ...]:
    """The alternatives of a union (``int | None`` -> (int, NoneType)), or ``(tp,)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def allows_none(tp: Any) -> bool:
    """True for ``X | None``."""
    return type(None) in _members(tp)


def literal_choices(tp: Any) -> tuple[Any, ...]:
    """The values of a ``Literal[...]`` (also inside ``X | None``); () for other types."""
    return tuple(v for m in _members(tp) if typing.get_origin(m) is Literal for v in typing.get_args(m))


def _number_ok(v: Any, tp: Any) -> bool:
    kinds = _members(tp)
    if isinstance(v, bool):
        return bool in kinds
    if int in kinds and float not in kinds:
        return isinstance(v, numbers.Integral)
    return isinstance(v, numbers.Real)


def _within(v: Any, b: Mapping[str, float]) -> bool:
    return (("ge" not in b or v >= b["ge"]) and ("gt" not in b or v > b["gt"])
            and ("le" not in b or v <= b["le"]) and ("lt" not in b or v < b["lt"]))


def range_checks(config: Any) -> dict[str, bool]:
    """``{field: ok}`` for every field with declared bounds or ``Literal`` choices, in field order.

    A bounded field must hold a number of its type (an ``int`` field an integer,
    not a bool) inside its bounds; a ``Literal`` field one of its values; ``None``
    passes where the annotation allows it. Pass the result, with any cross-field
    checks added, to :func:`check_fields`.
    """
    hints = type_hints(type(config))
    checks: dict[str, bool] = {}
    for f in dataclasses.fields(config):
        tp, bounds, choices = hints[f.name], field_bounds(f), literal_choices(hints[f.name])
        if not bounds and not choices:
            continue
        v = getattr(config, f.name)
        if v is None:
            checks[f.name] = allows_none(tp)
        elif choices:
            checks[f.name] = v in choices
        else:
            checks[f.name] = _number_ok(v, tp) and _within(v, bounds)
    return checks


class ConfigError(ValueError):
    """A config field out of its range, or inconsistent with another field.

    Attributes:
        config: the class name (``Word2VecConfig``).
        fields: ``{field: value}`` of every failing field, in field order.
    """

    def __init__(self, config: str, fields: dict[str, Any]):
        self.config, self.fields = config, fields
        values = ", ".join(f"{n}={v!r}" for n, v in fields.items())
        super().__init__(f"invalid {config}: {values}; see the {config} docstring for ranges")


def check_fields(config: Any, checks: Mapping[str, bool]) -> None:
    """Raise :class:`ConfigError` naming every field whose check is False, with its value.

    Raises:
        ConfigError (a ValueError): "invalid <Class>: a=1, b=2; see the <Class> docstring for ranges".
    """
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise ConfigError(type(config).__name__, {n: getattr(config, n) for n in bad})


def from_known_fields(cls: type[T], d: Mapping[str, Any]) -> T:
    """Build dataclass ``cls`` from ``d``, ignoring keys that are not fields (older or newer checkpoints)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def plain(value: Any) -> Any:
    """JSON-ready copy: dataclasses -> dicts (recursively), tuples and lists -> lists, dicts copied."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Config:
    """Mixin for the frozen dataclass configs: plain-dict round trip and the checkpoint key.

    ``to_dict`` and ``from_dict`` are inverses (nested configs become dicts and
    are rebuilt by the owner's ``__post_init__``); ``training_key`` leaves out the
    fields declared with ``setting(..., in_training_key=False)``.
    """

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict of every field (nested configs as dicts, tuples as lists)."""
        return plain(self)

    @classmethod
    def from_dict(cls: type[T], d: Mapping[str, Any]) -> T:
        """Rebuild from :meth:`to_dict` output, ignoring unknown keys (older or newer checkpoints)."""
        return from_known_fields(cls, d)

    def training_key(self) -> dict:
        """The fields that change the trained weights, used to match a checkpoint for resuming."""
        d = self.to_dict()
        for f in dataclasses.fields(self):
            if not f.metadata.get("in_training_key", True):
                d.pop(f.name)
        return d
