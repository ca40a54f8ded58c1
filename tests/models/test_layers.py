import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.models.layers import (
    SqueezeExcite, check_count, check_dropout, check_model_args, classifier_layer, conv1x1,
    conv3x3, kaiming_init_, normal_init_,
)


def test_conv_helpers_shapes_and_no_bias():
    x = torch.randn(2, 8, 9, 9)
    c3 = conv3x3(8, 16, stride=2, groups=4)
    c1 = conv1x1(8, 16, stride=2)
    assert c3.bias is None and c1.bias is None
    assert c3.weight.shape == (16, 2, 3, 3) and c1.weight.shape == (16, 8, 1, 1)
    assert c3(x).shape == (2, 16, 5, 5) and c1(x).shape == (2, 16, 5, 5)  # ceil(9/2) both ways
    assert conv3x3(8, 8)(x).shape == x.shape  # padding 1 keeps the size at stride 1


def test_kaiming_init_std_and_batchnorm_identity():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(64, 256, 3, bias=True), nn.BatchNorm2d(256))
    nn.init.uniform_(m[1].weight)
    nn.init.uniform_(m[1].bias)
    kaiming_init_(m)
    fan_out = 256 * 3 * 3
    assert m[0].weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.03)
    assert torch.all(m[0].bias == 0)
    assert torch.all(m[1].weight == 1) and torch.all(m[1].bias == 0)


def test_kaiming_init_fan_in_and_linear_init_in_module_order():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(64, 16, 3, bias=False), nn.Linear(300, 200), nn.Linear(300, 200))
    seen = []
    kaiming_init_(m, mode="fan_in", linear_init=lambda fc: seen.append(fc) or normal_init_(fc))
    assert m[0].weight.std().item() == pytest.approx(math.sqrt(2.0 / (64 * 9)), rel=0.05)
    assert seen == [m[1], m[2]]  # every Linear, in registration order
    assert m[1].weight.std().item() == pytest.approx(0.01, rel=0.03)
    assert torch.all(m[2].bias == 0)
    untouched = nn.Linear(300, 200)
    before = untouched.weight.clone()
    kaiming_init_(untouched)  # without linear_init, Linear layers keep PyTorch's init
    assert torch.equal(untouched.weight, before)


@pytest.mark.parametrize("value, minimum, ok", [
    (1, 1, True), (0, 0, True), (7, 1, True),
    (0, 1, False), (-1, 0, False), (2.0, 1, False), (True, 1, False), ("3", 1, False),
])
def test_check_count(value, minimum, ok):
    if ok:
        check_count("n", value, minimum)
    else:
        with pytest.raises(ConfigError, match=rf"n must be an integer >= {minimum}; got"):
            check_count("n", value, minimum)


def test_check_model_args_names_the_argument_and_points_to_reset_classifier():
    check_model_args(1, 1)
    with pytest.raises(ConfigError, match=r"num_classes.*got 0\..*reset_classifier\(0\)"):
        check_model_args(0, 3)
    with pytest.raises(ConfigError, match="in_chans must be an integer >= 1; got 0.$"):
        check_model_args(10, 0)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), None, True])
def test_check_dropout_rejects_non_probabilities(p):
    with pytest.raises(ConfigError, match=r"drop_rate must be a probability in \[0, 1\).*16"):
        check_dropout(p, "drop_rate", hint="The paper uses 16.")


def test_check_dropout_accepts_probabilities():
    for p in (0, 0.0, 0.5, 0.999):
        check_dropout(p)


def test_classifier_layer():
    torch.manual_seed(0)
    fc = classifier_layer(512, 300, init=normal_init_)
    assert isinstance(fc, nn.Linear) and fc.weight.shape == (300, 512)
    assert fc.weight.std().item() == pytest.approx(0.01, rel=0.03) and torch.all(fc.bias == 0)
    assert isinstance(classifier_layer(512, 0), nn.Identity)  # features pass through
    with pytest.raises(ConfigError, match="num_classes must be an integer >= 0; got -1"):
        classifier_layer(512, -1)
    model = nn.Conv2d(3, 8, 1).double()
    assert classifier_layer(8, 2, like=model).weight.dtype == torch.float64
    conv = classifier_layer(8, 2, like=model, layer=lambda i, o: nn.Conv2d(i, o, 1))
    assert isinstance(conv, nn.Conv2d) and conv.weight.dtype == torch.float64
    assert classifier_layer(8, 2, like=nn.ReLU()).weight.dtype == torch.float32  # no parameters


def test_every_zoo_builder_rejects_bad_counts():
    # Checked before any layer is built, so this loop costs nothing per model.
    for name in cnnlab.list_models():
        for bad in ({"num_classes": 0}, {"num_classes": -1}, {"num_classes": 10.0},
                    {"in_chans": 0}):
            with pytest.raises(ConfigError, match=next(iter(bad))):
                cnnlab.create_model(name, **bad)


# One model per family class: every reset_classifier validates alike, gives an identity head at
# 0 classes and a head on the model's dtype otherwise.
FAMILIES = ["lenet5", "alexnet", "vgg11", "googlenet", "inception_v3", "resnet18", "seresnet50",
            "resnet20", "densenet121", "squeezenet1_0", "mobilenet_v2"]


@pytest.mark.parametrize("name", FAMILIES)
def test_reset_classifier_is_the_same_contract_everywhere(name):
    if name not in cnnlab.list_models():
        pytest.skip(f"{name} is not in the zoo yet")
    info = cnnlab.model_info(name)
    with torch.device("meta"):  # structure only: no weights to allocate or initialise
        model = cnnlab.create_model(name).eval()
    side = 75 if name == "inception_v3" else min(info.input_size, 64)
    feats = model.forward_features(torch.empty(2, info.in_chans, side, side, device="meta"))
    with pytest.raises(ConfigError, match="num_classes"):
        model.reset_classifier(-1)
    model.reset_classifier(3)
    assert model.num_classes == 3 and model.forward_head(feats).shape == (2, 3)
    model.reset_classifier(0)
    assert model.num_classes == 0
    assert model.forward_head(feats).shape == (2, model.num_features)
    model.to(torch.float64).reset_classifier(2)
    assert {p.dtype for p in model.parameters()} == {torch.float64}


def _reference_gate(se: SqueezeExcite, x: torch.Tensor) -> torch.Tensor:
    """Eq. 2-3 of Hu et al. 2018 written with plain matrix products."""
    z = x.mean(dim=(2, 3))  # (N, C)
    w1 = se.fc1.weight.flatten(1)
    w2 = se.fc2.weight.flatten(1)
    return torch.sigmoid(F.linear(torch.relu(F.linear(z, w1, se.fc1.bias)), w2, se.fc2.bias))


def test_squeeze_excite_rescales_each_channel_by_a_gate_in_0_1():
    torch.manual_seed(0)
    se = SqueezeExcite(32, reduction=4)
    x = torch.randn(3, 32, 5, 6) + 0.5
    out = se(x)
    assert out.shape == x.shape
    gate = _reference_gate(se, x)  # (N, C)
    assert torch.all(gate > 0) and torch.all(gate < 1)
    torch.testing.assert_close(out, x * gate[:, :, None, None])
    torch.testing.assert_close(se.gate(x).flatten(1), gate)
    # one scale per (sample, channel): out / x is constant over the spatial positions
    ratio = out / x
    torch.testing.assert_close(ratio, ratio[:, :, :1, :1].expand_as(ratio))


def test_squeeze_excite_gate_sees_only_channel_means():
    torch.manual_seed(1)
    se = SqueezeExcite(16, reduction=4)
    x = torch.randn(2, 16, 4, 4)
    shuffled = x.flatten(2)[:, :, torch.randperm(16)].view_as(x)  # same means, other layout
    torch.testing.assert_close(se.gate(x), se.gate(shuffled))


def test_squeeze_excite_params_and_narrow_layers():
    c, r = 256, 16
    se = SqueezeExcite(c, reduction=r)
    assert sum(p.numel() for p in se.parameters()) == 2 * c * c // r + c // r + c
    assert se.fc1.out_channels == 16
    tiny = SqueezeExcite(8, reduction=16)  # 8 // 16 == 0: kept at one hidden unit
    assert tiny.fc1.out_channels == 1
    assert tiny(torch.randn(1, 8, 2, 2)).shape == (1, 8, 2, 2)


def test_squeeze_excite_rejects_bad_reduction():
    with pytest.raises(ConfigError, match="reduction"):
        SqueezeExcite(64, reduction=0)


def test_squeeze_excite_gradients_reach_both_fcs():
    torch.manual_seed(2)
    se = SqueezeExcite(8, reduction=2)
    x = torch.randn(2, 8, 3, 3, requires_grad=True)
    se(x).square().sum().backward()
    for p in [x, se.fc1.weight, se.fc1.bias, se.fc2.weight, se.fc2.bias]:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize("scheme, std", [
    ("xavier", math.sqrt(2.0 / (64 * 9 + 32 * 9))),   # uniform(+-a): std = sqrt(2/(in+out))
    ("kaiming", math.sqrt(2.0 / (64 * 9))),           # He et al. 2015: fan_in, ReLU gain
])
def test_init_weights_schemes_std_and_zero_bias(scheme, std):
    from cnnlab.models.layers import init_weights_

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(64, 32, 3), nn.BatchNorm2d(32), nn.Linear(400, 300))
    nn.init.uniform_(m[1].weight)
    bn = m[1].weight.clone()
    init_weights_(m, scheme)
    assert m[0].weight.std().item() == pytest.approx(std, rel=0.05)
    assert torch.all(m[0].bias == 0) and torch.all(m[2].bias == 0)
    assert torch.equal(m[1].weight, bn)                           # norm layers untouched
    lin = math.sqrt(2.0 / 700) if scheme == "xavier" else math.sqrt(2.0 / 400)
    assert m[2].weight.std().item() == pytest.approx(lin, rel=0.05)


def test_init_weights_default_keeps_the_model_and_bad_scheme_fails():
    from cnnlab.models.layers import init_weights_

    m = nn.Linear(3, 2)
    before = m.weight.clone()
    assert init_weights_(m, "default") is m and torch.equal(m.weight, before)
    with pytest.raises(ConfigError, match="unknown init 'glorot'"):
        init_weights_(m, "glorot")
