"""TrivialAugment: its ops against Pillow's ImageOps, and the per-image policy."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from cnnlab.augment.policy import (NUM_LEVELS, OPS, TrivialAugment, autocontrast, equalize,
                                   posterize, solarize)
from cnnlab.errors import ConfigError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def img():
    rng = np.random.default_rng(0)
    a = (rng.beta(2, 5, size=(12, 16, 3)) * 200 + 20).astype(np.uint8)   # skewed, not 0..255
    return a


def _t(a):
    return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255


def _pil(t):
    return (t[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def test_equalize_matches_pillow(img):
    ref = np.asarray(ImageOps.equalize(Image.fromarray(img)))
    assert np.array_equal(_pil(equalize(_t(img))), ref)


def test_posterize_and_solarize_match_pillow(img):
    m = torch.tensor([0.5])                      # 8 - 3 = 5 bits; threshold 0.5
    assert np.array_equal(_pil(posterize(_t(img), m)),
                          np.asarray(ImageOps.posterize(Image.fromarray(img), 5)))
    ref = np.asarray(ImageOps.solarize(Image.fromarray(img), threshold=128))
    got = _pil(solarize(_t(img), torch.tensor([1 - 128 / 255])))
    assert np.abs(got.astype(int) - ref).max() == 0


def test_autocontrast_stretches_each_channel(img):
    out = autocontrast(_t(img))
    assert torch.allclose(out.amin((2, 3)), torch.zeros(1, 3)) and torch.allclose(
        out.amax((2, 3)), torch.ones(1, 3))
    ref = np.asarray(ImageOps.autocontrast(Image.fromarray(img))).astype(int)
    assert np.abs(_pil(out).astype(int) - ref).max() <= 1   # Pillow truncates its table
    flat = torch.full((1, 3, 4, 4), 0.3)
    assert torch.equal(autocontrast(flat), flat)


def test_every_op_keeps_shape_and_range():
    x = torch.rand(3, 3, 10, 12, generator=gen(0))
    for name, op in OPS.items():
        for level in (0.0, 1.0):
            out = op(x, torch.full((3,), level), torch.tensor([1.0, -1.0, 1.0])).clamp(0, 1)
            assert out.shape == x.shape and torch.isfinite(out).all(), name
    ident = {n for n in OPS if torch.allclose(OPS[n](x, torch.zeros(3), torch.ones(3)), x,
                                              atol=1e-5)}
    # at level 0 the geometric and enhancement ops do nothing (wide space starts at identity)
    assert {"identity", "rotate", "shear_x", "translate_y", "brightness", "sharpness"} <= ident


def test_policy_applies_one_op_per_image_and_is_seeded():
    x = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=gen(0))
    tf = TrivialAugment()
    out = tf(x, gen(1))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(out, tf(x, gen(1))) and not torch.equal(out, tf(x, gen(2)))
    changed = torch.tensor([not torch.equal(a, b) for a, b in zip(out, x)])
    assert 0.5 < changed.float().mean() < 1.0                # identity and level 0 exist
    only = TrivialAugment(ops=("solarize",))(x, gen(1))
    assert ((only == x) | (only == 255 - x)).all()
    assert NUM_LEVELS == 31


def test_unknown_op_raises():
    with pytest.raises(ConfigError, match="unknown TrivialAugment"):
        TrivialAugment(ops=("blur",))
