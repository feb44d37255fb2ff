"""The warm-start plumbing the flows share (``--init-from NAME@ALIAS``): :func:`continue_from` for every family
(the image families take the encoder's weights), :func:`warm_start` for the text flows (word2vec, multi-sense).

A warm start resolves the registered version to continue from (none yet: the
run trains from scratch, as a schedule's first run must), fetches the files
it needs into the stage store, lists the corpus files that version was not
trained on and, with none, registers nothing (tasks/init_model.py,
tasks/register.py ``no-new-data``). Otherwise the flow tokenizes and trains on
those files only, over a vocabulary of merged counts (``base_counts``), and
registers the list of every file its model has seen (:func:`corpus_manifest`)
for the next warm start. Design: docs/design.md, "Growing data and warm starts".
"""

from __future__ import annotations

from dataclasses import dataclass

from replearn.infra.caching import reuse_or_rerun
from replearn.infra.run_context import RunContext
from replearn.infra.stage_outputs import Artifact, Fingerprint, InitModel, Registered
from replearn.infra.tracking import log_params
from replearn.tasks.init_model import corpus_manifest_task, init_model_task, new_files_task, resolve_init_task
from replearn.tasks.inputs import fingerprint_task
from replearn.tasks.register import no_new_data_task

__all__ = ["WarmStart", "continue_from", "corpus_manifest", "fetch_model", "warm_config", "warm_start"]


@dataclass(frozen=True)
class WarmStart:
    """What a text flow run starts from.

    Attributes:
        fp: the corpus fingerprint of this run (a warm start's covers its new files and the version continued).
        init: the files of the version continued (``init.files[artifact]``); None: from scratch.
        files: the corpus files to train on (a warm start's new files); None: all of them.
        unchanged: a warm start found no new file: nothing was registered (``no-new-data``); the flow returns
            :meth:`summary` and runs no stage.
    """

    fp: Fingerprint
    init: InitModel | None = None
    files: list[str] | None = None
    unchanged: Registered | None = None

    @property
    def label(self) -> str | None:
        """``"NAME vVERSION"`` of the version continued, None from scratch."""
        return self.init.label if self.init else None

    @property
    def base_counts(self) -> str | None:
        """The token counts of the version continued (merged into this run's vocabulary), None from scratch."""
        return self.init.files["token_counts"] if self.init else None

    def summary(self, run: RunContext, corpus: str) -> dict:
        """The flow's return value when nothing new was found: the MLflow run, the corpus, no new file, the
        version continued and the model that stands (:class:`Registered`, ``new_version`` False)."""
        return {"mlflow_run_id": run.run_id, "mlflow_experiment_id": run.experiment_id,
                "tracking_uri": run.tracking_uri, "corpus": corpus, "new_files": [], "init_from": self.label,
                "model": self.unchanged.to_dict() if self.unchanged else None}


def warm_start(run: RunContext, spec: str | None, corpus: str, settings: dict, memo: str, fp: Fingerprint,
               artifacts: list[str], registers: str) -> WarmStart:
    """Where the run ``run`` of a text flow starts: from scratch (no ``spec``, or nothing registered under its
    name yet), or from version ``spec`` (``NAME@ALIAS`` / ``NAME@VERSION``) on the files of ``corpus`` it has not
    seen, its ``artifacts`` fetched (``corpus_files`` among them). ``settings``, ``memo``: those ``fp``, the
    from-scratch fingerprint, was made with; a warm start's adds the version continued. ``registers``: the name
    this run registers under (:func:`continue_from`).

    Raises:
        ReplearnInputError: a malformed ``spec``; its model has no such alias or version, or lacks one of
            ``artifacts`` (tasks/init_model.py).
    """
    if (init := continue_from(run, spec, artifacts, registers)) is None:
        return WarmStart(fp)
    files = new_files_task(corpus, init.files["corpus_files"], memo)
    if not files:
        return WarmStart(fp, init, [], no_new_data_task(run.tracking_uri, run.run_id, init.name, init.version, corpus))
    return WarmStart(fingerprint_task(corpus, {**settings, "init_from": [init.name, init.version]}, memo, files),
                     init, files)


def continue_from(run: RunContext, spec: str | None, artifacts: list[str], registers: str) -> InitModel | None:
    """The files ``artifacts`` of the registered version ``spec`` names (``NAME@ALIAS`` / ``NAME@VERSION``), fetched
    into the stage store; logged as the MLflow parameter ``init_from`` (``NAME vVERSION``). None without ``spec``,
    or when nothing is registered yet under its name and that name is ``registers``, the one this run registers
    under (a schedule's first run trains from scratch; tasks/init_model.py ``resolve-init-model`` warns).

    Raises:
        ReplearnInputError: a malformed ``spec``; no such model (another name than ``registers``), alias or
            version; the version lacks an artifact.
    """
    if not spec or (version := resolve_init_task(run.tracking_uri, spec, registers=registers)) is None:
        return None
    init = fetch_model(run, version, artifacts)
    log_params(run.tracking_uri, run.run_id, {"init_from": init.label})
    return init


def warm_config(config: dict, start: WarmStart, warm_alpha: float) -> dict:
    """The training config of a text flow run: ``config``, with a warm start's learning rate restarting at
    ``warm_alpha`` (``min_alpha`` lowered to it if above)."""
    if start.init is None:
        return config
    return {**config, "alpha": warm_alpha, "min_alpha": min(config["min_alpha"], warm_alpha)}


def fetch_model(run: RunContext, version: dict, artifacts: list[str]) -> InitModel:
    """The files ``artifacts`` of a registered ``version`` (:func:`resolve_init_task`'s dict), in the stage store."""
    return reuse_or_rerun(init_model_task, run.tracking_uri, version["name"], version["version"], version["source"],
                          artifacts, run.stage_out("model"))


def corpus_manifest(run: RunContext, corpus: str, start: WarmStart, memo: str) -> Artifact:
    """The list of the corpus files the model of this run has seen (``corpus_files.json``, registered with it):
    the version continued's, then the files this run trained on (tasks/init_model.py ``corpus-files``)."""
    return reuse_or_rerun(corpus_manifest_task, corpus, start.fp.source_hash, start.files,
                          start.init.files["corpus_files"] if start.init else None, run.stage_out("corpus_files.json"),
                          memo)
