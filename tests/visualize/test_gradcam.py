"""Grad-CAM (Selvaraju et al. 2017) on constructed networks with a known answer."""

import numpy as np
import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.visualize import gradcam, gradcam_map


@pytest.mark.parametrize("side", ["left", "right"])
def test_highlights_the_half_the_decision_uses(side, nets):
    model = nets.HalfNet(side)
    x = torch.rand(1, 1, 16, 16)
    heat = gradcam(model, x, target=0, layer="features.1")
    assert heat.shape == (16, 16) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() == pytest.approx(1)
    used, unused = (heat[:, :8], heat[:, 8:]) if side == "left" else (heat[:, 8:], heat[:, :8])
    # Zero on the ignored half, except the column next to the border, which the 3x3 conv sees.
    assert used.mean() > 0.1 and used.max() == pytest.approx(1)
    assert np.abs(unused[:, 1:] if side == "left" else unused[:, :-1]).max() == 0


def test_default_layer_is_last_conv_and_inplace_relu_survives(nets):
    model = nets.HalfNet("left")
    x = torch.rand(1, 1, 16, 16)
    cam, target = gradcam_map(model, x)   # features.0, the conv, followed by an in-place ReLU
    assert cam.shape == (16, 16) and target == int(model(x).argmax())
    assert cam[:, 9:].abs().max() == 0 and cam[:, 8:].max() < cam.max() and cam[:, :8].max() > 0
    assert model.features[1].inplace


def test_layer_without_spatial_output_or_unknown_raises(nets):
    model = nets.HalfNet("left")
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ConfigError, match="fc"):
        gradcam(model, x, layer="fc")          # (N, 2): not a map
    with pytest.raises(ConfigError, match="close matches: features"):
        gradcam(model, x, layer="feature")


def test_training_gradients_are_left_alone(nets):
    model = nets.HalfNet("left")
    for p in model.parameters():
        p.grad = torch.ones_like(p)                    # as if mid-way through a training step
    gradcam(model, torch.rand(1, 1, 16, 16))
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.parameters())
    assert model.training                              # eval only inside the call
