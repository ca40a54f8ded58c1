"""Training-set statistics and standardisation."""

import pytest
import torch

from cnnlab.augment.normalize import Normalize, channel_stats, mean_image
from cnnlab.errors import ConfigError, InputShapeError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_channel_stats_match_torch_over_all_pixels():
    x = torch.randint(0, 256, (13, 3, 5, 7), dtype=torch.uint8, generator=gen(0))
    mean, std = channel_stats(x, batch_size=4)               # chunked accumulation
    xf = x.double() / 255
    assert torch.allclose(mean.double(), xf.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(std.double(), xf.std(dim=(0, 2, 3), unbiased=False), atol=1e-6)


def test_standardised_training_set_has_zero_mean_unit_std():
    x = torch.rand(20, 3, 6, 6, generator=gen(1)) * 0.5 + 0.2
    z = Normalize.fit(x)(x)
    assert z.dtype == torch.float32
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)


def test_round_trip_within_1e_6():
    x = torch.rand(8, 3, 9, 9, generator=gen(2))
    norm = Normalize.fit(x)
    assert (norm.inverse(norm(x)) - x).abs().max() < 1e-6
    x8 = torch.randint(0, 256, (4, 1, 5, 5), dtype=torch.uint8, generator=gen(3))
    n8 = Normalize.fit(x8)
    assert (n8.inverse(n8(x8)) - x8.float() / 255).abs().max() < 1e-6


def test_mean_subtraction_and_mean_image():
    x = torch.rand(10, 3, 4, 6, generator=gen(4))
    sub = Normalize.fit(x, subtract_only=True)
    assert sub.std is None
    assert torch.allclose(sub(x), x - x.mean(dim=(0, 2, 3))[:, None, None], atol=1e-6)
    per_pixel = Normalize.fit(x, per_pixel=True)
    assert torch.allclose(per_pixel.mean, mean_image(x)) and per_pixel.mean.shape == (3, 4, 6)
    assert torch.allclose(per_pixel(x).mean(0), torch.zeros(3, 4, 6), atol=1e-6)


def test_constant_channel_stays_finite():
    x = torch.full((3, 1, 4, 4), 0.5)
    assert torch.isfinite(Normalize.fit(x)(x)).all()


def test_shape_mismatch_and_bad_stats_raise():
    norm = Normalize([0.5, 0.5, 0.5], [0.2, 0.2, 0.2])
    with pytest.raises(InputShapeError, match="statistics"):
        norm(torch.rand(2, 1, 4, 4))
    with pytest.raises(ConfigError, match="std"):
        Normalize([0.5, 0.5, 0.5], [0.2, 0.2])
    assert norm.state_dict()["mean"] == pytest.approx([0.5, 0.5, 0.5])
