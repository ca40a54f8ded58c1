import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.models.mobilenet import InvertedResidual, make_divisible, mobilenet_v2


def layout(model: nn.Module) -> list:
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
            for k, v in model.state_dict().items()]


def blocks(model: nn.Module) -> list[InvertedResidual]:
    return [m for m in model.features if isinstance(m, InvertedResidual)]


def test_state_dict_matches_torchvision(torchvision_ref):
    ref = torchvision_ref["mobilenet_v2"]
    model = mobilenet_v2()
    assert [e[0] for e in layout(model)] == [e[0] for e in ref["state_dict"]]
    assert layout(model) == ref["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == ref["params"]
    assert sum(b.numel() for b in model.buffers()) == ref["buffer_numel"]


def test_table_2_structure():
    model = mobilenet_v2()
    bs = blocks(model)
    assert len(bs) == 17  # 1 + 2 + 3 + 4 + 3 + 3 + 1 bottlenecks (Table 2)
    # Identity shortcuts exactly where a block keeps stride 1 and width: the repeats in a row.
    assert sum(b.use_res_connect for b in bs) == 10
    assert [b.stride for b in bs if b.stride == 2] == [2] * 4
    # Linear bottlenecks: each block ends with the projection's BatchNorm, no ReLU6 after it.
    assert all(isinstance(b.conv[-1], nn.BatchNorm2d) for b in bs)
    # Depthwise 3x3 convs have one group per channel.
    dw = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert all(m.groups == m.in_channels == m.out_channels for m in dw[1:])


def test_eval_shape_at_224_and_smallest_input(torchvision_ref):
    model = mobilenet_v2().eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 3, 224, 224))
        assert feats.shape == (1, 1280, 7, 7)  # stride 32 in all
        assert list(model.forward_head(feats).shape) == torchvision_ref["mobilenet_v2"][
            "output_shape_eval"]
        assert model(torch.randn(1, 3, 1, 1)).shape == (1, 1000)  # every conv pads


def test_contract_backward_and_reset():
    torch.manual_seed(0)
    model = mobilenet_v2(num_classes=3)
    x = torch.randn(2, 3, 32, 32)
    out = model.train()(x)
    assert out.shape == (2, 3)
    F.cross_entropy(out, torch.tensor([0, 2])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.features[0][0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
        torch.testing.assert_close(model.forward_head(feats), logits)
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, model.num_features) == (2, 1280)
        torch.testing.assert_close(model.classifier[-1](pre), logits)
        model.reset_classifier(5)
        assert model.num_classes == 5 and model(x).shape == (2, 5)
        model.reset_classifier(0)
        assert model(x).shape == (2, 1280)
    with pytest.raises(ConfigError):
        model.reset_classifier(-1)


@pytest.mark.parametrize("value", [3, 8, 12, 16 * 0.35, 24 * 0.75, 1280 * 1.4, 33.3])
def test_make_divisible(value):
    got = make_divisible(value)
    assert got % 8 == 0 and got >= 8
    assert got >= 0.9 * value and abs(got - value) <= 8


def test_width_multiplier():
    thin = mobilenet_v2(width_mult=0.5)
    widths = [m.out_channels for m in thin.modules() if isinstance(m, nn.Conv2d)]
    assert all(w % 8 == 0 for w in widths)
    assert thin.features[0][0].out_channels == 16
    assert thin.num_features == 1280  # section 4: the last conv keeps 1280 for width < 1
    assert mobilenet_v2(width_mult=1.4).num_features == 1792
    n = sum(p.numel() for p in thin.parameters())
    assert n < sum(p.numel() for p in mobilenet_v2().parameters())
    with pytest.raises(ConfigError):
        mobilenet_v2(width_mult=0)


def test_arguments_are_honoured():
    model = cnnlab.create_model("mobilenet_v2", num_classes=7, in_chans=1, dropout=0.5).eval()
    assert model.features[0][0].in_channels == 1
    assert model.classifier[0].p == 0.5
    with torch.no_grad():
        assert model(torch.randn(1, 1, 16, 16)).shape == (1, 7)
    with pytest.raises(InputShapeError, match="input channel"):
        model(torch.randn(1, 3, 16, 16))
    with pytest.raises(InputShapeError, match="4-D"):
        model(torch.randn(1, 16, 16))
    with pytest.raises(ConfigError):
        mobilenet_v2(dropout=2.0)
