"""Maximally activating patches (Zeiler & Fergus 2014) and class models (Simonyan et al. 2014)."""

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.models.lenet import he_init_
from cnnlab.errors import ConfigError
from cnnlab.visualize import class_model, max_activating_patches
from cnnlab.visualize.activations import layer_field


def _spot_net():
    """One 3x3 box filter: channel 0 is the local mean brightness."""
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.ReLU(inplace=True))
    nn.init.constant_(net[0].weight, 1 / 9)
    return net


def test_brightest_spots_win_and_boxes_hold_them():
    spots = [(3, 4), (10, 12), (7, 2), (13, 13), (5, 9)]
    images = torch.zeros(len(spots), 1, 16, 16)
    for i, (r, c) in enumerate(spots):
        images[i, 0, r, c] = i + 1.0                  # image i is the (i+1)-th brightest
    model = _spot_net()
    assert layer_field(model, "0", (1, 16, 16)) == (3, 3)
    patches = max_activating_patches(model, images, "0", channel=0, k=3, batch_size=2)
    assert [p.index for p in patches] == [4, 3, 2]
    assert [p.score for p in patches] == pytest.approx([5 / 9, 4 / 9, 3 / 9])
    for p in patches:
        top, left, bottom, right = p.box
        r, c = spots[p.index]
        assert (bottom - top, right - left) == (3, 3) and p.pixels.shape == (3, 3, 1)
        assert top <= r < bottom and left <= c < right
        assert p.pixels.max() == p.index + 1.0        # the crop holds the spot


def test_bad_channel_raises():
    with pytest.raises(ConfigError, match="1 channels"):
        max_activating_patches(_spot_net(), torch.zeros(2, 1, 8, 8), "0", channel=1)


def test_class_model_increases_the_class_score():
    torch.manual_seed(0)
    model = cnnlab.create_model("lenet5").eval()
    # He-scaled output weights: the zoo starts this layer at N(0, 0.01) (initial loss = ln C),
    # whose near-zero logits would make the +1.0 gain below a statement about init scale.
    he_init_(model.classifier.output)
    x, scores = class_model(model, target=3, steps=10, seed=0)
    assert x.shape == (1, 1, 32, 32) and len(scores) == 11
    with torch.no_grad():
        final = model(x)[0]
    assert float(final[3]) == pytest.approx(scores[-1], rel=1e-4)
    assert scores[-1] > scores[0] + 1.0
    assert int(final.argmax()) == 3                   # the ascent made class 3 the winner
    with pytest.raises(ConfigError, match="0..9"):
        class_model(model, target=10, steps=1)
