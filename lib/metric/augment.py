"""Identity-preserving random transforms of small grayscale images, for instance discrimination.

SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of
Visual Representations") makes a positive pair from two random views of the
same image; its recipe (crops, colour jitter, blur) is built for natural RGB
photos. Handwritten digits need milder, label-preserving transforms: a large
rotation turns a 6 into a 9, a large crop cuts a 7 into a 1. So the views here
use the small affine distortions long used for MNIST (Simard, Steinkraus &
Platt 2003, "Best Practices for Convolutional Neural Networks applied to Visual
Document Analysis") plus random erasing (Zhong et al. 2020) of a small patch or
additive Gaussian noise.

All functions take and return float tensors (B, 1, H, W) (any channel count C
works) with values in [0, 1], 0 = background. Randomness comes only from the
``torch.Generator`` passed in, so a seed reproduces the views exactly; random
numbers are drawn on the generator's device and moved to the images' device,
so a CPU generator also drives GPU images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from replearn.lib.metric.config import AugmentConfig  # noqa: F401  (its home is the config module)


def _check(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"expected a float tensor of images (B, C, H, W), got "
                         f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))} {getattr(x, 'dtype', '')}")


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """(n,) uniform draws in [lo, hi) from ``g`` (on g's device), returned on ``like``'s device and dtype."""
    u = torch.rand(n, generator=g, device=g.device)
    return (lo + (hi - lo) * u).to(device=like.device, dtype=like.dtype)


def affine(x: torch.Tensor, angle_deg: torch.Tensor, scale: torch.Tensor, tx: torch.Tensor,
           ty: torch.Tensor) -> torch.Tensor:
    """Rotate, scale and shift image i by ``angle_deg[i]``, ``scale[i]``, ``(tx[i], ty[i])`` (bilinear, zero padding).

    Pixel coordinates have x to the right and y down, origin at the image
    centre; the forward map is ``p_out = s * R(a) * p_in + t``, so a positive
    angle turns the content clockwise as displayed, positive ``tx`` moves it
    right and positive ``ty`` moves it down. ``grid_sample`` needs the inverse,
    so the sampling matrix is ``A = R(-a) / s`` with offset ``-A t``, converted
    to the normalised [-1, 1] coordinates of ``affine_grid`` per axis (so
    non-square images are rotated without shear).

    Args:
        x: (B, C, H, W) float images in [0, 1].
        angle_deg, scale, tx, ty: (B,) tensors (degrees, factor > 0, pixels, pixels).

    Returns:
        (B, C, H, W), values in [0, 1] (bilinear weights are convex; outside pixels are 0).
    """
    _check(x)
    B, C, H, W = x.shape
    a, s, tx, ty = (torch.as_tensor(v, dtype=x.dtype, device=x.device).expand(B)
                    for v in (angle_deg, scale, tx, ty))
    a = a * (math.pi / 180.0)
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    # inverse map in pixel units: A = R(-a)/s = [[cos, sin], [-sin, cos]] / s;  b = -A t
    a11, a12, a21, a22 = cos, sin, -sin, cos
    b1 = -(a11 * tx + a12 * ty)
    b2 = -(a21 * tx + a22 * ty)
    # to normalised coords: x_n = x_px * 2/W, y_n = y_px * 2/H  =>  A_n = D A D^-1, b_n = D b
    theta = torch.stack([
        torch.stack([a11, a12 * (W / H), b1 * (2.0 / W)], dim=1),
        torch.stack([a21 * (H / W), a22, b2 * (2.0 / H)], dim=1),
    ], dim=1)  # (B, 2, 3)
    grid = F.affine_grid(theta, [B, C, H, W], align_corners=False)  # (B, H, W, 2)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.clamp_(0.0, 1.0)


def random_affine(x: torch.Tensor, generator: torch.Generator, max_rotation_deg: float = 15.0,
                  scale_range: tuple[float, float] = (0.9, 1.1), max_translate_px: float = 2.0) -> torch.Tensor:
    """:func:`affine` with per-image parameters drawn uniformly from the given ranges.

    Args:
        x: (B, C, H, W) float images in [0, 1].
        generator: source of randomness.
        max_rotation_deg: angle ~ U[-r, r] degrees.
        scale_range: scale ~ U[lo, hi].
        max_translate_px: tx, ty ~ U[-t, t] pixels, independently.

    Returns:
        (B, C, H, W) in [0, 1].
    """
    _check(x)
    B = x.shape[0]
    a = _uniform(B, -max_rotation_deg, max_rotation_deg, generator, x)
    s = _uniform(B, scale_range[0], scale_range[1], generator, x)
    tx = _uniform(B, -max_translate_px, max_translate_px, generator, x)
    ty = _uniform(B, -max_translate_px, max_translate_px, generator, x)
    return affine(x, a, s, tx, ty)


def _erase_mask(x: torch.Tensor, generator: torch.Generator, p: float,
                area_range: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen (B,) bool, mask (B, H, W) bool): which images are erased and where."""
    B, C, H, W = x.shape
    chosen = _uniform(B, 0.0, 1.0, generator, x) < p
    area = _uniform(B, area_range[0], area_range[1], generator, x) * (H * W)
    aspect = torch.exp(_uniform(B, math.log(0.5), math.log(2.0), generator, x))
    h = torch.sqrt(area * aspect).round().clamp(1, H).long()
    w = torch.sqrt(area / aspect).round().clamp(1, W).long()
    top = (_uniform(B, 0.0, 1.0, generator, x) * (H - h + 1).to(x.dtype)).floor().long().clamp(max=H - 1)
    left = (_uniform(B, 0.0, 1.0, generator, x) * (W - w + 1).to(x.dtype)).floor().long().clamp(max=W - 1)
    rows = torch.arange(H, device=x.device)[None, :]  # (1, H)
    cols = torch.arange(W, device=x.device)[None, :]  # (1, W)
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])  # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])  # (B, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & chosen[:, None, None]  # (B, H, W)
    return chosen, mask


def random_erase(x: torch.Tensor, generator: torch.Generator, p: float = 0.5,
                 area_range: tuple[float, float] = (0.02, 0.10), value: float = 0.0) -> torch.Tensor:
    """With probability ``p`` per image, set one random rectangle (all channels) to ``value``.

    The rectangle's area is a fraction ~ U[area_range] of H*W with aspect ratio
    ~ log-uniform in [1/2, 2], at least 1 pixel a side and placed wholly inside
    the image (Zhong et al. 2020, "Random Erasing Data Augmentation").

    Returns:
        (B, C, H, W) copy of ``x``.
    """
    _check(x)
    _, mask = _erase_mask(x, generator, p, area_range)
    return x.masked_fill(mask[:, None, :, :], value)  # (B, 1, H, W) mask broadcasts over channels


def gaussian_noise(x: torch.Tensor, generator: torch.Generator, std: float = 0.05,
                   p: float = 1.0) -> torch.Tensor:
    """With probability ``p`` per image, add N(0, std^2) noise to every pixel, then clamp to [0, 1].

    Returns:
        (B, C, H, W) tensor in [0, 1].
    """
    _check(x)
    B = x.shape[0]
    noise = torch.randn(x.shape, generator=generator, device=generator.device).to(device=x.device, dtype=x.dtype)
    apply = (_uniform(B, 0.0, 1.0, generator, x) < p).to(x.dtype)[:, None, None, None]  # (B, 1, 1, 1)
    return (x + std * apply * noise).clamp_(0.0, 1.0)


def augment(x: torch.Tensor, generator: torch.Generator, config: AugmentConfig | None = None) -> torch.Tensor:
    """One random view of each image: random affine, then either erasing or noise (or neither).

    Per image, erasing happens with probability ``erase_prob``; an image not
    erased gets noise with probability ``noise_prob`` (so with the defaults 50 %
    erased, 25 % noised, 25 % only distorted). Every random number is drawn
    for every image, so the number of draws — and hence the generator's state
    afterwards — does not depend on the outcomes.

    Args:
        x: (B, C, H, W) float images in [0, 1].
        generator: source of randomness (``torch.Generator().manual_seed(seed)``).
        config: ranges; default :class:`AugmentConfig`.

    Returns:
        (B, C, H, W) float tensor in [0, 1], same device and dtype as ``x``.

    Raises:
        ValueError: ``x`` is not a 4-d float tensor.
    """
    cfg = config or AugmentConfig()
    _check(x)
    y = random_affine(x, generator, cfg.max_rotation_deg, (cfg.scale_min, cfg.scale_max), cfg.max_translate_px)
    chosen, mask = _erase_mask(y, generator, cfg.erase_prob, (cfg.erase_area_min, cfg.erase_area_max))
    erased = y.masked_fill(mask[:, None, :, :], 0.0)
    noised = gaussian_noise(y, generator, std=cfg.noise_std, p=cfg.noise_prob)
    return torch.where(chosen[:, None, None, None], erased, noised)  # (B, 1, 1, 1) selects per image


def two_views(x: torch.Tensor, generator: torch.Generator,
              config: AugmentConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent random views (x1, x2) of the same batch: the positive pairs of SimCLR.

    Args:
        x: (B, C, H, W) float images in [0, 1].
        generator: source of randomness; the two views use successive draws from it.
        config: ranges; default :class:`AugmentConfig`.

    Returns:
        (x1, x2), each (B, C, H, W) in [0, 1]; row i of x1 and row i of x2 are a positive pair.
    """
    return augment(x, generator, config), augment(x, generator, config)
