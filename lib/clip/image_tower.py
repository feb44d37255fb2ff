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

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from replearn.lib.dataclass_config import Config, check_fields, range_checks, setting
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.encoders import EncoderConfig, SmallCNN, l2_normalize


@dataclass(frozen=True)
class ImageTowerConfig(Config):
    """Architecture of the image tower.

    Attributes:
        in_size: side the images are resized to, >= 1 (28 for MNIST, 8 for sklearn digits).
        in_channels: channels the CNN takes, >= 1 (1: grayscale).
        channels: SmallCNN conv block widths, each >= 1 (default (32, 64, 128)).
        width: SmallCNN output size before the projection, >= 1 (default 128).
    """

    in_size: int = setting(28, help="Side the images are resized to, pixels", ge=1)
    in_channels: int = setting(1, help="Channels the CNN takes (1 = grayscale)", ge=1)
    channels: tuple[int, ...] = setting((32, 64, 128), help="SmallCNN conv block widths")
    width: int = setting(128, help="SmallCNN output size before the projection", ge=1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        checks = range_checks(self)
        checks["channels"] = len(self.channels) >= 1 and all(c >= 1 for c in self.channels)
        check_fields(self, checks)

    def encoder_config(self) -> EncoderConfig:
        """The :class:`EncoderConfig` of the SmallCNN inside (``normalize=False``)."""
        return EncoderConfig(kind="cnn", in_size=self.in_size, in_channels=self.in_channels,
                             channels=self.channels, dim=self.width, normalize=False)


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
