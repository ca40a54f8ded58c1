"""Ten-crop and flip views for test-time augmentation."""

import pytest
import torch

from cnnlab.augment.tta import five_crop, flip_views, predict_views, ten_crop
from cnnlab.errors import InputShapeError


@pytest.fixture
def x():
    return torch.arange(2 * 3 * 8 * 10, dtype=torch.float32).reshape(2, 3, 8, 10)


def test_ten_crop_order_and_sizes(x):
    v = ten_crop(x, (4, 6))
    assert v.shape == (2, 10, 3, 4, 6)
    assert torch.equal(v[:, 0], x[..., :4, :6])              # top-left
    assert torch.equal(v[:, 1], x[..., :4, 4:])              # top-right
    assert torch.equal(v[:, 2], x[..., 4:, :6])              # bottom-left
    assert torch.equal(v[:, 3], x[..., 4:, 4:])              # bottom-right
    assert torch.equal(v[:, 4], x[..., 2:6, 2:8])            # centre
    assert torch.equal(v[:, 5], x.flip(-1)[..., :4, :6])     # then the mirror image's five
    assert torch.equal(v[:, 5:], five_crop(x.flip(-1), (4, 6)))


def test_ten_crop_is_deterministic_and_checks_size(x):
    assert torch.equal(ten_crop(x, 5), ten_crop(x, 5))
    with pytest.raises(InputShapeError, match="crop"):
        ten_crop(x, 9)


def test_flip_views_and_averaging(x):
    v = flip_views(x)
    assert v.shape == (2, 2, 3, 8, 10) and torch.equal(v[:, 1], x.flip(-1))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 10, 4))
    probs = predict_views(model, v, transform=lambda t: t / 100)
    assert probs.shape == (2, 4) and torch.allclose(probs.sum(1), torch.ones(2), atol=1e-6)
    with torch.no_grad():
        p0 = torch.softmax(model(x / 100), -1)
        p1 = torch.softmax(model(x.flip(-1) / 100), -1)
    assert torch.allclose(probs, (p0 + p1) / 2, atol=1e-6)
