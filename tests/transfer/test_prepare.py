import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.transfer.freeze import is_bn_frozen
from cnnlab.transfer.prepare import prepare


def _resnet20():
    torch.manual_seed(0)
    return cnnlab.create_model("resnet20")


@pytest.mark.parametrize("name, n", [("resnet20", 3), ("resnet20", 1), ("lenet5", 37),
                                     ("lenet5", 10)])
def test_classifier_replaced_for_any_num_classes(name, n):
    torch.manual_seed(0)
    model = cnnlab.create_model(name)
    old = [p.detach().clone() for p in model.parameters()]
    prep = prepare(model, "linear-probe", num_classes=n, lr=0.1)
    side = model.default_input_size
    chans = model.in_chans
    out = model.eval()(torch.rand(2, chans, side, side))
    assert out.shape == (2, n) and model.num_classes == n
    # backbone untouched, only the classifier in the optimiser
    kept = [p for p, o in zip(list(model.parameters())[:4], old[:4]) if torch.equal(p, o)]
    assert len(kept) == 4
    ids = {id(p) for g in prep.param_groups for p in g["params"]}
    assert ids == {id(p) for p in prep.groups["classifier"].parameters(model)}
    assert prep.trainable == ["classifier"]


def test_top_k_layers_and_full_with_lr_mult():
    prep = prepare(_resnet20(), "top-k-layers", top_k=2, num_classes=5)
    assert prep.trainable == ["stage3", "classifier"]
    prep = prepare(_resnet20(), "full", lr=0.1, lr_mult={"backbone": 0.1})
    lrs = {g["name"].split("/")[0]: g["lr"] for g in prep.param_groups}
    assert lrs["stem"] == pytest.approx(0.01) and lrs["classifier"] == pytest.approx(0.1)
    assert prep.trainable == list(prep.groups)
    with pytest.raises(ConfigError, match="top_k"):
        prepare(_resnet20(), "top-k-layers", top_k=9)


def test_gradual_holds_every_group_in_the_optimiser_and_unfreezes_from_the_top():
    model, param_groups, callbacks = prepare(_resnet20(), "gradual", lr=1.0, freeze_bn=True)
    assert sum(len(g["params"]) for g in param_groups) == len(list(model.parameters()))
    lrs = {g["name"].split("/")[0]: g["lr"] for g in param_groups}
    assert lrs["classifier"] == 1.0 and lrs["stage3"] == pytest.approx(1 / 2.6)
    assert not model.layer3[0].conv1.weight.requires_grad
    callbacks[0].on_epoch_start(epoch=1, model=model)
    assert model.layer3[0].conv1.weight.requires_grad
    assert is_bn_frozen(model.layer3[0].bn1)


def test_auto_applies_the_table():
    prep = prepare(_resnet20(), "auto", n_images=200, similarity="similar", num_classes=4)
    assert prep.strategy == "linear-probe" and prep.recommendation.strategy == "linear-probe"
    with pytest.raises(ConfigError, match="n_images"):
        prepare(_resnet20(), "auto")
    with pytest.raises(ConfigError, match="strategy"):
        prepare(_resnet20(), "finetune-everything")


def test_linear_probe_trains_only_the_classifier_in_a_real_step():
    model, groups, _ = prepare(_resnet20(), "linear-probe", num_classes=3, lr=0.5)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(groups, lr=0.5)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)),
                                             torch.tensor([0, 1, 2, 0]))
    loss.backward()
    opt.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"fc.weight", "fc.bias"}   # BN running stats too stay put
