import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.transfer.freeze import (
    freeze, freeze_all_but, freeze_bn, is_bn_frozen, trainable_groups, unfreeze, unfreeze_bn,
)
from cnnlab.transfer.groups import layer_groups


@pytest.fixture
def resnet20():
    torch.manual_seed(0)
    return cnnlab.create_model("resnet20", num_classes=10)


def _step(model, params, batch=4):
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    model.train()
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_frozen_groups_get_no_grad_and_do_not_change(resnet20):
    groups = layer_groups(resnet20)
    frozen = freeze(resnet20, ["stem", "stage1", "stage2"], groups=groups)
    params = dict(resnet20.named_parameters())
    before = {k: v.detach().clone() for k, v in params.items()}
    _step(resnet20, resnet20.parameters())  # even an optimiser holding every parameter
    for k, p in params.items():
        if k in frozen:
            assert p.grad is None and not p.requires_grad
            assert torch.equal(p, before[k]), k
    moved = [k for k in groups["stage3"].params + groups["classifier"].params
             if not torch.equal(params[k], before[k])]
    assert moved and params["fc.weight"].grad is not None
    assert trainable_groups(resnet20, groups) == ["stage3", "classifier"]


def test_bn_frozen_keeps_running_stats_and_bn_not_frozen_updates_them(resnet20):
    groups = layer_groups(resnet20)
    freeze(resnet20, ["stem"], bn=True, groups=groups)
    freeze(resnet20, ["stage1"], bn=False, groups=groups)
    stem_mean = resnet20.bn1.running_mean.clone()
    s1_mean = resnet20.layer1[0].bn1.running_mean.clone()
    _step(resnet20, [p for p in resnet20.parameters() if p.requires_grad])
    assert torch.equal(resnet20.bn1.running_mean, stem_mean)          # frozen BN: eval mode
    assert is_bn_frozen(resnet20.bn1) and not resnet20.bn1.training
    assert not torch.equal(resnet20.layer1[0].bn1.running_mean, s1_mean)  # frozen weights only
    assert resnet20.layer1[0].bn1.weight.grad is None


def test_bn_stays_frozen_across_model_train_calls(resnet20):
    freeze_bn(resnet20)
    mean = resnet20.layer2[0].bn2.running_mean.clone()
    resnet20.train()  # what fit() does at every epoch
    resnet20(torch.randn(4, 3, 32, 32))
    assert torch.equal(resnet20.layer2[0].bn2.running_mean, mean)
    assert not resnet20.layer2[0].bn2.weight.requires_grad
    n = unfreeze_bn(resnet20)
    assert n == sum(isinstance(m, nn.BatchNorm2d) for m in resnet20.modules())
    resnet20.train()
    resnet20(torch.randn(4, 3, 32, 32))
    assert not torch.equal(resnet20.layer2[0].bn2.running_mean, mean)


def test_unfreeze_restores_training_and_respects_held_bn(resnet20):
    groups = layer_groups(resnet20)
    freeze_all_but(resnet20, ["classifier"], bn=True, groups=groups)
    assert trainable_groups(resnet20, groups) == ["classifier"]
    unfreeze(resnet20, ["stage3"], bn=False, groups=groups)
    assert resnet20.layer3[0].conv1.weight.requires_grad
    assert not resnet20.layer3[0].bn1.weight.requires_grad and is_bn_frozen(resnet20.layer3[0].bn1)
    unfreeze(resnet20, ["stage3"], groups=groups)
    assert resnet20.layer3[0].bn1.weight.requires_grad and not is_bn_frozen(resnet20.layer3[0].bn1)


def test_unknown_group_names_the_valid_ones(resnet20):
    with pytest.raises(ConfigError, match="stage3"):
        freeze(resnet20, ["stage9"])


def test_frozen_bn_model_still_deep_copies(resnet20):
    import copy

    freeze_bn(resnet20)
    clone = copy.deepcopy(resnet20)
    assert is_bn_frozen(clone.bn1)
