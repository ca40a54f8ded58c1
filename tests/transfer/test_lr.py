import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.transfer.groups import layer_groups
from cnnlab.transfer.lr import (
    GradualUnfreezing, discriminative_param_groups, group_multipliers, layerwise_decay,
    parse_lr_mults, unfreeze_schedule,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return cnnlab.create_model("resnet20", num_classes=10)


@pytest.fixture(scope="module")
def groups(model):
    return layer_groups(model)


def test_parse_lr_mults_and_errors():
    assert parse_lr_mults("backbone=0.1, classifier=2") == {"backbone": 0.1, "classifier": 2.0}
    assert parse_lr_mults(["stage3=0.5", "stem=0"]) == {"stage3": 0.5, "stem": 0.0}
    assert parse_lr_mults(None) == {}
    for bad in ("backbone", "backbone=x", "=1", "stem=-1"):
        with pytest.raises(ConfigError):
            parse_lr_mults(bad)


def test_backbone_multiplier_puts_each_param_in_the_right_group_with_the_right_lr(model, groups):
    pg = discriminative_param_groups(model, 0.1, {"backbone": 0.1, "stage3": 0.5},
                                     weight_decay=5e-4, groups=groups)
    by_id = {id(p): g for g in pg for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(by_id) == len(named)                      # every parameter exactly once
    for gname, g in groups.items():
        want = {"stage3": 0.05, "classifier": 0.1}.get(gname, 0.01)
        for p in g.params:
            opt_group = by_id[id(named[p])]
            assert opt_group["name"].split("/")[0] == gname
            assert opt_group["lr"] == pytest.approx(want)
            # weight decay on weights only, not on biases and BN scale/shift
            assert opt_group["weight_decay"] == (5e-4 if named[p].ndim > 1 else 0.0)
    opt = torch.optim.SGD(pg, lr=1.0)                    # per-group lr overrides the default
    assert sorted({g["lr"] for g in opt.param_groups}) == pytest.approx([0.01, 0.05, 0.1])


def test_frozen_and_zero_multiplier_groups_are_left_out(model, groups):
    named = dict(model.named_parameters())
    for p in groups["stem"].params:
        named[p].requires_grad_(False)
    try:
        pg = discriminative_param_groups(model, 0.1, {"stage1": 0}, groups=groups)
        names = {g["name"].split("/")[0] for g in pg}
        assert names == {"stage2", "stage3", "classifier"}
        pg_all = discriminative_param_groups(model, 0.1, {"stage1": 0}, include_frozen=True,
                                             groups=groups)
        assert "stem" in {g["name"].split("/")[0] for g in pg_all}
    finally:
        for p in groups["stem"].params:
            named[p].requires_grad_(True)
    with pytest.raises(ConfigError, match="no trainable"):
        discriminative_param_groups(model, 0.1, {"default": 0}, groups=groups)


def test_unknown_multiplier_key_lists_the_groups(groups):
    with pytest.raises(ConfigError, match="stage3"):
        group_multipliers(groups, {"layer9": 0.1})


def test_ulmfit_layerwise_decay(groups):
    m = layerwise_decay(groups, 2.6)
    assert m["classifier"] == 1.0
    assert m["stage3"] == pytest.approx(1 / 2.6)
    assert m["stem"] == pytest.approx(2.6 ** -4)
    with pytest.raises(ConfigError):
        layerwise_decay(groups, 0.5)


def test_unfreeze_schedule_goes_top_down(groups):
    assert unfreeze_schedule(groups, 0) == ["classifier"]
    assert unfreeze_schedule(groups, 1) == ["stage3", "classifier"]
    assert unfreeze_schedule(groups, 3, every=2) == ["stage3", "classifier"]
    assert unfreeze_schedule(groups, 99) == list(groups)


def test_gradual_unfreezing_callback_sets_requires_grad_per_epoch():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet20", num_classes=10)
    cb = GradualUnfreezing(model, every=1, freeze_bn=True)
    trainable = lambda: {n for n, g in cb.groups.items()  # noqa: E731
                         if any(dict(model.named_parameters())[p].requires_grad
                                for p in g.params)}
    assert trainable() == {"classifier"}
    cb.on_epoch_start(epoch=2, model=model)
    assert trainable() == {"stage2", "stage3", "classifier"}
    assert not model.layer3[0].bn1.weight.requires_grad      # BN stays frozen when asked
    assert model.layer3[0].conv1.weight.requires_grad
    assert not model.layer1[0].conv1.weight.requires_grad
    cb.on_epoch_start(epoch=10, model=model)
    assert trainable() == set(cb.groups)


def test_gradual_unfreezing_refuses_an_optimiser_without_the_frozen_params():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet20", num_classes=10)
    cb = GradualUnfreezing(model)
    partial = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    with pytest.raises(ConfigError, match="include_frozen"):
        cb.on_train_start(model=model, optimizer=partial, start_epoch=0)
    full = torch.optim.SGD(discriminative_param_groups(model, 0.1, include_frozen=True,
                                                       groups=cb.groups), lr=0.1)
    cb.on_train_start(model=model, optimizer=full, start_epoch=1)
    assert cb.trainable == ["stage3", "classifier"]
