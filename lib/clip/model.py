"""The CLIP-style two-tower model and its configuration (saved inside every checkpoint, as nanoGPT does).

:class:`TwoTower` holds an image tower, a text tower and the learnable
``logit_scale`` (initialised to log(1/0.07), Radford et al. 2021, sec. 2.5).
:class:`ClipConfig` describes the towers and the training run; a checkpoint is
``{"config": ClipConfig.to_dict(), "vocab": TextVocab.to_dict() | None,
"state_dict": ..., ...}`` so :func:`load_model` rebuilds the model before loading
the weights (``torch.load(..., weights_only=True)``). A warm start
(``--init-from``) loads a saved model's weights into the model a run builds
(:func:`warm_start`), after :func:`architecture_differences` found nothing that differs.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from replearn.lib.clip.config import (  # noqa: F401  (the config's home is .config; importable from here too)
    IMAGE_EPOCHS, SMALL_IMAGE_BATCH, SMALL_IMAGE_EPOCHS, SMALL_IMAGE_PX, ClipConfig, Schedule, batch_size_for,
    default_epochs)
from replearn.lib.clip.image_tower import ImageTower, ImageTowerConfig  # noqa: F401
from replearn.lib.clip.loss import INIT_LOGIT_SCALE, MAX_LOGIT_SCALE
from replearn.lib.clip.text_tower import PAD, UNK, TextTowerConfig, TextVocab, build_text_tower  # noqa: F401
from replearn.lib.errors import ReplearnInputError


class TwoTower(nn.Module):
    """Image tower, text tower and ``logit_scale``.

    Args:
        config: the :class:`ClipConfig`.
        vocab: the scratch text tower's :class:`TextVocab` (None for ``text.kind == "lit"``).

    Use ``encode_image(x (B, C, H, W)) -> (B, dim)``, ``prepare_text(texts) ->
    dict`` then ``encode_text(**batch) -> (N, dim)``, or the convenience
    ``embed_images`` / ``embed_texts`` (numpy, eval mode, batched). Every output
    row is L2-normalised, so inner product = cosine similarity.
    """

    def __init__(self, config: ClipConfig, vocab: TextVocab | None = None):
        super().__init__()
        self.config, self.vocab = config, vocab
        self.image = ImageTower(config.image, config.dim)
        self.text = build_text_tower(config.text, config.dim, vocab, device=config.device)
        self.logit_scale = nn.Parameter(torch.tensor(INIT_LOGIT_SCALE))

    @property
    def scale(self) -> float:
        """The clamped logit scale s = min(exp(logit_scale), 100) as a float."""
        return float(self.logit_scale.detach().exp().clamp(max=MAX_LOGIT_SCALE))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float in [0, 1], any size -> (B, dim) unit rows."""
        return self.image(x)

    def prepare_text(self, texts: Sequence[str], where: str = "the texts") -> dict[str, torch.Tensor]:
        """Texts -> the text tower's input tensors (first dimension N). Raises CaptionError naming empty rows."""
        return self.text.prepare(texts, where)

    def encode_text(self, **batch: torch.Tensor) -> torch.Tensor:
        """Prepared text tensors (a :meth:`prepare_text` dict, possibly indexed) -> (N, dim) unit rows."""
        return self.text(**batch)

    @torch.no_grad()
    def embed_images(self, images: np.ndarray | torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """float32 numpy (N, dim) embeddings of images (N, C, H, W), eval mode (mode restored)."""
        dev = self.logit_scale.device
        was = self.training
        self.eval()
        try:
            x = torch.as_tensor(images, dtype=torch.float32)
            out = [self.encode_image(x[s:s + batch_size].to(dev)).cpu() for s in range(0, len(x), batch_size)]
        finally:
            self.train(was)
        return torch.cat(out).numpy() if out else np.zeros((0, self.config.dim), dtype=np.float32)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], batch_size: int = 1024, where: str = "the texts") -> np.ndarray:
        """float32 numpy (N, dim) embeddings of texts, eval mode.

        Raises:
            CaptionError: a text with no (known) token, naming its row.
        """
        dev = self.logit_scale.device
        was = self.training
        self.eval()
        try:
            batch = self.prepare_text(list(texts), where)
            n = len(texts)
            out = [self.encode_text(**{k: v[s:s + batch_size].to(dev) for k, v in batch.items()}).cpu()
                   for s in range(0, n, batch_size)]
        finally:
            self.train(was)
        return torch.cat(out).numpy() if out else np.zeros((0, self.config.dim), dtype=np.float32)


def build_model(config: ClipConfig, captions: Sequence[str] | None = None) -> TwoTower:
    """A fresh :class:`TwoTower` seeded by ``config.seed``; the scratch vocabulary is built from ``captions``.

    Raises:
        ReplearnInputError / CaptionError: no captions for a scratch tower, or a caption with no token.
    """
    vocab = None
    if config.text.kind != "lit":
        if not captions:
            raise ReplearnInputError(f"text kind {config.text.kind!r} builds its vocabulary from the training "
                                     f"captions; pass captions=")
        vocab = TextVocab.build(captions, min_count=config.text.min_count)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = TwoTower(config, vocab)
    return model.to(config.device)


def model_state(model: TwoTower) -> dict:
    """The parts of a checkpoint that rebuild the model: config, vocabulary, weights."""
    return {"config": model.config.to_dict(), "vocab": model.vocab.to_dict() if model.vocab is not None else None,
            "state_dict": model.state_dict()}


def model_from_state(state: dict, device: str | None = None) -> TwoTower:
    """Rebuild a :class:`TwoTower` from :func:`model_state` (or a trainer checkpoint) and load its weights."""
    config = ClipConfig.from_dict(state["config"])
    if device is not None:
        config = dataclasses.replace(config, device=device)
    vocab = TextVocab.from_dict(state["vocab"]) if state.get("vocab") else None
    model = TwoTower(config, vocab)
    model.load_state_dict(state["state_dict"])
    return model.to(config.device)


def load_model(path: Path | str, device: str | None = None) -> TwoTower:
    """The model in a checkpoint file (``torch.load(weights_only=True)``), in eval mode.

    Raises:
        ReplearnInputError: missing file, or a file that is not a CLIP checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ReplearnInputError(f"CLIP checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = model_from_state(state, device)
    except (KeyError, RuntimeError, TypeError, ValueError, EOFError) as e:
        raise ReplearnInputError(f"{path} is not a readable CLIP checkpoint ({type(e).__name__}: {e}); "
                                 f"pass a file written by train_clip") from None
    return model.eval()


def read_model_state(path: Path | str) -> dict:
    """The :func:`model_state` dict saved at ``path`` (tensors on the CPU), its config checked.

    Raises:
        ReplearnInputError: the file is missing, or is not a CLIP model file (another family's model, a damaged file).
    """
    path = Path(path)
    if not path.is_file():
        raise ReplearnInputError(f"CLIP model file {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        ClipConfig.from_dict(state["config"])
        if "state_dict" not in state:
            raise KeyError("state_dict")
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, ValueError) as e:
        raise ReplearnInputError(f"{path} is not a CLIP model file ({type(e).__name__}: {e}): continue from a model "
                                 "registered by the CLIP flow (replearn-clip), or train from scratch (leave "
                                 "--init-from out)") from None
    return state


#: Text tower settings that shape (or give meaning to) its weights, per kind: lit's is a projection of 384 features.
_TEXT_ARCHITECTURE = {"bag": ("width",), "transformer": ("width", "layers", "heads", "max_len"), "lit": ()}


def architecture_differences(saved: ClipConfig, wanted: ClipConfig) -> dict[str, tuple[Any, Any]]:
    """``{setting: (saved value, wanted value)}`` of the settings that shape the two towers and differ: ``dim``,
    ``image.<in_size, in_channels, channels, width>``, ``text.kind`` and the saved text tower's own
    (:data:`_TEXT_ARCHITECTURE`: what a tower of its kind needs to take its weights).
    Empty: a model built from ``wanted`` takes the weights of one built from ``saved`` (the scratch text tower's
    token rows by token: :func:`warm_start`). Training settings (lr, epochs, ...) and ``text.min_count`` may differ."""
    pairs = [("dim", saved.dim, wanted.dim)]
    pairs += [(f"image.{k}", getattr(saved.image, k), getattr(wanted.image, k))
              for k in ("in_size", "in_channels", "channels", "width")]
    pairs.append(("text.kind", saved.text.kind, wanted.text.kind))
    pairs += [(f"text.{k}", getattr(saved.text, k), getattr(wanted.text, k))  # what the saved tower's kind needs
              for k in _TEXT_ARCHITECTURE[saved.text.kind]]
    return {k: (a, b) for k, a, b in pairs if a != b}


def warm_start(model: TwoTower, state: dict) -> tuple[int, int]:
    """Load the weights of ``state`` (:func:`model_state` of a model with the same architecture:
    :func:`architecture_differences`) into ``model``: both towers, batch-norm statistics and ``logit_scale``.

    The scratch text tower's token embeddings are carried over by token: a token of ``model``'s vocabulary that
    the saved vocabulary holds gets its row (padding and unknown rows too); a new token keeps its fresh row, and a
    saved token this vocabulary lacks is dropped. Returns (tokens that kept their row, tokens of ``model``'s
    vocabulary); (0, 0) for the lit tower, which has no vocabulary.

    Raises:
        ReplearnInputError: the weights do not fit ``model`` (a differing architecture).
    """
    new = model.state_dict()
    old = dict(state["state_dict"])
    kept = total = 0
    key = "text.embed.weight"
    if model.vocab is not None and key in old:
        before = TextVocab.from_dict(state["vocab"]) if state.get("vocab") else None
        rows = new[key].detach().cpu().clone()                                   # (V_new, W) the fresh rows
        index = {t: i + 2 for i, t in enumerate(before.tokens)} if before is not None else {}
        pairs = [(i + 2, index[t]) for i, t in enumerate(model.vocab.tokens) if t in index]
        if old[key].shape[1] != rows.shape[1]:
            raise ReplearnInputError(f"the saved text tower's token rows are {old[key].shape[1]} wide, this model's "
                                     f"{rows.shape[1]}")
        dst = torch.tensor([PAD, UNK] + [i for i, _ in pairs], dtype=torch.int64)
        src = torch.tensor([PAD, UNK] + [j for _, j in pairs], dtype=torch.int64)
        rows[dst] = old[key][src].to(rows.dtype)                                 # (2 + kept, W) carried over
        old[key] = rows
        kept, total = len(pairs), len(model.vocab.tokens)
    try:
        model.load_state_dict(old)
    except RuntimeError as e:
        raise ReplearnInputError(f"the saved model's weights do not fit this model ({e}); build it with the saved "
                                 "model's settings, or train from scratch (leave --init-from out)") from None
    return kept, total
