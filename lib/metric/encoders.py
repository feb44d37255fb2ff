"""Image encoders for metric learning: images (B, C, H, W) -> embeddings (B, dim) on the unit hypersphere.

As in nanoGPT's ``model.py``, an :class:`EncoderConfig` dataclass fully
describes an encoder and is saved inside every checkpoint
(``{"config": cfg.to_dict(), "state_dict": ...}``), so ``build_encoder(
EncoderConfig.from_dict(ckpt["config"]))`` rebuilds the model before loading the weights.

L2 normalisation of the output is the usual choice for contrastive and triplet
losses on embeddings (Wu et al. 2018, Schroff et al. 2015 "FaceNet", Chen et
al. 2020 "SimCLR"): distances are then bounded (||a - b||^2 = 2 - 2 cos(a, b))
and a cosine, inner product and Euclidean search rank neighbours identically.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from replearn.lib.metric.config import EncoderConfig  # noqa: F401  (home: the config module)


def l2_normalize(z: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows of ``z`` (B, D) divided by their L2 norm; a zero row stays zero (no NaN, finite gradient)."""
    return F.normalize(z, p=2.0, dim=1, eps=eps)


def _check_input(x: torch.Tensor, cfg: EncoderConfig) -> None:
    expected = (cfg.in_channels, cfg.in_size, cfg.in_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"encoder expects images (B, {expected[0]}, {expected[1]}, {expected[2]}), got "
                         f"{tuple(x.shape)}; resize the images or build the encoder with in_size={x.shape[-1]}")


class SmallCNN(nn.Module):
    """Conv blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool) -> flatten -> linear to ``dim``.

    The pool is skipped once the feature map is 1 pixel wide, so any input size
    works: with the default channels (32, 64, 128), 28x28 -> 14 -> 7 -> 3 and
    8x8 -> 4 -> 2 -> 1. The flattened map (channels[-1] * side^2) keeps where a
    stroke is, which matters for digits.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        c_in, side = config.in_channels, config.in_size
        for c_out in config.channels:
            blocks += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            if side >= 2:
                blocks.append(nn.MaxPool2d(2))
                side //= 2
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in * side * side, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) float, typically in [0, 1] -> (B, dim); unit rows if ``config.normalize``."""
        _check_input(x, self.config)
        h = self.features(x)  # (B, channels[-1], side, side)
        z = self.head(h.flatten(1))  # (B, channels[-1]*side*side) -> (B, dim)
        return l2_normalize(z) if self.config.normalize else z


class MLPEncoder(nn.Module):
    """Flatten -> (linear, ReLU) per hidden width in ``config.channels`` -> linear to ``dim``."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.in_channels * config.in_size * config.in_size
        for hidden in config.channels:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        layers.append(nn.Linear(width, config.dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) float -> (B, dim); unit rows if ``config.normalize``."""
        _check_input(x, self.config)
        z = self.net(x.flatten(1))  # (B, C*H*W) -> (B, dim)
        return l2_normalize(z) if self.config.normalize else z


def build_encoder(config: EncoderConfig) -> nn.Module:
    """The encoder described by ``config`` (its weights freshly initialised by torch's default init)."""
    if config.kind == "cnn":
        return SmallCNN(config)
    if config.kind == "mlp":
        return MLPEncoder(config)
    raise ValueError(f"unknown encoder kind {config.kind!r}; use 'cnn' or 'mlp'")


@torch.no_grad()
def embed(encoder: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = 512,
          device: str | torch.device | None = None) -> np.ndarray:
    """Embeddings of ``images`` (N, C, H, W) as float32 numpy (N, dim), in eval mode, in batches.

    The encoder's train/eval mode is restored afterwards. ``device`` defaults to
    the device of the encoder's parameters.
    """
    if device is None:
        device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    try:
        x = torch.as_tensor(images)
        out = [encoder(x[s:s + batch_size].to(device=device, dtype=torch.float32)).float().cpu()
               for s in range(0, len(x), batch_size)]
    finally:
        encoder.train(was_training)
    dim = encoder.config.dim if hasattr(encoder, "config") else 0
    return torch.cat(out).numpy() if out else np.zeros((0, dim), dtype=np.float32)
