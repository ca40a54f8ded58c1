import math

import pytest
import torch
import torch.nn.functional as F

import cnnlab
from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.models.lenet import (
    C3_TABLE, PartialConv2d, ScaledTanh, Subsampling, lenet5, lenet5_paper,
)

BUILDERS = [lenet5, lenet5_paper]


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_lenet5_has_61706_parameters():
    # C1 6*(25+1), C3 16*(6*25+1), C5 400*120+120, F6 120*84+84, output 84*10+10.
    expected = 6 * 26 + 16 * 151 + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert expected == 61_706
    assert n_params(lenet5()) == expected


def test_lenet5_paper_parameter_counts_are_the_papers():
    model = lenet5_paper()
    f, c = model.features, model.classifier
    # LeCun et al. 1998, section II-B gives each layer's trainable parameters.
    per_layer = {"c1": 156, "s2": 12, "c3": 1_516, "s4": 32, "c5": 48_120, "f6": 10_164}
    got = {"c1": n_params(f.c1), "s2": n_params(f.s2), "c3": n_params(f.c3),
           "s4": n_params(f.s4), "c5": n_params(c.c5), "f6": n_params(c.f6)}
    assert got == per_layer
    assert sum(per_layer.values()) == 60_000  # "only 60,000 trainable parameters"
    assert n_params(model) == 60_000 + 84 * 10 + 10  # plus our linear output layer


def test_c3_table_is_table_one():
    # Section II-B: C3 maps 0-5 take 3 neighbouring S2 maps, 6-11 four neighbouring, 12-14 four
    # non-neighbouring ones, map 15 all six.
    expect = [{(j + k) % 6 for k in range(3)} for j in range(6)]
    expect += [{(j + k) % 6 for k in range(4)} for j in range(6)]
    expect += [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}, set(range(6))]
    assert [set(row) for row in C3_TABLE] == expect
    assert sum(len(row) for row in C3_TABLE) == 60


def test_c3_connects_only_the_tabled_maps():
    layer = PartialConv2d(C3_TABLE, 6, 5)
    x = torch.randn(1, 6, 14, 14, requires_grad=True)
    out = layer(x)
    assert out.shape == (1, 16, 10, 10)
    for j, row in enumerate(C3_TABLE):
        (g,) = torch.autograd.grad(out[:, j].sum(), x, retain_graph=True)
        touched = {i for i in range(6) if g[:, i].abs().sum() > 0}
        assert touched == set(row), f"C3 map {j}"


def test_partial_conv_is_a_sum_of_per_connection_convolutions():
    layer = PartialConv2d(C3_TABLE, 6, 5).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 6, 9, 9, dtype=torch.float64)
    expected, c = [], 0
    for j, row in enumerate(C3_TABLE):
        acc = layer.bias[j].expand(2, 1, 5, 5).clone()
        for i in row:
            acc = acc + F.conv2d(x[:, i : i + 1], layer.weight[c][None, None])
            c += 1
        expected.append(acc)
    torch.testing.assert_close(layer(x), torch.cat(expected, dim=1))


def test_dense_weight_is_the_equivalent_ordinary_kernel():
    layer = PartialConv2d(C3_TABLE, 6, 5).double()
    x = torch.randn(1, 6, 10, 10, dtype=torch.float64)
    dense = layer.dense_weight()
    assert dense.shape == (16, 6, 5, 5)
    nonzero = dense.abs().sum(dim=(2, 3)) > 0  # (out, in)
    assert [set(row.nonzero().flatten().tolist()) for row in nonzero] == [set(r) for r in C3_TABLE]
    torch.testing.assert_close(layer(x), F.conv2d(x, dense, layer.bias))


def test_partial_conv_rejects_a_bad_table():
    with pytest.raises(ConfigError):
        PartialConv2d([(0, 7)], 6, 5)


def test_subsampling_sums_2x2_windows_times_a_coefficient_plus_bias():
    layer = Subsampling(3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, -1.0, 2.0]))
        layer.bias.copy_(torch.tensor([0.0, 1.0, -3.0]))
    x = torch.arange(3 * 4 * 4, dtype=torch.float32).view(1, 3, 4, 4)
    sums = x.view(1, 3, 2, 2, 2, 2).sum(dim=(3, 5))  # rows and columns in pairs
    expected = sums * layer.weight.view(1, 3, 1, 1) + layer.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(layer(x), expected)


def test_scaled_tanh_maps_plus_minus_one_to_themselves():
    f = ScaledTanh()
    out = f(torch.tensor([-1.0, 0.0, 1.0, 100.0]))
    torch.testing.assert_close(out[:3], torch.tensor([-1.0, 0.0, 1.0]), atol=1e-4, rtol=0)
    assert out[3].item() == pytest.approx(1.7159, abs=1e-4)  # the amplitude A


def test_paper_init_is_uniform_within_2_4_over_fan_in():
    model = lenet5_paper()
    f, c = model.features, model.classifier
    assert f.c1.weight.abs().max() <= 2.4 / 25
    assert c.c5.weight.abs().max() <= 2.4 / (16 * 25)
    assert f.s2.weight.abs().max() <= 2.4 / 4
    start = 0
    for row in C3_TABLE:
        w = f.c3.weight[start : start + len(row)]
        assert w.abs().max() <= 2.4 / (len(row) * 25)
        start += len(row)
    # Spread, not a constant: a uniform(-b, b) has std b / sqrt(3).
    assert c.c5.weight.std().item() == pytest.approx(2.4 / 400 / math.sqrt(3), rel=0.05)
    assert all(m.bias.abs().sum() == 0 for m in (f.c1, f.c3, c.c5, c.f6))


def test_relu_variant_uses_he_init():
    c5 = lenet5().classifier.c5.weight
    assert c5.std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.05)


@pytest.mark.parametrize("builder", BUILDERS)
def test_forward_shapes_train_mode_and_backward(builder):
    torch.manual_seed(0)
    model = builder()
    x = torch.randn(4, 1, 32, 32)
    assert model.forward_features(x).shape == (4, 16, 5, 5)
    out = model.train()(x)
    assert out.shape == (4, 10)
    F.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("builder", BUILDERS)
def test_head_consistency_pre_logits_and_reset(builder):
    model = builder().eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
        torch.testing.assert_close(model.forward_head(feats), logits)
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (3, model.num_features) == (3, 84)
        torch.testing.assert_close(model.classifier.output(pre), logits)
        model.reset_classifier(5)
        assert model.num_classes == 5 and model(x).shape == (3, 5)
        model.reset_classifier(0)
        assert model(x).shape == (3, 84)
    with pytest.raises(ConfigError):
        model.reset_classifier(-1)


@pytest.mark.parametrize("builder", BUILDERS)
def test_learns_a_tiny_batch(builder):
    torch.manual_seed(0)
    model = builder()
    x, y = torch.randn(16, 1, 32, 32), torch.arange(16) % 10
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_create_model_defaults_and_registry_info():
    for name in ("lenet5", "lenet5_paper"):
        info = cnnlab.model_info(name)
        assert (info.input_size, info.in_chans, info.num_classes) == (32, 1, 10)
        assert len(info.mean) == len(info.std) == 1
        model = cnnlab.create_model(name)
        assert model.num_classes == 10
        assert model.features.c1.weight.shape == (6, 1, 5, 5)


def test_in_chans_and_num_classes_are_honoured():
    model = lenet5_paper(num_classes=26, in_chans=3).eval()
    assert model.features.c1.weight.shape == (6, 3, 5, 5)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 26)


@pytest.mark.parametrize("shape, hint", [
    ((2, 1, 28, 28), "32x32.*pads MNIST's 28x28"),     # MNIST without padding
    ((2, 1, 36, 36), "32x32 to 35x35"),                # C5 takes a fixed 5x5 map
    ((2, 3, 32, 32), "channel"),
    ((1, 32, 32), "4-D"),
])
def test_bad_input_raises_input_shape_error(shape, hint):
    model = cnnlab.create_model("lenet5")  # the zoo's input check comes with create_model
    with pytest.raises(InputShapeError, match=hint):
        model(torch.zeros(shape))


def test_bad_constructor_arguments_raise_config_error():
    with pytest.raises(ConfigError, match="num_classes"):
        lenet5(num_classes=0)
    with pytest.raises(ConfigError, match="in_chans"):
        lenet5_paper(in_chans=0)
    with pytest.raises(ConfigError, match="num_classes"):
        lenet5(num_classes=10.0)
