"""The CLIP-style two-tower model and its configuration (saved inside every checkpoint, as nanoGPT does).

:class:`TwoTower` holds an image tower, a text tower and the learnable
``logit_scale`` (initialised to log(1/0.07), Radford et al. 2021, sec. 2.5).
:class:`ClipConfig` describes the towers and the training run; a checkpoint is
``{"config": ClipConfig.to_dict(), "vocab": TextVocab.to_dict() | None,
"state_dict": ..., ...}`` so :func:`load_model` rebuilds the model before loading
the weights (``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn as nn

from replearn.lib.clip.image_tower import ImageTower, ImageTowerConfig
from replearn.lib.clip.loss import INIT_LOGIT_SCALE, MAX_LOGIT_SCALE
from replearn.lib.clip.text_tower import TextTowerConfig, TextVocab, build_text_tower
from replearn.lib.dataclass_config import Config, range_checks, setting
from replearn.lib.errors import ReplearnInputError

Schedule = Literal["cosine", "constant"]

SMALL_IMAGE_PX = 8        # images of at most this side are "small" (scikit-learn's 8x8 digits)
SMALL_IMAGE_EPOCHS = 15   # default epochs on small images
IMAGE_EPOCHS = 4          # default epochs otherwise (MNIST 28x28 and larger)
SMALL_IMAGE_BATCH = 128   # largest batch on small images


@dataclass(frozen=True)
class ClipConfig(Config):
    """Two-tower model and training run.

    Attributes:
        image: :class:`ImageTowerConfig` (a dict is converted).
        text: :class:`TextTowerConfig` (a dict is converted).
        dim: shared embedding dimension, >= 1 (default 64).
        lr: AdamW peak learning rate > 0 (default 2e-3).
        weight_decay: AdamW decoupled weight decay >= 0 (default 1e-4; not applied
            to biases, norms, embeddings or ``logit_scale``).
        schedule: ``"cosine"`` (decay to 0 over ``epochs`` after one warm-up epoch
            of linear increase; Loshchilov & Hutter 2017) or ``"constant"``.
        epochs: passes over the training pairs, 1..1000; ``None`` (default) becomes
            :func:`default_epochs` of ``image.in_size`` (15 on 8x8 images, else 4).
        batch_size: pairs per (global) batch, >= 2: the negatives of each pair are
            the other batch_size - 1 (default 256).
        seed: >= 0; seeds the initial weights, the batches and the caption draws.
        n_test_templates: caption templates held out for test captions (digit data), >= 0.
        template_seed: >= 0; which templates are held out (:func:`~replearn.lib.clip.captions.split_templates`).
        device: torch device string; not part of :meth:`training_key`.
    """

    image: ImageTowerConfig = setting(default_factory=ImageTowerConfig, help="Image tower")
    text: TextTowerConfig = setting(default_factory=TextTowerConfig, help="Text tower")
    dim: int = setting(64, help="Shared embedding dimension", ge=1, le=4096)
    lr: float = setting(2e-3, help="AdamW peak learning rate", gt=0.0)
    weight_decay: float = setting(1e-4, help="AdamW decoupled weight decay (not on biases, norms, embeddings)",
                                  ge=0.0)
    schedule: Schedule = setting("cosine", help="Learning rate: cosine decay after one warm-up epoch, or constant")
    epochs: int | None = setting(None, help=f"Training epochs (empty = {SMALL_IMAGE_EPOCHS} for images of at most "
                                            f"{SMALL_IMAGE_PX} pixels a side, else {IMAGE_EPOCHS})", ge=1, le=1000)
    batch_size: int = setting(256, help="Pairs per batch; each pair's negatives are the other pairs", ge=2)
    seed: int = setting(0, help="Random seed of the weights, batches and caption draws", ge=0)
    n_test_templates: int = setting(3, help="Caption templates held out for the test captions (digits)", ge=0)
    template_seed: int = setting(0, help="Which caption templates are held out", ge=0)
    device: str = setting("cpu", help="Torch device (cpu, cuda)", in_training_key=False)

    def __post_init__(self) -> None:
        for name, cls in (("image", ImageTowerConfig), ("text", TextTowerConfig)):
            v = getattr(self, name)
            if isinstance(v, dict):
                try:
                    v = cls.from_dict(v)
                except (TypeError, ValueError) as e:
                    raise ReplearnInputError(f"invalid ClipConfig.{name}: {e}") from None
                object.__setattr__(self, name, v)
            elif not isinstance(v, cls):
                raise ReplearnInputError(f"ClipConfig.{name} must be a {cls.__name__} or a dict, "
                                         f"got {type(v).__name__}")
        if self.epochs is None:
            object.__setattr__(self, "epochs", default_epochs(self.image.in_size))
        bad = [n for n, ok in range_checks(self).items() if not ok]
        if bad:
            values = ", ".join(f"{n}={getattr(self, n)!r}" for n in bad)
            raise ReplearnInputError(f"invalid ClipConfig: {values}; see the ClipConfig docstring for ranges "
                                     f"(batch_size >= 2: a batch of one pair has no negative)")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError) as e:
            raise ReplearnInputError(f"invalid ClipConfig: device={self.device!r} ({e}); use 'cpu' or 'cuda'") from None

    def training_key(self) -> dict:
        """Fields a checkpoint must match to be resumed: all but ``device``, and but ``epochs`` when the
        schedule is constant (a finished run can then be extended; the cosine schedule depends on ``epochs``)."""
        d = super().training_key()
        if self.schedule == "constant":
            d.pop("epochs")
        return d


def default_epochs(image_size: int) -> int:
    """Training epochs when none are given: :data:`SMALL_IMAGE_EPOCHS` for images of at most
    :data:`SMALL_IMAGE_PX` pixels a side (the 1,797 8x8 digits: few steps an epoch), else :data:`IMAGE_EPOCHS`.

    bench/README.md (clip_mnist.py): 8x8 digits at 15 epochs reach zero-shot 0.986, MNIST at 4 epochs 0.981.
    """
    return SMALL_IMAGE_EPOCHS if image_size <= SMALL_IMAGE_PX else IMAGE_EPOCHS


def batch_size_for(image_size: int, batch_size: int) -> int:
    """``batch_size``, at most :data:`SMALL_IMAGE_BATCH` pairs for images of at most :data:`SMALL_IMAGE_PX`
    pixels a side (the 8x8 digits' training set is small: more steps an epoch)."""
    return min(batch_size, SMALL_IMAGE_BATCH) if image_size <= SMALL_IMAGE_PX else batch_size


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
