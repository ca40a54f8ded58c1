import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
from cnnlab.models.airbench import AIRBENCH_CFGS, patch_whitening_weights


def _expected_params(widths, in_chans=3, num_classes=10):
    """Hand count: whitening conv (weight + bias), 3x3 convs without bias, BN scale + shift,
    bias-free head."""
    w0 = 2 * in_chans * 4
    total = w0 * in_chans * 4 + w0
    c_in = w0
    for c in widths:
        total += c_in * c * 9 + c * c * 9 + 2 * (2 * c)
        c_in = c
    return total + widths[-1] * num_classes


def _correlated_images(n=64, seed=0):
    """Images with strongly correlated neighbouring pixels and channels, unlike white noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 34, 34, generator=g)
    x = F.avg_pool2d(x, 3, stride=1)                                  # spatial correlation
    mix = torch.tensor([[1.0], [0.8], [0.5]])
    return (mix[None, :, :, None] * x).expand(n, 3, 32, 32) + 0.1 * torch.randn(
        n, 3, 32, 32, generator=g)                                     # channel correlation


def test_param_count_matches_the_table():
    model = cnnlab.create_model("airbench94")
    assert sum(p.numel() for p in model.parameters()) == _expected_params(
        AIRBENCH_CFGS["airbench94"]) == 1_972_792
    one = cnnlab.create_model("airbench94", in_chans=1, num_classes=5)
    assert sum(p.numel() for p in one.parameters()) == _expected_params(
        (64, 256, 256), in_chans=1, num_classes=5)


def test_frozen_parts_are_not_trainable():
    model = cnnlab.create_model("airbench94")
    assert not model.whiten.weight.requires_grad and model.whiten.bias.requires_grad
    assert not model.block1.bn1.weight.requires_grad and model.block1.bn1.bias.requires_grad


def test_whitening_makes_patch_covariance_identity():
    x = _correlated_images()
    patches = F.unfold(x.double(), 2).transpose(1, 2).reshape(-1, 12)
    raw_cov = torch.cov(patches.T)
    assert (raw_cov - torch.eye(12)).abs().max() > 0.5   # the data is far from white
    w = patch_whitening_weights(x, eps=0.0)
    assert w.shape == (24, 3, 2, 2)
    out = F.conv2d(x.double(), w[:12].double())                      # (N, 12, 31, 31)
    cov = torch.cov(out.permute(1, 0, 2, 3).reshape(12, -1))
    assert torch.allclose(cov, torch.eye(12, dtype=cov.dtype), atol=1e-6)
    assert torch.equal(w[12:], -w[:12])


def test_first_training_forward_fits_whitening_once():
    torch.manual_seed(0)
    model = cnnlab.create_model("airbench94")
    x = _correlated_images(8)
    model.eval()(x)
    assert not model.whitening_ready                     # evaluation never fits
    model.train()(x)
    assert model.whitening_ready
    fitted = model.whiten.weight.detach().clone()
    assert torch.allclose(fitted, patch_whitening_weights(x).float(), atol=1e-5)
    model(torch.randn(8, 3, 32, 32))                     # a later batch does not refit
    assert torch.equal(model.whiten.weight, fitted)


def test_state_dict_round_trip_keeps_the_fitted_whitening():
    torch.manual_seed(0)
    a = cnnlab.create_model("airbench94").train()
    a(_correlated_images(8))
    b = cnnlab.create_model("airbench94")
    b.load_state_dict(a.state_dict(), strict=True)
    assert b.whitening_ready and torch.equal(a.whiten.weight, b.whiten.weight)
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(a.eval()(x), b.eval()(x))
    b.train()(torch.randn(8, 3, 32, 32))                 # loaded: no refit on other data
    assert torch.equal(a.whiten.weight, b.whiten.weight)


def test_explicit_init_whitening():
    model = cnnlab.create_model("airbench94")
    x = _correlated_images(8)
    model.init_whitening(x)
    assert model.whitening_ready
    assert torch.allclose(model.whiten.weight, patch_whitening_weights(x).float(), atol=1e-5)


def test_dirac_init_makes_an_untrained_conv_near_identity():
    torch.manual_seed(0)
    model = cnnlab.create_model("airbench94")
    conv = model.block2.conv2                            # 256 -> 256
    x = torch.randn(2, 256, 7, 7)
    assert torch.equal(conv(x), x)
    wide = model.block1.conv1                            # 24 -> 64: the first 24 are identity
    x = torch.randn(2, 24, 15, 15)
    out = wide(x)
    assert torch.equal(out[:, :24], x)
    assert not torch.allclose(out[:, 24:], torch.zeros_like(out[:, 24:]))


def test_forward_backward_shapes_and_gradients():
    torch.manual_seed(0)
    model = cnnlab.create_model("airbench94", num_classes=7).train()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    feats = model.forward_features(x)
    assert feats.shape == (4, 256, 3, 3)
    out = model.forward_head(feats)
    assert out.shape == (4, 7)
    F.cross_entropy(out, y).backward()
    assert model.whiten.weight.grad is None
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.fc.weight.grad.abs().sum() > 0


def test_reset_classifier_keeps_a_bias_free_head():
    model = cnnlab.create_model("airbench94")
    model.reset_classifier(3)
    assert model.fc.bias is None and model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    model.reset_classifier(0)
    assert isinstance(model.fc, nn.Identity)
    assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 256)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        cnnlab.create_model("airbench94", num_classes=0)
