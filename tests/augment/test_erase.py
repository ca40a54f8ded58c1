"""Cutout and random erasing."""

import pytest
import torch

from cnnlab.augment.erase import Cutout, RandomErasing, box_mask, cutout_boxes
from cnnlab.errors import ConfigError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _rect(zero):
    """(rows, cols) span of the True pixels of a (H, W) mask and whether they fill a rectangle."""
    rows, cols = zero.any(1).nonzero()[:, 0], zero.any(0).nonzero()[:, 0]
    h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    return h, w, int(zero.sum()) == h * w


def test_cutout_zeroes_exactly_the_patch_area():
    x = torch.ones(64, 3, 20, 20)
    out = Cutout(8)(x, gen(0))
    y0, x0, y1, x1 = cutout_boxes(64, 20, 20, 8, gen(0))   # the same draws
    mask = box_mask(20, 20, y0, x0, y1, x1)[:, 0]
    zero = out[:, 0] == 0
    assert torch.equal(zero, mask)
    assert ((out == 0) == zero[:, None]).all()              # all channels alike
    for z in zero:
        h, w, full = _rect(z)
        assert full and h <= 8 and w <= 8
    sides = torch.tensor([_rect(z)[:2] for z in zero])
    assert (sides == 8).all(dim=1).any() and (sides < 8).any()   # whole and border-clipped patches


def test_cutout_keeps_uint8_and_pixels_outside_the_patch():
    x = torch.randint(1, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=gen(0))
    out = Cutout(4)(x, gen(1))
    assert out.dtype == torch.uint8
    keep = out != 0
    assert torch.equal(out[keep], x[keep])
    assert torch.equal(Cutout(4, p=0.0)(x, gen(1)), x)


def test_random_erasing_rectangle_area_in_range():
    x = torch.full((200, 1, 30, 30), 0.5)
    out = RandomErasing(p=1.0, value=0.0)(x, gen(0))
    erased = out[:, 0] == 0
    frac = erased.flatten(1).float().mean(1)
    assert (frac > 0).float().mean() > 0.95                  # nearly every draw fits in 10 tries
    assert frac.max() <= 0.4 + 0.05 and frac[frac > 0].min() >= 0.02 - 0.01
    for z in erased[frac > 0][:20]:
        assert _rect(z)[2]


def test_random_erasing_random_fill_and_probability():
    x = torch.zeros(400, 3, 12, 12, dtype=torch.uint8)
    out = RandomErasing(p=0.5)(x, gen(3))
    hit = out.flatten(1).any(1)
    assert 0.35 < hit.float().mean() < 0.65
    assert out.max() > 200                                   # random values span 0..255
    assert torch.equal(RandomErasing(p=0.5)(x, gen(3)), out)


def test_random_erasing_rejects_bad_settings():
    with pytest.raises(ConfigError, match="scale"):
        RandomErasing(scale=(0.5, 0.1))
    with pytest.raises(ConfigError, match="value"):
        RandomErasing(value="noise")
