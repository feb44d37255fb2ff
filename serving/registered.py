"""A registered model version as the query side needs it: number, local files, family; plain data, no MLflow."""

from __future__ import annotations

from collections.abc import Mapping
import re
from dataclasses import dataclass, field
from pathlib import Path

from replearn.lib.errors import ReplearnInputError


@dataclass(frozen=True)
class RegisteredVersion:
    """One version of a registered model, resolved to files on this machine.

    Attributes:
        name: the registered model name (``replearn-word2vec``).
        version: the version number, as MLflow writes it (``"3"``).
        source: the version's source URI in the registry (``file:///.../models/m-.../artifacts``).
        folder: the local folder holding the model (``MLmodel``, ``artifacts/``).
        artifacts: artifact name (``embeddings``, ``index``, ``graph``, ``encoder``, ``model``...) -> local file.
        family: the model family (``word2vec``, ``metric``, ``clip``, ``multisense``), from the embeddings'
            metadata; ``""`` when the version has no embeddings table.
    """

    name: str
    version: str
    source: str
    folder: str
    artifacts: Mapping[str, str] = field(default_factory=dict)
    family: str = ""

    def to_json(self) -> dict:
        """A JSON-ready dict (:meth:`from_json` reads it back)."""
        return {"name": self.name, "version": self.version, "source": self.source, "folder": self.folder,
                "artifacts": dict(self.artifacts), "family": self.family}

    @classmethod
    def from_json(cls, d: Mapping) -> RegisteredVersion:
        """The version a :meth:`to_json` dict describes.

        Raises:
            KeyError / TypeError / ValueError: ``d`` is not such a dict (a hand-edited or corrupt cache).
        """
        artifacts = {str(k): str(v) for k, v in dict(d["artifacts"]).items()}
        out = cls(name=str(d["name"]), version=str(d["version"]), source=str(d["source"]), folder=str(d["folder"]),
                  artifacts=artifacts, family=str(d["family"]))
        if not out.name or not out.version or not out.folder:
            raise ValueError(f"incomplete registered version {d!r}")
        return out

    def files_exist(self) -> bool:
        """True when the model folder and every artifact file are still on disk."""
        return Path(self.folder).is_dir() and all(Path(p).exists() for p in self.artifacts.values())


#: ``NAME@ALIAS`` or ``NAME@VERSION`` (a registered model name as ``--model-name`` takes it).
INIT_FROM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*@[A-Za-z0-9_-]+$"


def parse_init_from(spec: str) -> tuple[str, str | None, str | None]:
    """``(name, alias, version)`` of ``NAME@ALIAS`` (``replearn-word2vec@champion``) or ``NAME@VERSION`` (``@3``).

    Raises:
        ReplearnInputError: not of that form.
    """
    if not re.match(INIT_FROM_PATTERN, spec or ""):
        raise ReplearnInputError(f"--init-from {spec!r}: give NAME@ALIAS (replearn-word2vec@champion) or "
                                 "NAME@VERSION (replearn-word2vec@3)")
    name, _, ref = spec.rpartition("@")
    return (name, None, ref) if ref.isdigit() else (name, ref, None)
