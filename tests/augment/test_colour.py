"""Colour jitter (fused into one matrix per image) and AlexNet's PCA lighting."""

import pytest
import torch

from cnnlab.augment.colour import (ColorJitter, PCALighting, adjust_brightness, adjust_contrast,
                                   adjust_hue, adjust_saturation, grey, pca_lighting_stats)
from cnnlab.augment.compose import uniform
from cnnlab.errors import ConfigError, InputShapeError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_fused_jitter_equals_the_four_steps_in_order():
    # mid-range pixels and mild factors, so no intermediate clipping happens
    x = 0.4 + 0.2 * torch.rand(6, 3, 7, 9, generator=gen(0))
    tf = ColorJitter(0.1, 0.1, 0.1, hue=0.05)
    out = tf(x, gen(3))
    g = gen(3)
    b, c, s, h = (uniform(6, *r, g) for r in (tf.brightness, tf.contrast, tf.saturation, tf.hue))
    ref = adjust_hue(adjust_saturation(adjust_contrast(adjust_brightness(x, b), c), s), h)
    assert torch.allclose(out, ref, atol=1e-5)


def test_jitter_factors_have_their_meaning():
    x = torch.rand(4, 3, 8, 8, generator=gen(1))
    assert torch.allclose(ColorJitter((0.5, 0.5), 0, 0)(x), (x * 0.5), atol=1e-6)
    flat = ColorJitter(0, (0.0, 0.0), 0)(x)             # contrast 0: a flat grey image
    assert torch.allclose(flat, grey(x).mean(dim=(1, 2, 3), keepdim=True).expand_as(x),
                          atol=1e-5)
    desat = ColorJitter(0, 0, (0.0, 0.0))(x)            # saturation 0: R = G = B = luma
    assert torch.allclose(desat, grey(x).expand_as(x), atol=1e-5)


def test_hue_keeps_grey_and_changes_colour():
    g = torch.full((2, 3, 4, 4), 0.3)
    assert torch.allclose(adjust_hue(g, torch.tensor([0.2, -0.4])), g, atol=1e-5)
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 0.8
    shifted = ColorJitter(0, 0, 0, hue=(0.33, 0.33))(red)
    assert shifted[0, 0].mean() < 0.5 and shifted[0, 1:].mean() > 0.1


def test_jitter_keeps_dtype_and_range_for_uint8_and_grey():
    x = torch.randint(0, 256, (5, 3, 6, 6), dtype=torch.uint8, generator=gen(0))
    out = ColorJitter(0.9, 0.9, 0.9, 0.5)(x, gen(0))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    grey_batch = torch.rand(5, 1, 6, 6, generator=gen(0))
    out = ColorJitter()(grey_batch, gen(0))
    assert out.shape == grey_batch.shape and 0 <= out.min() and out.max() <= 1


def test_jitter_is_seeded():
    x = torch.rand(5, 3, 6, 6, generator=gen(0))
    tf = ColorJitter(0.4, 0.4, 0.4, 0.1)
    assert torch.equal(tf(x, gen(1)), tf(x, gen(1)))
    assert not torch.equal(tf(x, gen(1)), tf(x, gen(2)))


def test_bad_jitter_ranges_raise():
    with pytest.raises(ConfigError, match="brightness"):
        ColorJitter(brightness=-1)
    with pytest.raises(ConfigError, match="contrast"):
        ColorJitter(contrast=(2, 1))


def _coloured_set():
    # pixels spread mostly along one colour direction: a rank-1 covariance plus tiny noise
    t = torch.rand(40, 1, 5, 5, generator=gen(0))
    direction = torch.tensor([0.8, 0.5, 0.2])[None, :, None, None]
    return 0.1 + 0.6 * t * direction + 0.001 * torch.rand(40, 3, 5, 5, generator=gen(1))


def test_pca_stats_find_the_principal_colour_direction():
    eigval, eigvec = pca_lighting_stats(_coloured_set())
    top = eigvec[:, eigval.argmax()]
    d = torch.tensor([0.8, 0.5, 0.2])
    assert abs(float(top @ d / d.norm())) > 0.999
    assert eigval.max() > 100 * eigval.sort().values[1]


def test_pca_lighting_shifts_colour_along_the_principal_components_only():
    data = _coloured_set()
    tf = PCALighting.fit(data, std=0.1)
    x = data[:4]
    diff = tf(x, gen(5)) - x                                # (N, 3, H, W)
    per_image = diff[:, :, :1, :1]
    assert torch.allclose(diff, per_image.expand_as(diff), atol=1e-6)   # same shift everywhere
    shift = per_image[:, :, 0, 0]                           # (N, 3)
    coef = shift @ tf.eigvec                                # coordinates in the eigenbasis
    # along each eigenvector the shift is alpha * eigval: negligible on the near-zero components
    main = tf.eigval.argmax()
    assert (coef[:, main].abs() > 0).all()
    others = [i for i in range(3) if i != main]
    assert coef[:, others].abs().max() < 1e-3 * coef[:, main].abs().min() + 1e-6
    assert torch.allclose(shift, tf.offsets(4, gen(5)), atol=1e-6)


def test_pca_lighting_needs_rgb():
    with pytest.raises(InputShapeError, match="RGB"):
        PCALighting(torch.ones(3), torch.eye(3))(torch.rand(2, 1, 4, 4))
    with pytest.raises(InputShapeError, match="RGB"):
        pca_lighting_stats(torch.rand(2, 1, 4, 4))


def test_pca_stats_from_uint8_match_float():
    x = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8, generator=gen(0))
    v8, e8 = pca_lighting_stats(x, batch_size=3)
    vf, ef = pca_lighting_stats(x.float() / 255)
    assert torch.allclose(v8, vf, rtol=1e-4, atol=1e-7)
    assert torch.allclose((e8.T @ ef).abs(), torch.eye(3), atol=1e-3)
