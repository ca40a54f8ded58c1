import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.models.cifar import CIFAR_CFGS, PlainBlock, ZeroPadShortcut
from cnnlab.models.resnet import BasicBlock

DEPTHS = (20, 32, 44, 56, 110)
# He et al. 2016, Table 6 ("# params" column)
TABLE6_MILLIONS = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def _expected_params(n, num_classes=10):
    """Hand count for option A: 3x3 convs without bias, BN gamma+beta, fc with bias."""
    stem = 3 * 16 * 9 + 2 * 16
    stage1 = 2 * n * (16 * 16 * 9 + 2 * 16)
    stage2 = (16 * 32 * 9 + 2 * 32) + (2 * n - 1) * (32 * 32 * 9 + 2 * 32)
    stage3 = (32 * 64 * 9 + 2 * 64) + (2 * n - 1) * (64 * 64 * 9 + 2 * 64)
    return stem + stage1 + stage2 + stage3 + 64 * num_classes + num_classes


@pytest.mark.parametrize("depth", DEPTHS)
def test_param_counts_table6(depth):
    n = (depth - 2) // 6
    res = cnnlab.create_model(f"resnet{depth}")
    plain = cnnlab.create_model(f"plain{depth}")
    assert _n_params(res) == _n_params(plain) == _expected_params(n)  # option A adds nothing
    assert round(_n_params(res) / 1e6, 2 if depth < 100 else 1) == TABLE6_MILLIONS[depth]


def test_exact_counts():
    got = {d: _n_params(cnnlab.create_model(f"resnet{d}")) for d in (20, 110)}
    assert got == {20: 269_722, 110: 1_727_962}


def test_option_b_adds_two_projections():
    # 1x1 conv + BN at the 16->32 and 32->64 transitions; 272,474 is the often-quoted
    # ResNet-20 count of implementations that use these projections instead of option A
    b = cnnlab.create_model("resnet20", shortcut="B")
    extra = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert _n_params(b) == 269_722 + extra == 272_474
    assert isinstance(b.layer2[0].downsample, nn.Sequential)
    with pytest.raises(ConfigError, match="'A'"):
        cnnlab.create_model("resnet20", shortcut="C")


@pytest.mark.parametrize("name", sorted(CIFAR_CFGS))
def test_depth_is_6n_plus_2(name):
    block, n = CIFAR_CFGS[name]
    model = cnnlab.create_model(name)
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == 6 * n + 2 == int(name.removeprefix("resnet").removeprefix("plain"))
    blocks = [m for m in model.modules() if isinstance(m, block)]
    assert len(blocks) == 3 * n


def test_registry_metadata_and_defaults():
    for name in CIFAR_CFGS:
        info = cnnlab.model_info(name)
        assert info.input_size == 32 and info.num_classes == 10 and "He et al. 2016" in info.paper
    model = cnnlab.create_model("resnet20")
    assert model.num_classes == 10 and model.fc.out_features == 10


@pytest.mark.parametrize("name", ["resnet20", "plain20", "resnet56"])
def test_output_shapes_eval_and_train(name):
    torch.manual_seed(0)
    model = cnnlab.create_model(name)
    x = torch.randn(2, 3, 32, 32)
    assert model.train()(x).shape == (2, 10)
    with torch.no_grad():
        model.eval()
        feats = model.forward_features(x)
        logits = model(x)
    assert feats.shape == (2, 64, 8, 8)
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    torch.testing.assert_close(model.forward_head(feats), logits)
    torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats.mean(dim=(2, 3)))


def test_reset_classifier_and_in_chans():
    model = cnnlab.create_model("resnet20", in_chans=1).eval()
    model.reset_classifier(100)
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 100)
        model.reset_classifier(0)
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 64)
    assert model.num_classes == 0
    model.double().reset_classifier(3)  # the new fc follows the model's dtype (and device)
    assert model.fc.weight.dtype == torch.float64
    with pytest.raises(ConfigError, match="num_classes"):
        model.reset_classifier(-1)


def test_zero_pad_shortcut():
    x = torch.randn(2, 16, 9, 9)
    sc = ZeroPadShortcut(16, 32, stride=2)
    out = sc(x)
    assert out.shape == (2, 32, 5, 5)  # ceil(9/2), like the stride-2 3x3 conv beside it
    torch.testing.assert_close(out[:, :16], x[:, :, 0::2, 0::2])
    assert torch.all(out[:, 16:] == 0)
    assert len(list(sc.parameters())) == 0 and len(sc.state_dict()) == 0
    block = BasicBlock(16, 32, 2, sc)
    assert block(x).shape == (2, 32, 5, 5)


def _zero_branch_convs(block):
    with torch.no_grad():
        block.conv1.weight.zero_()
        block.conv2.weight.zero_()
    return block.eval()


def test_plain_block_has_no_shortcut_residual_block_does():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, 8)
    res = _zero_branch_convs(BasicBlock(16, 16))
    plain = _zero_branch_convs(PlainBlock(16, 16))
    with torch.no_grad():
        torch.testing.assert_close(res(x), torch.relu(x))  # identity + relu
        assert torch.all(plain(x) == 0)  # nothing gets through
        down = _zero_branch_convs(BasicBlock(16, 32, 2, ZeroPadShortcut(16, 32, 2)))
        torch.testing.assert_close(down(x), torch.relu(ZeroPadShortcut(16, 32, 2)(x)))


def test_whole_resnet_passes_signal_where_plain_net_does_not():
    torch.manual_seed(0)
    res = cnnlab.create_model("resnet20").eval()
    plain = cnnlab.create_model("plain20").eval()
    for model in (res, plain):
        for m in model.modules():
            if isinstance(m, (BasicBlock, PlainBlock)):
                _zero_branch_convs(m)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert res.forward_features(x).abs().sum() > 0
        assert torch.all(plain.forward_features(x) == 0)


def test_backward_resnet20():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet20").train()
    x = torch.randn(4, 3, 32, 32)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.conv1.weight.grad.abs().sum() > 0
