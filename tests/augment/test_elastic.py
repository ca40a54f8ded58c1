"""Elastic distortions (Simard et al. 2003)."""

import pytest
import torch

from cnnlab.augment.elastic import (ElasticDistortion, displacement_field, elastic_warp,
                                    gaussian_kernel1d)
from cnnlab.errors import ConfigError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_alpha_zero_is_identity():
    x = torch.rand(3, 2, 11, 17, generator=gen(0))
    assert torch.allclose(ElasticDistortion(alpha=0.0)(x, gen(1)), x, atol=1e-5)
    x8 = torch.randint(0, 256, (3, 3, 9, 9), dtype=torch.uint8, generator=gen(0))
    assert torch.equal(ElasticDistortion(alpha=0.0)(x8, gen(1)), x8)


def test_integer_shift_field_moves_pixels():
    x = torch.rand(1, 1, 6, 8, generator=gen(0))
    disp = torch.zeros(1, 2, 6, 8)
    disp[:, 0] = 1.0                                         # read one pixel to the right
    out = elastic_warp(x, disp)
    assert torch.allclose(out[..., :-1], x[..., 1:], atol=1e-5)
    assert torch.allclose(out[..., -1], torch.zeros(1, 1, 6), atol=1e-5)   # fill outside


def test_field_is_smooth_and_scaled_by_alpha():
    rough = displacement_field(4, 40, 40, 1.0, 0.0, gen(0))
    smooth = displacement_field(4, 40, 40, 1.0, 4.0, gen(0))
    step = lambda d: (d[..., 1:] - d[..., :-1]).abs().mean()
    assert step(smooth) < step(rough) / 5                    # Gaussian smoothing
    assert torch.allclose(displacement_field(4, 40, 40, 34.0, 4.0, gen(0)), 34 * smooth)
    k = gaussian_kernel1d(4.0)
    assert len(k) == 25 and torch.isclose(k.sum(), torch.tensor(1.0))


def test_distortion_changes_the_image_and_is_seeded():
    x = torch.rand(4, 1, 28, 28, generator=gen(0))
    tf = ElasticDistortion()
    out = tf(x, gen(3))
    assert out.shape == x.shape and not torch.allclose(out, x, atol=1e-2)
    assert torch.equal(out, tf(x, gen(3)))
    assert 0 <= out.min() and out.max() <= 1


def test_negative_parameters_raise():
    with pytest.raises(ConfigError, match="sigma"):
        ElasticDistortion(sigma=-1)
