import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.models import vgg as vgg_module

NAMES = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


def layout(model: nn.Module) -> list:
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
            for k, v in model.state_dict().items()]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(name: str, **kw) -> nn.Module:
    """Build without allocating 130M+ weights: enough for layout, counts and shapes."""
    with torch.device("meta"):
        return getattr(vgg_module, name)(**kw)


def test_every_variant_is_registered():
    assert sorted(cnnlab.list_models("vgg*")) == sorted(NAMES)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "vgg13_bn"])
def test_state_dict_matches_torchvision(name, torchvision_ref):
    ref = torchvision_ref[name]
    model = on_meta(name)
    assert [e[0] for e in layout(model)] == [e[0] for e in ref["state_dict"]]
    assert layout(model) == ref["state_dict"]
    assert n_params(model) == ref["params"]
    with torch.no_grad():
        out = model.eval()(torch.empty(1, 3, 224, 224, device="meta"))
    assert list(out.shape) == ref["output_shape_eval"]


def test_published_parameter_counts():
    assert n_params(on_meta("vgg16")) == 138_357_544  # Simonyan & Zisserman 2015, Table 2: 138M
    assert n_params(on_meta("vgg19")) == 143_667_240  # Table 2: 144M


def test_vgg13_bn_adds_two_parameters_per_conv_channel():
    # vgg13_bn is not in the torchvision fixture: check it against vgg13 plus BN's gamma and beta.
    widths = [v for v in vgg_module.VGG_CFGS["vgg13"] if v != "M"]
    assert n_params(on_meta("vgg13_bn")) == n_params(on_meta("vgg13")) + 2 * sum(widths)


@pytest.mark.parametrize("name, depth", [("vgg11", 11), ("vgg13", 13), ("vgg16", 16),
                                         ("vgg19", 19)])
def test_depth_counts_weight_layers(name, depth):
    # Table 1 counts weight layers: the convs plus three fc layers; five max-pools in all.
    model = on_meta(name + "_bn")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert len(convs) + 3 == depth
    assert all(m.kernel_size == (3, 3) and m.padding == (1, 1) for m in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.features) == len(convs)
    assert model.num_pools == 5 and model.min_input_size == 32


def test_arguments_are_honoured():
    model = on_meta("vgg16", num_classes=7, in_chans=1, dropout=0.3)
    assert model.features[0].in_channels == 1
    assert model.classifier[-1].out_features == 7 == model.num_classes
    assert {m.p for m in model.classifier if isinstance(m, nn.Dropout)} == {0.3}
    with pytest.raises(ConfigError):
        vgg_module.vgg11(dropout=-0.1)
    with pytest.raises(ConfigError, match="reset_classifier"):
        vgg_module.vgg11(num_classes=0)
    with pytest.raises(ConfigError, match="in_chans"):
        vgg_module.vgg11(in_chans=True)


def test_forward_contract_on_a_real_vgg11_bn_at_32x32():
    torch.manual_seed(0)
    model = cnnlab.create_model("vgg11_bn", num_classes=10)  # with the zoo's input check
    # Init: He (fan-out) convs, N(0, 0.01) fc layers, zero biases.
    w = model.features[0].weight
    assert w.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.15)
    assert model.classifier[0].weight.std().item() == pytest.approx(0.01, rel=0.02)
    x = torch.randn(2, 3, 32, 32)
    out = model.train()(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert model.features[1].num_batches_tracked.item() == 1
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 512, 1, 1)
        logits = model(x)
        torch.testing.assert_close(model.forward_head(feats), logits)
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, model.num_features) == (2, 4096)
        torch.testing.assert_close(model.classifier[-1](pre), logits)
        model.reset_classifier(5)
        assert model.num_classes == 5 and model(x).shape == (2, 5)
    last_pool = [n for n, m in model.named_modules() if isinstance(m, nn.MaxPool2d)][-1]
    with pytest.raises(InputShapeError, match=rf"at least 32x32.*{last_pool} \(MaxPool2d\)"):
        model(torch.randn(1, 3, 31, 31))  # 31 -> 15 -> 7 -> 3 -> 1 -> 0 at the fifth pool
    with pytest.raises(InputShapeError, match="channels"):
        model(torch.randn(1, 1, 32, 32))
