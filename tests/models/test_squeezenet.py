import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.models.shapes import input_limits
from cnnlab.models.squeezenet import Fire, squeezenet1_0, squeezenet1_1

BUILDERS = {"squeezenet1_0": squeezenet1_0, "squeezenet1_1": squeezenet1_1}


def layout(model: nn.Module) -> list:
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
            for k, v in model.state_dict().items()]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: cnnlab.create_model(name).eval() for name in BUILDERS}


@pytest.mark.parametrize("name", BUILDERS)
def test_state_dict_and_output_match_torchvision(name, models, torchvision_ref):
    ref, model = torchvision_ref[name], models[name]
    assert [e[0] for e in layout(model)] == [e[0] for e in ref["state_dict"]]
    assert layout(model) == ref["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == ref["params"]
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert list(out.shape) == ref["output_shape_eval"]
    assert (out >= 0).all()  # conv10 is followed by a ReLU before the average pool


def test_fire_concatenates_expand1x1_then_expand3x3():
    fire = Fire(8, 4, 6, 10)
    x = torch.randn(2, 8, 5, 5)
    out = fire(x)
    assert out.shape == (2, 16, 5, 5) and fire.out_channels == 16
    s = F.relu(fire.squeeze(x))
    torch.testing.assert_close(out[:, :6], F.relu(fire.expand1x1(s)))
    torch.testing.assert_close(out[:, 6:], F.relu(fire.expand3x3(s)))


def test_table_1_fire_widths_of_v1_0(models):
    # Iandola et al. 2016, Table 1: (s1x1, e1x1, e3x3) for fire2..fire9.
    fires = [m for m in models["squeezenet1_0"].features if isinstance(m, Fire)]
    got = [(f.squeeze.out_channels, f.expand1x1.out_channels, f.expand3x3.out_channels)
           for f in fires]
    assert got == [(16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
                   (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)]


@pytest.mark.parametrize("name", BUILDERS)
def test_smallest_input_is_tight(name, models):
    model = models[name]
    side = model.min_input_size  # torchvision's recorded minimum, kept in SQUEEZENET_CFGS
    assert input_limits(model).min_size == side  # what the zoo's check derives by itself
    with torch.no_grad():
        assert model(torch.randn(1, 3, side, side)).shape == (1, 1000)
        with pytest.raises(InputShapeError, match=f"at least {side}x{side}"):
            model(torch.randn(1, 3, side - 1, side - 1))
        with pytest.raises(RuntimeError):  # without our check, PyTorch fails there too
            model.features(torch.randn(1, 3, side - 1, side - 1))


@pytest.mark.parametrize("name", BUILDERS)
def test_contract_backward_and_reset(name):
    torch.manual_seed(0)
    model = BUILDERS[name](num_classes=4)
    x = torch.randn(2, 3, 64, 64)
    out = model.train()(x)
    assert out.shape == (2, 4)
    F.cross_entropy(out, torch.tensor([0, 3])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert model.features[0].weight.grad.abs().sum() > 0  # the gradient reaches conv1
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(feats), model(x))
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
        model.reset_classifier(5)
        assert model.num_classes == 5 and model(x).shape == (2, 5)
        model.reset_classifier(0)
        assert model(x).shape == (2, 512)
    with pytest.raises(ConfigError):
        model.reset_classifier(-1)


def test_arguments_are_honoured():
    model = cnnlab.create_model("squeezenet1_1", num_classes=3, in_chans=1, dropout=0.2).eval()
    assert model.features[0].in_channels == 1
    assert model.classifier[0].p == 0.2
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)
    with pytest.raises(InputShapeError, match="input channel"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ConfigError):
        squeezenet1_0(dropout=1.0)
    with pytest.raises(ConfigError):
        squeezenet1_0(in_chans=0)
