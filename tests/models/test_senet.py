from functools import partial

import pytest
import torch

import cnnlab
from cnnlab.models.layers import SqueezeExcite
from cnnlab.models.resnet import Bottleneck, ResNet
from cnnlab.models.senet import SE_REDUCTION


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def _se_params(channels, r=16):
    return 2 * channels * channels // r + channels // r + channels  # two FCs with bias


def test_seresnet50_param_count_and_delta():
    with torch.device("meta"):
        se50 = cnnlab.create_model("seresnet50")
        r50 = cnnlab.create_model("resnet50")
    # one SE block per bottleneck: 3, 4, 6, 3 blocks of 256, 512, 1024, 2048 channels
    delta = 3 * _se_params(256) + 4 * _se_params(512) + 6 * _se_params(1024) + 3 * _se_params(2048)
    assert delta == 2_530_992
    assert _n_params(se50) == 28_088_024 == _n_params(r50) + delta
    assert 2_400_000 <= delta <= 2_600_000  # Hu et al. 2018, sec. 4: "~2.5 million additional"


def test_seresnet101_param_count():
    with torch.device("meta"):
        model = cnnlab.create_model("seresnet101")
    delta = 3 * _se_params(256) + 4 * _se_params(512) + 23 * _se_params(1024) + 3 * _se_params(2048)
    assert _n_params(model) == 44_549_160 + delta == 49_326_872  # ResNet-101 + SE


def test_keys_are_resnet50_plus_se(torchvision_ref):
    with torch.device("meta"):
        model = cnnlab.create_model("seresnet50")
    keys = list(model.state_dict())
    se_keys = [k for k in keys if ".se." in k]
    assert len(se_keys) == 16 * 4  # fc1/fc2 weight and bias in each of the 16 bottlenecks
    ref_keys = [e[0] for e in torchvision_ref["resnet50"]["state_dict"]]
    assert [k for k in keys if ".se." not in k] == ref_keys
    assert "layer1.0.se.fc1.weight" in keys and "layer4.2.se.fc2.bias" in keys


def test_every_bottleneck_has_se_with_reduction_16():
    with torch.device("meta"):
        model = cnnlab.create_model("seresnet50")
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16 and SE_REDUCTION == 16
    for b in blocks:
        assert isinstance(b.se, SqueezeExcite)
        assert b.se.channels == b.bn3.num_features
        assert b.se.fc1.out_channels == b.bn3.num_features // 16


def test_se_sits_after_bn3_before_the_addition():
    torch.manual_seed(0)
    block = Bottleneck(256, 64, se_layer=partial(SqueezeExcite, reduction=16)).eval()
    for bn in (block.bn1, block.bn2, block.bn3):  # non-trivial BN so the order matters
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(2, 256, 6, 6)
    with torch.no_grad():
        out = torch.relu(block.bn1(block.conv1(x)))
        out = torch.relu(block.bn2(block.conv2(out)))
        out = block.bn3(block.conv3(out))
        expected = torch.relu(out * block.se.gate(out) + x)  # Fig. 3: scale, then add
        torch.testing.assert_close(block(x), expected)
        without_se = torch.relu(out + x)
        assert not torch.allclose(block(x), without_se)


def test_forward_shapes_and_backward():
    torch.manual_seed(0)
    # the seresnet50 code path with one bottleneck per stage keeps the test fast
    model = ResNet(Bottleneck, (1, 1, 1, 1), num_classes=3,
                   se_layer=partial(SqueezeExcite, reduction=SE_REDUCTION)).train()
    x = torch.randn(2, 3, 64, 64)
    loss = model(x).logsumexp(1).sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.layer4[0].se.fc1.weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert model.eval().forward_features(x).shape == (2, 2048, 2, 2)


def test_seresnet50_real_forward_and_head():
    torch.manual_seed(0)
    model = cnnlab.create_model("seresnet50", num_classes=5).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
        torch.testing.assert_close(model.forward_head(feats), logits)
        model.reset_classifier(2)
        assert model(x).shape == (1, 2) and model.num_classes == 2
    assert logits.shape == (1, 5) and torch.isfinite(logits).all()


def test_zero_init_residual_makes_se_blocks_identity():
    model = ResNet(Bottleneck, (2, 1, 1, 1), zero_init_residual=True,
                   se_layer=partial(SqueezeExcite, reduction=16)).eval()
    x = torch.randn(1, 256, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(model.layer1[1](x), torch.relu(x))


@pytest.mark.parametrize("name", ["seresnet50", "seresnet101"])
def test_registered_with_paper(name):
    info = cnnlab.model_info(name)
    assert "Hu et al. 2018" in info.paper and info.input_size == 224
