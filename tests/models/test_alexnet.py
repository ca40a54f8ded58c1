import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.models.alexnet import alexnet, alexnet_paper, local_response_norm, zfnet


def layout(model: nn.Module) -> list:
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
            for k, v in model.state_dict().items()]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(builder, **kw) -> nn.Module:
    """Build without allocating or initialising weights: layout and shape checks only."""
    with torch.device("meta"):
        return builder(**kw)


def conv_fc_params(convs, fcs) -> int:
    """Parameters of convs given as (in, out, k, groups) and fc layers as (in, out), with biases."""
    return (sum(cout * (cin // g) * k * k + cout for cin, cout, k, g in convs)
            + sum(fin * fout + fout for fin, fout in fcs))


def test_alexnet_state_dict_matches_torchvision(torchvision_ref):
    ref = torchvision_ref["alexnet"]
    model = on_meta(alexnet)
    assert [e[0] for e in layout(model)] == [e[0] for e in ref["state_dict"]]
    assert layout(model) == ref["state_dict"]
    assert n_params(model) == ref["params"] == 61_100_840


def test_alexnet_forward_contract(torchvision_ref):
    torch.manual_seed(0)
    model = cnnlab.create_model("alexnet").eval()  # with the zoo's input check
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert list(out.shape) == torchvision_ref["alexnet"]["output_shape_eval"]
    assert torch.isfinite(out).all()

    x = torch.randn(2, 3, 63, 63)  # torchvision's min_size for alexnet: cheaper than 224
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 256, 1, 1)
        logits = model(x)
        torch.testing.assert_close(model.forward_head(feats), logits)
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, model.num_features) == (2, 4096)
        torch.testing.assert_close(model.classifier[-1](pre), logits)
        model.train()
        a, b = model(x), model(x)
        assert a.shape == (2, 1000) and not torch.equal(a, b)  # dropout is active
        model.eval()
    with pytest.raises(InputShapeError, match="at least 63x63"):
        model(torch.randn(1, 3, 62, 62))

    model.reset_classifier(5)
    with torch.no_grad():
        assert model.num_classes == 5 and model(x).shape == (2, 5)
        model.reset_classifier(0)
        assert model(x).shape == (2, 4096)
    with pytest.raises(ConfigError):
        model.reset_classifier(-3)


def test_alexnet_paper_parameter_count_from_the_paper():
    # Krizhevsky et al. 2012, Fig. 2: (in, out, kernel, groups); the GPU split halves the
    # inputs of conv2, conv4 and conv5.
    convs = [(3, 96, 11, 1), (96, 256, 5, 2), (256, 384, 3, 1), (384, 384, 3, 2),
             (384, 256, 3, 2)]
    fcs = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]
    assert conv_fc_params(convs[:1], []) == 34_944
    assert conv_fc_params(convs, fcs) == 60_965_224
    model = on_meta(alexnet_paper)
    assert n_params(model) == 60_965_224
    groups = [m.groups for m in model.features if isinstance(m, nn.Conv2d)]
    assert groups == [1, 2, 1, 2, 2]
    assert cnnlab.model_info("alexnet_paper").input_size == 227


def test_alexnet_paper_layers_in_the_papers_order():
    model = on_meta(alexnet_paper)
    kinds = [type(m).__name__ for m in model.features]
    assert kinds[:8] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"] * 2
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3 and all((p.kernel_size, p.stride) == (3, 2) for p in pools)
    # Dropout on the outputs of fc6 and fc7 (section 4.2), not on their inputs.
    assert [type(m).__name__ for m in model.classifier] == [
        "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]


def test_lrn_computes_the_papers_formula():
    torch.manual_seed(0)
    a = 30 * torch.randn(1, 9, 2, 2, dtype=torch.float64)  # large enough for the sum to matter
    b = torch.empty_like(a)
    n_maps = a.shape[1]
    for i in range(n_maps):  # Krizhevsky et al. 2012, section 3.3, with k=2, n=5, 1e-4, 0.75
        lo, hi = max(0, i - 2), min(n_maps - 1, i + 2)
        b[:, i] = a[:, i] / (2 + 1e-4 * (a[:, lo : hi + 1] ** 2).sum(dim=1)) ** 0.75
    torch.testing.assert_close(local_response_norm()(a), b)


def test_alexnet_paper_shapes_init_and_input_check():
    torch.manual_seed(0)
    model = cnnlab.create_model("alexnet_paper").eval()
    sizes = []
    hook = model.features[0].register_forward_hook(lambda m, i, o: sizes.append(o.shape))
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 3, 227, 227))
    hook.remove()
    assert sizes == [(1, 96, 55, 55)] and feats.shape == (1, 256, 6, 6)
    with torch.no_grad():
        assert model.forward_head(feats).shape == (1, 1000)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.classifier if isinstance(m, nn.Linear)]
    # Section 5: biases 1 in conv2, conv4, conv5, fc6, fc7; 0 elsewhere; weights N(0, 0.01).
    ones = [bool((m.bias == 1).all()) for m in convs + fcs]
    zeros = [bool((m.bias == 0).all()) for m in convs + fcs]
    assert ones == [False, True, False, True, True, True, True, False]
    assert zeros == [not o for o in ones]
    assert fcs[0].weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert abs(fcs[0].weight.mean().item()) < 1e-4
    with pytest.raises(InputShapeError) as exc:
        model(torch.randn(1, 3, 224, 224))  # conv1 gives 54x54, and fc6 then gets 5x5 maps
    msg = str(exc.value)
    assert "takes 227x227 to" in msg and "--image-size 227" in msg
    assert "55x55 conv1 maps need 227x227" in msg  # the model's input_hint


def test_zfnet_parameter_count_from_figure_3():
    # Zeiler & Fergus 2014, Fig. 3: 96 7x7, 256 5x5, 384 3x3, 384 3x3, 256 3x3 (dense, one GPU),
    # fc 4096, 4096, 1000: 14,208 + 614,656 + 885,120 + 1,327,488 + 884,992 + 58,631,144.
    convs = [(3, 96, 7, 1), (96, 256, 5, 1), (256, 384, 3, 1), (384, 384, 3, 1),
             (384, 256, 3, 1)]
    fcs = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]
    assert conv_fc_params(convs, fcs) == 62_357_608
    assert n_params(on_meta(zfnet)) == 62_357_608


def test_zfnet_feature_map_sizes_are_figure_3s():
    model = cnnlab.create_model("zfnet").eval()
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
             for m in model.features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert sizes == [(96, 110, 110), (96, 55, 55), (256, 26, 26), (256, 13, 13),
                     (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6)]
    assert out.shape == (1, 1000)
    assert all((m.bias == 0).all() for m in model.modules() if isinstance(m, nn.Conv2d))
    with pytest.raises(InputShapeError, match=r"got 200x200.*--image-size 224\. Its fc6"):
        model(torch.randn(1, 3, 200, 200))


@pytest.mark.parametrize("builder", [alexnet, alexnet_paper, zfnet])
def test_in_chans_num_classes_and_dropout_are_honoured(builder):
    with torch.device("meta"):
        model = cnnlab.create_model(builder.__name__, num_classes=7, in_chans=1, dropout=0.25)
    assert model.features[0].in_channels == 1 and model.in_chans == 1
    assert model.classifier[-1].out_features == 7 and model.num_classes == 7
    assert {m.p for m in model.classifier if isinstance(m, nn.Dropout)} == {0.25}
    with pytest.raises(InputShapeError, match="input channel"):
        model(torch.empty(1, 3, 227, 227, device="meta"))
    with pytest.raises(ConfigError):
        builder(dropout=1.5)
    with pytest.raises(ConfigError):
        builder(num_classes=0)
