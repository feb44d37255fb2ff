"""Random views: shape and range kept, reproducible from a seed, different across seeds and views, and each
transform does what it says on a hand-made image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replearn.lib.metric.augment import (AugmentConfig, affine, augment, gaussian_noise, random_affine, random_erase,
                                         two_views)
from replearn.lib.metric.images import load_digits_8x8


@pytest.fixture(scope="module")
def digits28() -> torch.Tensor:
    """32 sklearn digits upsampled to 28x28, (32, 1, 28, 28) in [0, 1]."""
    x = torch.from_numpy(load_digits_8x8().images[:32])
    return torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("size", [8, 28])
def test_views_keep_shape_dtype_and_range(size, digits28):
    x = torch.from_numpy(load_digits_8x8().images[:32]) if size == 8 else digits28
    x1, x2 = two_views(x, _g(0))
    for v in (x1, x2):
        assert v.shape == x.shape and v.dtype == x.dtype
        assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0
    assert not torch.equal(x1, x2) and not torch.equal(x1, x)


def test_same_seed_same_views_other_seed_other_views(digits28):
    a1, a2 = two_views(digits28, _g(7))
    b1, b2 = two_views(digits28, _g(7))
    c1, _ = two_views(digits28, _g(8))
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, c1)


def test_identity_parameters_give_the_input(digits28):
    out = random_affine(digits28, _g(0), max_rotation_deg=0.0, scale_range=(1.0, 1.0), max_translate_px=0.0)
    torch.testing.assert_close(out, digits28, atol=1e-5, rtol=0)
    assert torch.equal(random_erase(digits28, _g(0), p=0.0), digits28)
    assert torch.equal(gaussian_noise(digits28, _g(0), std=0.0), digits28)


def test_translation_moves_centre_of_mass_by_at_most_max_px():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 12:16, 12:16] = 1.0  # a centred square blob
    out = random_affine(x, _g(1), max_rotation_deg=0.0, scale_range=(1.0, 1.0), max_translate_px=2.0)
    grid = torch.arange(28, dtype=torch.float32)

    def com(t):  # (B, 2) centre of mass (row, col)
        m = t[:, 0]
        return torch.stack([(m.sum(2) * grid).sum(1), (m.sum(1) * grid).sum(1)], 1) / m.sum((1, 2))[:, None]

    shift = com(out) - com(x)
    assert float(shift.abs().max()) <= 2.0 + 1e-4
    assert float(shift.abs().max()) > 0.5  # it does move
    torch.testing.assert_close(out.sum((1, 2, 3)), x.sum((1, 2, 3)), atol=1e-3, rtol=0)  # mass kept inside


def test_affine_directions_rotation_scale_and_non_square():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 5:8] = 1.0  # a bar from the centre to the right
    down = affine(x, torch.tensor([90.0]), torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([0.0]))
    expected = torch.zeros_like(x)
    expected[0, 0, 5:8, 4] = 1.0  # positive angle = clockwise as displayed: right -> down
    torch.testing.assert_close(down, expected, atol=1e-5, rtol=0)
    shifted = affine(x, 0.0, 1.0, 1.0, -2.0)  # one right, two up (exact for whole pixels)
    expected = torch.zeros_like(x)
    expected[0, 0, 2, 6:9] = 1.0
    torch.testing.assert_close(shifted, expected, atol=1e-5, rtol=0)
    wide = torch.zeros(1, 1, 6, 10)
    wide[0, 0, 1, 2] = 1.0
    moved = affine(wide, 0.0, 1.0, 3.0, 2.0)
    assert torch.nonzero(moved[0, 0] > 0.99).tolist() == [[3, 5]]
    # on a non-square image a 180-degree turn maps pixel (r, c) to (H-1-r, W-1-c), no shear
    turned = affine(wide, 180.0, 1.0, 0.0, 0.0)
    assert torch.nonzero(turned[0, 0] > 0.99).tolist() == [[4, 7]]
    big = affine(x, 0.0, 2.0, 0.0, 0.0)  # scale 2 about the centre: bar twice as long (clipped at edge)
    assert float(big.sum()) > float(x.sum()) * 1.3


def test_erase_sets_one_small_rectangle_to_zero():
    x = torch.ones(200, 1, 28, 28)
    out = random_erase(x, _g(3), p=1.0, area_range=(0.02, 0.10))
    zeros = (out == 0).flatten(1).sum(1).float() / (28 * 28)  # erased fraction per image
    assert float(zeros.min()) > 0.0 and float(zeros.max()) <= 0.14  # rounding of h, w can exceed 10 % a little
    for i in range(5):  # the zeros form a rectangle
        rows, cols = torch.nonzero(out[i, 0] == 0, as_tuple=True)
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert h * w == len(rows)
    half = random_erase(x, _g(3), p=0.5)
    frac_erased = float(((half == 0).flatten(1).any(1)).float().mean())
    assert 0.3 < frac_erased < 0.7


def test_noise_is_clamped_and_applied_with_probability():
    x = torch.full((100, 1, 8, 8), 0.5)
    out = gaussian_noise(x, _g(0), std=1.0, p=1.0)
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    some = gaussian_noise(x, _g(0), std=0.1, p=0.5)
    changed = (some != x).flatten(1).any(1).float().mean()
    assert 0.3 < float(changed) < 0.7


def test_augment_mixes_erase_and_noise_per_config(digits28):
    only_affine = augment(digits28, _g(0), AugmentConfig(erase_prob=0.0, noise_prob=0.0))
    ref = random_affine(digits28, _g(0))
    torch.testing.assert_close(only_affine, ref)
    with pytest.raises(ValueError, match="scale_min"):
        AugmentConfig(scale_min=1.2, scale_max=1.1)
    with pytest.raises(ValueError, match="float tensor"):
        augment(torch.zeros(2, 28, 28), _g(0))
    assert AugmentConfig.from_dict(AugmentConfig().to_dict()) == AugmentConfig()


def test_numpy_input_is_rejected_and_float64_kept():
    with pytest.raises(ValueError):
        augment(np.zeros((1, 1, 8, 8), np.float32), _g(0))
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64, generator=_g(1))
    assert augment(x, _g(0)).dtype == torch.float64
