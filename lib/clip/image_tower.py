"""Image tower: images (B, C, H, W) of any size -> (B, dim) unit vectors in the shared image-text space.

The encoder is replearn's :class:`~replearn.lib.metric.encoders.SmallCNN`
(built with ``normalize=False`` and output ``width``), followed by a linear
projection to the shared ``dim`` and L2 normalisation (Radford et al. 2021,
sec. 2.4: "a linear projection to map from each encoder's representation to
the multi-modal embedding space"). Inputs of another size are resized to
``in_size`` with bilinear interpolation (antialiased when shrinking); colour
inputs are averaged to grey when the tower takes one channel.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from replearn.lib.clip.config import ImageTowerConfig  # noqa: F401  (home: the config module)
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.encoders import SmallCNN, l2_normalize


def resize_images(x: torch.Tensor, size: int, channels: int = 1) -> torch.Tensor:
    """(B, C, H, W) float -> (B, channels, size, size): bilinear resize (antialiased when shrinking), grey if needed.

    Raises:
        ReplearnInputError: not a 4-d tensor, or channels that cannot be mapped
            (only C == channels, or C in {3, 4} -> 1 by averaging RGB).
    """
    if x.dim() != 4:
        raise ReplearnInputError(f"images must be (B, C, H, W), got shape {tuple(x.shape)}")
    C = x.size(1)
    if C != channels:
        if channels == 1 and C in (3, 4):
            x = x[:, :3].mean(dim=1, keepdim=True)                               # RGB(A) -> grey
        else:
            raise ReplearnInputError(f"images have {C} channels, the image tower takes {channels}; "
                                     f"convert them (e.g. to grayscale) first")
    if x.shape[-2:] != (size, size):
        shrink = x.size(-1) > size or x.size(-2) > size
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    return x


class ImageTower(nn.Module):
    """SmallCNN (``width`` outputs, not normalised) -> linear to ``dim`` -> L2 norm.

    ``forward(x (B, C, H, W) float in [0, 1], any H, W) -> (B, dim)`` unit rows.
    """

    def __init__(self, config: ImageTowerConfig, dim: int):
        super().__init__()
        self.config, self.dim = config, dim
        self.encoder = SmallCNN(config.encoder_config())
        self.proj = nn.Linear(config.width, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = resize_images(x, self.config.in_size, self.config.in_channels)     # (B, C, in_size, in_size)
        h = F.relu(self.encoder(x))                                              # (B, width)
        return l2_normalize(self.proj(h))                                        # (B, dim)
