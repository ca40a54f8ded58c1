import re

import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.models import densenet

# torchvision's model cards (ImageNet, 1,000 classes).
PUBLISHED_PARAMS = {
    "densenet121": 7_978_856,
    "densenet161": 28_681_000,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
}


@pytest.fixture(autouse=True)
def _one_thread():
    # 2 shared CI cores: two contending intra-op threads are far slower than one.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("name", list(PUBLISHED_PARAMS))
def test_state_dict_matches_torchvision(name, torchvision_ref):
    model = getattr(densenet, name)()
    ref = torchvision_ref[name]
    got = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
           for k, v in model.state_dict().items()]
    assert [e[0] for e in got] == [e[0] for e in ref["state_dict"]]  # keys and order
    assert got == ref["state_dict"]                                 # shapes and dtypes
    assert len(got) == ref["num_state_dict_entries"]
    params = sum(p.numel() for p in model.parameters())
    assert params == ref["params"] == PUBLISHED_PARAMS[name]


def test_registered_with_paper():
    assert set(PUBLISHED_PARAMS) <= set(cnnlab.list_models("densenet*"))
    assert cnnlab.model_info("densenet121").paper.startswith("Huang")


def test_config_table_gives_the_classifier_widths(torchvision_ref):
    # Huang et al. 2017: each block adds growth_rate maps per layer; each transition halves.
    for name, cfg in densenet.DENSENET_CFGS.items():
        width = cfg["num_init_features"]
        for i, n in enumerate(cfg["block_config"]):
            width += n * cfg["growth_rate"]
            if i < len(cfg["block_config"]) - 1:
                width //= 2
        shapes = {k: shape for k, shape, _ in torchvision_ref[name]["state_dict"]}
        assert shapes["classifier.weight"] == [1000, width], name


@pytest.fixture(scope="module")
def small_densenet():
    torch.manual_seed(0)
    return densenet.densenet121(num_classes=5)


def test_eval_output_and_feature_head_split(small_densenet):
    model = small_densenet.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        out = model(x)
    assert feats.shape == (2, 1024, 2, 2)  # stride 32
    assert (feats >= 0).all()               # after the final BN-ReLU
    assert out.shape == (2, 5)
    torch.testing.assert_close(model.forward_head(feats), out)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 1024)


def test_backward_at_32x32(small_densenet):
    model = small_densenet.train()
    model.zero_grad(set_to_none=True)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 5)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 3])).backward()
    params = dict(model.named_parameters())
    for name in ("features.conv0.weight", "features.denseblock1.denselayer1.conv1.weight",
                 "features.transition2.conv.weight", "features.norm5.weight", "classifier.weight"):
        grad = params[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_dense_block_concatenates_every_layer():
    torch.manual_seed(0)
    block = densenet.DenseBlock(num_layers=3, in_features=8, growth_rate=4, bn_size=2,
                                drop_rate=0.0).eval()
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        y = block(x)
        assert y.shape == (1, 8 + 3 * 4, 5, 5)
        torch.testing.assert_close(y[:, :8], x)  # the input passes through untouched
        # the last layer's 4 maps come from all earlier maps: input plus two layers' outputs
        first = block.denselayer1([x])
        second = block.denselayer2([x, first])
        torch.testing.assert_close(y[:, 8:12], first)
        torch.testing.assert_close(y[:, 16:], block.denselayer3([x, first, second]))


def test_reset_classifier_and_in_chans():
    model = densenet.densenet121(num_classes=3, in_chans=1)
    model.reset_classifier(7)
    assert model.num_classes == 7 and model.classifier.out_features == 7
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 1, 29, 29)).shape == (1, 7)  # torchvision's minimum
        model.reset_classifier(0)
        assert model(torch.randn(1, 1, 29, 29)).shape == (1, 1024)
    with pytest.raises(ConfigError):
        model.reset_classifier(-2)
    model.double().reset_classifier(4)  # the new head follows the model's dtype (and device)
    assert model.classifier.weight.dtype == torch.float64


def test_drop_rate_is_active_only_in_training():
    torch.manual_seed(0)
    model = densenet.densenet121(num_classes=2, drop_rate=0.5)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model(x), model(x))
        model.train()
        assert not torch.allclose(model(x), model(x))


def test_convert_legacy_keys_loads_old_torchvision_files(small_densenet):
    new = small_densenet.state_dict()
    # How torchvision's published densenet*.pth files spell the layer keys: "norm.1", "conv.2".
    old = {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v
           for k, v in new.items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    converted = densenet.convert_legacy_keys(old)
    assert list(converted) == list(new)
    model = densenet.densenet121(num_classes=5)
    model.load_state_dict(converted, strict=True)
    layer = model.features.denseblock4.denselayer16
    ref_layer = small_densenet.features.denseblock4.denselayer16
    torch.testing.assert_close(layer.conv2.weight, ref_layer.conv2.weight)
