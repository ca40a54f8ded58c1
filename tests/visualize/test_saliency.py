"""Saliency (Simonyan et al. 2014), guided backprop (Springenberg et al. 2015), deconvnet
(Zeiler & Fergus 2014): known answers on constructed networks."""

import numpy as np
import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.visualize import gradient_image, input_gradient, saliency


def test_linear_model_saliency_is_abs_weight(nets):
    model = nets.LinearNet((3, 8, 8), num_classes=4)
    x = torch.randn(3, 8, 8)
    for c in range(4):
        want = model.fc.weight[c].detach().abs().view(3, 8, 8).amax(0).numpy()
        got = saliency(model, x, target=c, normalize=False)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        unit = saliency(model, x, target=c)
        np.testing.assert_allclose(unit, (want - want.min()) / (want.max() - want.min()), atol=1e-6)


def test_relu_rules_closed_form(nets):
    # logit = sum(w * relu(x)). Vanilla: w [x > 0]; guided: relu(w) [x > 0]; deconv: relu(w),
    # whatever the sign of x (the deconvnet's ReLU sees only the signal coming down).
    w = torch.randn(1, 6, 6)
    x = torch.randn(1, 1, 6, 6)
    model = nets.ReluNet(w.clone())
    on = (x[0] > 0).float()
    g, _ = input_gradient(model, x, 0, "vanilla")
    torch.testing.assert_close(g, w * on)
    g, _ = input_gradient(model, x, 0, "guided")
    torch.testing.assert_close(g, w.clamp(min=0) * on)
    g, _ = input_gradient(model, x, 0, "deconv")
    torch.testing.assert_close(g, w.clamp(min=0))
    assert model.act.inplace, "the module's in-place flag is restored"


@pytest.mark.parametrize("method", ["vanilla", "guided", "deconv"])
def test_zero_where_input_is_ignored(method, nets):
    model = nets.HalfNet("left")
    x = torch.randn(1, 1, 12, 12)
    grad, _ = input_gradient(model, x, 1, method)
    assert torch.all(grad[..., 6:] == 0)   # the right half is multiplied by 0
    assert grad[..., :6].abs().sum() > 0


def test_predicted_class_is_default_and_bad_class_raises(nets):
    model = nets.LinearNet((1, 4, 4), num_classes=3)
    x = torch.randn(1, 4, 4)
    _, target = input_gradient(model, x[None])
    assert target == int(model(x[None]).argmax())
    with pytest.raises(ConfigError, match="0..2"):
        saliency(model, x, target=3)
    with pytest.raises(ConfigError, match="rule"):
        input_gradient(model, x[None], 0, "smooth")


def test_gradient_image_centres_zero_on_grey():
    g = torch.tensor([[[0.0, 2.0], [-2.0, 1.0]]])
    img = gradient_image(g)
    assert img.shape == (2, 2, 1) and img.dtype == np.uint8
    assert img[0, 0, 0] in (127, 128) and img[0, 1, 0] == 255 and img[1, 0, 0] == 0


def test_uint8_image_input_and_grads_do_not_leak(nets):
    model = nets.LinearNet((3, 8, 8), num_classes=2)
    img = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
    heat = saliency(model, img, method="guided")
    assert heat.shape == (8, 8) and heat.min() == 0 and heat.max() == pytest.approx(1)
    assert all(p.grad is None for p in model.parameters())
