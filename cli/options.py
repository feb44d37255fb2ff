"""CLI options generated from a flow's parameters model: every field an option, with its default and help (range).

``replearn run FAMILY`` takes exactly the fields of the family's parameters model
(:mod:`replearn.flows.params`, itself generated from the lib configs): the option
is the field name with dashes (``--text-tower``), or an alias from
:data:`ALIASES` where the CLI had a shorter name before; lists are repeatable
(``--probes king --probes queen``, or ``--probes king queen`` through
``expand_multi_value_options``); booleans are ``--x/--no-x``; ``Literal`` fields
are strings checked by the model, whose choices the help lists.
"""

from __future__ import annotations

import inspect
from pathlib import Path
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, Literal, Optional

import typer
from pydantic import BaseModel
from rich.markup import escape

# field name -> option name, where the CLI's name differs from the field's
ALIASES: dict[str, str] = {"export_matrices": "export"}


def flag(field: str) -> str:
    """The option of a parameters field: ``--export`` for ``export_matrices``, else ``--text-tower`` style."""
    return "--" + ALIASES.get(field, field.replace("_", "-"))


def _split_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return tp, False


def _scalar(tp: Any) -> Any:
    """The click-friendly type of one value: ``Literal`` -> str, ``Annotated[str, ...]`` -> str."""
    if typing.get_origin(tp) is Annotated:
        return _scalar(typing.get_args(tp)[0])
    if typing.get_origin(tp) is Literal:
        return type(typing.get_args(tp)[0])
    return tp


def is_list(tp: Any) -> bool:
    """True for ``list[...]`` / ``tuple[X, ...]`` fields (also inside ``X | None``): repeatable options."""
    return typing.get_origin(_split_optional(tp)[0]) in (list, tuple)


def cli_type(tp: Any) -> Any:
    """The typer annotation for a pydantic field type: ``list[Literal[...]] | None`` -> ``Optional[list[str]]``."""
    base, optional = _split_optional(tp)
    if typing.get_origin(base) in (list, tuple):
        base = list[_scalar(typing.get_args(base)[0])]
    else:
        base = _scalar(base)
    return Optional[base] if optional else base


def choices(tp: Any) -> tuple[Any, ...]:
    """The values a ``Literal`` field (or a list of them) accepts; () otherwise."""
    base, _ = _split_optional(tp)
    if typing.get_origin(base) in (list, tuple):
        base = typing.get_args(base)[0]
    return typing.get_args(base) if typing.get_origin(base) is Literal else ()


def _default(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def option_parameters(model: type[BaseModel]) -> list[inspect.Parameter]:
    """One keyword parameter per field of ``model``, annotated with its ``typer.Option`` (name, help, default)."""
    out = []
    for name, info in model.model_fields.items():
        tp = cli_type(info.annotation)
        help = info.description or ""
        if choices(info.annotation):
            help += f" [{'|'.join(map(str, choices(info.annotation)))}]"
        if is_list(info.annotation):
            help += " (repeatable)"
        decl = flag(name)
        if tp is bool:
            decl = f"{decl}/--no-{decl[2:]}"
        option = typer.Option(decl, help=escape(help))  # "[a|b]", ".[ray]": text, not rich markup
        out.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[tp, option],
                                     default=_default(info.get_default(call_default_factory=True))))
    return out


#: ``--json PATH`` of every ``run`` command: the flow's summary, also written as JSON.
JSON_OUT = inspect.Parameter(
    "json_out", inspect.Parameter.KEYWORD_ONLY, default=None,
    annotation=Annotated[Optional[Path], typer.Option("--json", help="Also write the summary as JSON here")])


def generated_command(func: Callable[..., None], model: type[BaseModel],
                      extra: Sequence[inspect.Parameter] = (JSON_OUT,)) -> Callable[..., None]:
    """``func`` (taking ``json_out`` and ``**options``) with a signature typer reads: ``extra`` (by default
    ``--json``) first, then the model's options."""
    params = [*extra, *option_parameters(model)]
    func.__signature__ = inspect.Signature(params)
    func.__annotations__ = {p.name: p.annotation for p in params}
    return func


def field_values(model: type[BaseModel], options: dict[str, Any]) -> dict[str, Any]:
    """The options typer parsed, as the model's field values: an empty list for a field whose default is None
    (no ``--probes`` given) becomes None, so the flow keeps its default behaviour."""
    out = {}
    for name, info in model.model_fields.items():
        value = options[name]
        if isinstance(value, (list, tuple)) and not value and info.get_default(call_default_factory=True) is None:
            value = None
        out[name] = value
    return out


def list_flags(models: Iterable[type[BaseModel]]) -> tuple[str, ...]:
    """The options of every list field of ``models`` (``--export``, ``--probes``, ...), each once."""
    return tuple(dict.fromkeys(flag(n) for m in models for n, info in m.model_fields.items()
                               if is_list(info.annotation)))
