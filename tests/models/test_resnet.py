import math

import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.models.resnet import RESNET_CFGS, BasicBlock, Bottleneck, ResNet

TORCHVISION_RESNETS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "wide_resnet50_2",
]


def _layout(model):
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
            for k, v in model.state_dict().items()]


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", TORCHVISION_RESNETS)
def test_state_dict_and_params_match_torchvision(name, torchvision_ref):
    with torch.device("meta"):  # shapes only: no memory, no init cost for the 60M-param nets
        model = cnnlab.create_model(name)
    ref = torchvision_ref[name]
    got = _layout(model)
    assert [e[0] for e in got] == [e[0] for e in ref["state_dict"]]
    assert got == ref["state_dict"]
    assert _n_params(model) == ref["params"]


def test_published_param_counts():
    # He et al. 2016 / torchvision model cards: ResNet-50 25.6M, ResNet-152 60.2M, ResNeXt-101 88.8M
    with torch.device("meta"):
        counts = {n: _n_params(cnnlab.create_model(n))
                  for n in ["resnet50", "resnet152", "resnext101_32x8d"]}
    assert counts == {"resnet50": 25_557_032, "resnet152": 60_192_808,
                      "resnext101_32x8d": 88_791_336}


def test_every_family_member_is_registered_with_its_paper():
    for name in RESNET_CFGS:
        info = cnnlab.model_info(name)
        assert info.input_size == 224 and info.num_classes == 1000
        assert "2016" in info.paper or "2017" in info.paper


@pytest.mark.parametrize("name", ["resnet34", "resnext50_32x4d", "wide_resnet50_2"])
def test_output_shapes_meta(name):
    # meta tensors propagate shapes without computing (grouped and wide convs included);
    # deeper variants differ only in block counts, which the state-dict test covers
    with torch.device("meta"):
        model = cnnlab.create_model(name, num_classes=7)
        x = torch.empty(2, 3, 64, 64)
        feats = model.eval().forward_features(x)
        assert feats.shape == (2, model.num_features, 2, 2)  # 64 / 32
        assert model.forward_head(feats).shape == (2, 7)


def test_real_forward_eval_and_train():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet18", num_classes=10)
    x = torch.randn(2, 3, 64, 64)
    out_train = model.train()(x)
    with torch.no_grad():
        out_eval = model.eval()(x)
    assert out_train.shape == out_eval.shape == (2, 10)
    assert torch.isfinite(out_eval).all()
    assert not torch.allclose(out_train, out_eval)  # BN batch vs running statistics


def test_features_head_consistency_and_pre_logits():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet18").eval()
    x = torch.randn(2, 3, 48, 40)
    with torch.no_grad():
        logits = model(x)
        feats = model.forward_features(x)
        pooled = model.forward_head(feats, pre_logits=True)
    assert feats.shape == (2, 512, 2, 2)  # ceil(48/32), ceil(40/32)
    assert pooled.shape == (2, model.num_features)
    torch.testing.assert_close(pooled, feats.mean(dim=(2, 3)))
    torch.testing.assert_close(model.forward_head(feats), logits)
    torch.testing.assert_close(model.fc(pooled), logits)


def test_reset_classifier():
    model = cnnlab.create_model("resnet18").eval()
    old_fc = model.fc
    model.reset_classifier(5)
    assert model.num_classes == 5 and model.fc is not old_fc and model.fc.in_features == 512
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (1, 5)
        model.reset_classifier(0)  # pooled features only
        assert model(x).shape == (1, 512)
    with pytest.raises(ConfigError, match="num_classes"):
        model.reset_classifier(-1)
    with pytest.raises(ConfigError, match="reset_classifier"):  # a head-less build says how
        cnnlab.create_model("resnet18", num_classes=0)


def test_tiny_inputs_still_run():
    model = cnnlab.create_model("resnet18").eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 512, 1, 1)
        assert model(torch.randn(1, 3, 7, 7)).shape == (1, 1000)  # every layer keeps >= 1 pixel


def test_cifar_stem_keeps_resolution_and_only_changes_conv1():
    torch.manual_seed(0)
    cifar = cnnlab.create_model("resnet18", num_classes=10, stem="cifar")
    imagenet = cnnlab.create_model("resnet18", num_classes=10)
    assert cifar.conv1.weight.shape == (64, 3, 3, 3) and cifar.conv1.stride == (1, 1)
    with torch.no_grad():
        feats = cifar.eval().forward_features(torch.randn(2, 3, 32, 32))
    assert feats.shape == (2, 512, 4, 4)  # 32 / 8: only layers 2-4 downsample
    a, b = _layout(cifar), _layout(imagenet)
    differing = [x[0] for x, y in zip(a, b) if x != y]
    assert differing == ["conv1.weight"] and len(a) == len(b)
    with pytest.raises(RuntimeError, match="conv1.weight"):  # ImageNet weights do not fit
        cifar.load_state_dict(imagenet.state_dict())


def test_unknown_stem_is_a_config_error():
    with pytest.raises(ConfigError, match="cifar"):
        cnnlab.create_model("resnet18", stem="cifar10")


def test_in_chans():
    model = cnnlab.create_model("resnet18", in_chans=1, num_classes=3).eval()
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)


def test_v15_stride_on_the_3x3_and_projection_shortcut():
    with torch.device("meta"):
        model = cnnlab.create_model("resnet50")
    first = model.layer2[0]
    assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)
    assert first.downsample[0].stride == (2, 2) and first.downsample[0].kernel_size == (1, 1)
    assert model.layer2[1].downsample is None


def test_resnext_and_wide_bottleneck_widths():
    with torch.device("meta"):
        rx = cnnlab.create_model("resnext50_32x4d")
        wide = cnnlab.create_model("wide_resnet50_2")
        plain = cnnlab.create_model("resnet50")
    # Xie et al. 2017 Table 1: conv2 group conv is 128 wide with C=32; stage 4 is 1024 wide
    assert rx.layer1[0].conv2.groups == 32 and rx.layer1[0].conv2.out_channels == 128
    assert rx.layer4[0].conv2.out_channels == 1024
    assert wide.layer1[0].conv2.out_channels == 2 * plain.layer1[0].conv2.out_channels
    assert wide.layer1[0].conv3.out_channels == plain.layer1[0].conv3.out_channels == 256


def test_kaiming_init_and_zero_init_residual():
    torch.manual_seed(0)
    default = cnnlab.create_model("resnet18")
    # conv1: 64 filters of 7x7, fan_out = 64 * 49
    assert default.conv1.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 49)), rel=0.05)
    assert all(torch.all(b.bn2.weight == 1) for b in default.modules() if isinstance(b, BasicBlock))

    # a one-block-per-stage bottleneck ResNet: the resnet50 code path at a fraction of the cost
    zero = ResNet(Bottleneck, (2, 1, 1, 1), zero_init_residual=True).eval()
    blocks = [m for m in zero.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 5
    assert all(torch.all(b.bn3.weight == 0) and torch.all(b.bn2.weight == 1) for b in blocks)
    x = torch.randn(2, 256, 8, 8)
    with torch.no_grad():  # an identity-shortcut block now starts as relu(x)
        torch.testing.assert_close(zero.layer1[1](x), torch.relu(x))


def test_basic_block_rejects_resnext_widths():
    with pytest.raises(ConfigError, match="Bottleneck"):
        BasicBlock(64, 64, groups=32, base_width=4)


def test_backward_resnet18():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet18", num_classes=4).train()
    x = torch.randn(2, 3, 32, 32)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 3]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.conv1.weight.grad.abs().sum() > 0 and model.fc.weight.grad.abs().sum() > 0


def test_state_dict_round_trip_strict():
    torch.manual_seed(0)
    a = cnnlab.create_model("resnet18", num_classes=3).eval()
    b = cnnlab.create_model("resnet18", num_classes=3).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
        b.load_state_dict(a.state_dict(), strict=True)
        torch.testing.assert_close(a(x), b(x))
