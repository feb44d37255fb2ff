"""Prefect tasks of a warm start (``--init-from NAME@ALIAS``): the registered model to continue from, and which files
of a growing corpus folder it has not seen.

A model registered by the text flows carries, besides its embeddings and
index, what a later run needs to continue training it: its matrices
(``vectors``; multi-sense: ``model``), its vocabulary (``vocabulary``), every
token's count, pruned or not (``token_counts``), and the list of corpus files
it was trained on (``corpus_files``: each file's path and SHA-256); an image
model its encoder (``encoder``, ``model``). :func:`init_model_task` fetches them into the stage store;
:func:`new_files_task` lists the files of the corpus that are in no version's
list, so a scheduled run trains only on what has landed since.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mlflow.artifacts import download_artifacts
from mlflow.models import Model
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from replearn.infra.caching import STAGE_CACHE
from replearn.infra.stage_outputs import Artifact, InitModel
from replearn.infra.tracking import client
from replearn.lib.errors import ReplearnInputError
from replearn.lib.store import file_digests
from replearn.lib.store.atomic import atomic_path, atomic_write_json
from replearn.lib.text.partitions import select_files
from replearn.serving.registered import parse_init_from
from replearn.serving.registry import version_record

__all__ = ["corpus_manifest_task", "init_model_task", "new_files_task", "resolve_init_task"]


@task(name="resolve-init-model", cache_policy=NO_CACHE)
def resolve_init_task(tracking_uri: str, spec: str, optional: bool = False, registers: str | None = None
                      ) -> dict | None:
    """The registered version ``spec`` (``NAME@ALIAS`` / ``NAME@VERSION``) names now: ``{name, version, source,
    run_id, metrics}`` (``metrics``: those of the run that made it). Not cached: an alias moves. MLflow's alias
    ``latest`` names the newest version, whatever the champion gate decided.

    None, with a warning, when no model ``NAME`` is registered yet and ``NAME`` is ``registers``, the name this run
    registers under: the first run of a schedule that continues from its own champion trains from scratch. None,
    silently, when ``optional`` and the alias or version is missing.

    Raises:
        ReplearnInputError: a malformed ``spec``; no model ``NAME`` (another name than ``registers``: a typo would
            retrain from scratch every time), or no such alias or version of it (the message lists them).
    """
    name, alias, version = parse_init_from(spec)
    try:
        mv = version_record(tracking_uri, name, alias or "", version, hint=False)
    except LookupError:
        if optional:
            return None
        c = client(tracking_uri)
        versions = c.search_model_versions(f"name = '{name}'")
        if not versions and name == registers:
            get_run_logger().warning("%s: no model %s is registered yet, so this run trains from scratch", spec,
                                     name)
            return None
        if not versions:
            known = sorted({m.name for m in c.search_registered_models()})
            raise ReplearnInputError(
                f"--init-from {spec}: no model {name!r} is registered at {tracking_uri} (registered: "
                f"{', '.join(known) or 'none'}); fix the name, or give this run's own --model-name "
                f"({registers}) to start from scratch when it has no version yet") from None
        aliases = sorted(c.get_registered_model(name).aliases)  # search results carry no aliases
        numbers = sorted(int(m.version) for m in versions)
        raise ReplearnInputError(
            f"--init-from {spec}: model {name} has no {'version ' + version if version else 'alias ' + repr(alias)}; "
            f"its versions are {', '.join(map(str, numbers))}, its aliases {', '.join(aliases) or 'none'} "
            "(and latest)") from None
    metrics = client(tracking_uri).get_run(mv.run_id).data.metrics if mv.run_id else {}
    return {"name": name, "version": str(mv.version), "source": mv.source, "run_id": mv.run_id or "",
            "metrics": dict(metrics)}


@task(name="init-model", cache_policy=STAGE_CACHE, persist_result=True)
def init_model_task(tracking_uri: str, name: str, version: str, source: str, artifacts: list[str],
                    out_dir: str) -> InitModel:
    """Fetch the artifacts ``artifacts`` of version ``version`` of ``name`` (at ``source``) into ``out_dir``.

    Cached on the version and its source: a version's files never change, so later runs from it read them from
    the stage store.

    Raises:
        ReplearnInputError: the version lacks one of ``artifacts`` (registered by another family, or before warm
            starts existed).
    """
    model = Model.load(download_artifacts(artifact_uri=f"{source}/MLmodel", tracking_uri=tracking_uri))
    held = (model.flavors.get("python_function", {}).get("artifacts") or {})
    if missing := [a for a in artifacts if a not in held]:
        raise ReplearnInputError(
            f"{name} version {version} holds no {', '.join(missing)} (it has {', '.join(sorted(held)) or 'none'}): "
            "it was registered by another family, or before warm starts were possible; continue from another "
            "version, or train from scratch (leave --init-from out)")
    files: dict[str, str] = {}
    with atomic_path(Path(out_dir)) as tmp:
        tmp.mkdir(parents=True)
        for a in artifacts:
            local = Path(download_artifacts(artifact_uri=f"{source}/{held[a]['path']}", tracking_uri=tracking_uri,
                                            dst_path=str(tmp / ".download")))
            shutil.move(local, tmp / local.name)
            files[a] = local.name
        shutil.rmtree(tmp / ".download", ignore_errors=True)
    return InitModel(name=name, version=version, files={a: str(Path(out_dir) / f) for a, f in files.items()})


def read_manifest(path: str | Path) -> list[dict]:
    """The entries ``{"path", "sha256", "bytes"}`` of a corpus-files list (:func:`corpus_manifest_task`)."""
    return json.loads(Path(path).read_text())["files"]


@task(name="new-files", cache_policy=NO_CACHE)
def new_files_task(source: str, seen_manifest: str, memo_dir: str | None = None) -> list[str]:
    """The files of the corpus ``source``, in read order, whose content (SHA-256) is in none of the entries of
    ``seen_manifest`` (the files the model to continue from was trained on). A file renamed or copied is not new;
    an edited one is (all of it: its old lines are trained and counted again); an empty one is skipped (a file
    still being written shows up empty first). Files unchanged since an earlier run are not read
    (lib/store/file_digests.py)."""
    seen = {e["sha256"] for e in read_manifest(seen_manifest)}
    return [str(p) for p in select_files(Path(source))
            if p.stat().st_size and file_digests.file_digest(p, memo_dir).hex() not in seen]


@task(name="corpus-files", cache_policy=STAGE_CACHE, persist_result=True)
def corpus_manifest_task(source: str, source_hash: str, files: list[str] | None, base_manifest: str | None,
                         out_path: str, memo_dir: str | None = None) -> Artifact:
    """Write the list of corpus files a model is trained on (``out_path``, JSON ``{"files": [{"path", "sha256",
    "bytes"}]}``): the entries of ``base_manifest`` (the model it continued from; None: none), then ``files`` of
    ``source`` (None: all of them) not already listed. Registered with the model, for the next warm start."""
    entries = read_manifest(base_manifest) if base_manifest else []
    known = {e["sha256"] for e in entries}
    for p in select_files(Path(source), files):
        digest = file_digests.file_digest(p, memo_dir).hex()
        if digest not in known:
            entries.append({"path": str(p), "sha256": digest, "bytes": p.stat().st_size})
            known.add(digest)
    atomic_write_json(out_path, {"source": source, "source_hash": source_hash, "files": entries})
    return Artifact(path=out_path)
