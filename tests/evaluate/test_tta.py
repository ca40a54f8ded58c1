"""Test-time augmentation: view shapes, AlexNet's ten crops, and invariances."""

import pytest
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.evaluate.tta import tencrop_size, tta_probs, tta_views


def test_view_counts_and_shapes():
    x = torch.randn(3, 2, 32, 32)
    assert len(tta_views(x, None)) == len(tta_views(x, "none")) == 1
    flip = tta_views(x, "flip")
    assert len(flip) == 2 and torch.equal(flip[1], x.flip(-1))
    crops = tta_views(x, "tencrop")
    assert len(crops) == 10 and all(v.shape == x.shape for v in crops)
    with pytest.raises(ConfigError, match="tencrop"):
        tta_views(x, "fivecrop")


def test_tencrop_follows_alexnet_geometry():
    assert tencrop_size(224) == 256 and tencrop_size(32) == 37
    # a 224 ramp resized to 256: the corner crops start at 0 and 32, the centre at 16
    x = torch.arange(224.0).expand(1, 1, 224, 224)
    crops = tta_views(x, "tencrop")
    big = torch.nn.functional.interpolate(x, size=(256, 256), mode="bilinear",
                                          align_corners=False)
    assert torch.equal(crops[0], big[..., :224, :224])
    assert torch.equal(crops[3], big[..., 32:, 32:])
    assert torch.equal(crops[4], big[..., 16:240, 16:240])
    assert torch.equal(crops[9], crops[4].flip(-1))             # even margins: a mirrored centre
    mirrored = {tuple(v.flip(-1)[0, 0, 0, :3].tolist()) for v in crops[5:]}
    assert mirrored == {tuple(v[0, 0, 0, :3].tolist()) for v in crops[:5]}
    assert crops[1][0, 0, 0, 0] > crops[0][0, 0, 0, 0]          # the right corner sees more ramp


def test_flip_tta_of_flip_invariant_model_is_no_tta():
    torch.manual_seed(0)
    # global average pooling forgets where things are, so the mirror image scores the same
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 5)).eval()
    x = torch.randn(4, 3, 16, 16)
    plain = tta_probs(model, x)
    assert torch.allclose(plain, model(x).softmax(1))
    assert torch.allclose(tta_probs(model, x, "flip"), plain, atol=1e-6)
    assert tta_probs(model, x, "tencrop").shape == (4, 5)
    assert torch.allclose(tta_probs(model, x, "tencrop").sum(1), torch.ones(4))


def test_tta_averages_probabilities_of_the_views():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).eval()   # sees position
    x = torch.randn(2, 2, 4, 4)
    expected = (model(x).softmax(1) + model(x.flip(-1)).softmax(1)) / 2
    assert torch.allclose(tta_probs(model, x, "flip"), expected, atol=1e-6)
    assert not torch.allclose(tta_probs(model, x, "flip"), tta_probs(model, x), atol=1e-4)
