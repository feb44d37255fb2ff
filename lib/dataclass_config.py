"""Shared helpers for the frozen-dataclass configs saved with checkpoints and exports."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def check_fields(config: Any, checks: Mapping[str, bool]) -> None:
    """Raise ``ValueError`` naming every field whose check is False, with its value.

    Raises:
        ValueError: "invalid <Class>: a=1, b=2; see the <Class> docstring for ranges".
    """
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        name = type(config).__name__
        values = ", ".join(f"{n}={getattr(config, n)!r}" for n in bad)
        raise ValueError(f"invalid {name}: {values}; see the {name} docstring for ranges")


def from_known_fields(cls: type[T], d: Mapping[str, Any]) -> T:
    """Build dataclass ``cls`` from ``d``, ignoring keys that are not fields (older or newer checkpoints)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


class ThreadedConfig:
    """Mixin for the word-vector configs: plain-dict round trip, and a checkpoint key without ``threads``.

    ``threads`` changes speed, not the trained vectors (up to Hogwild order), so a
    checkpoint written with 4 threads may be resumed with 2.
    """

    def to_dict(self) -> dict:
        """Plain dict of all fields (JSON-serialisable), for checkpoints and exports."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """Rebuild from :meth:`to_dict` output, ignoring unknown keys."""
        return from_known_fields(cls, d)

    def training_key(self) -> dict:
        """The fields that change the trained vectors (threads excluded), used to match checkpoints."""
        d = self.to_dict()
        d.pop("threads")
        return d
