import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.transfer.groups import layer_groups


def _meta(name, **kw):
    with torch.device("meta"):
        return cnnlab.create_model(name, **kw)


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_groups_partition_every_parameter(name):
    model = _meta(name)
    groups = layer_groups(model)
    names = list(groups)
    assert names[0] in ("stem", "stage1") and names[-1] == "classifier"
    assert all(g.params for g in groups.values()), names
    flat = [p for g in groups.values() for p in g.params]
    assert len(flat) == len(set(flat))                                 # disjoint
    assert sorted(flat) == sorted(n for n, _ in model.named_parameters())   # complete
    stages = [n for n in names if n.startswith("stage")]
    assert stages == [f"stage{i}" for i in range(1, len(stages) + 1)]


def test_resnet50_groups_follow_its_stages():
    g = layer_groups(_meta("resnet50"))
    assert list(g) == ["stem", "stage1", "stage2", "stage3", "stage4", "classifier"]
    assert set(g["stem"].params) == {"conv1.weight", "bn1.weight", "bn1.bias"}
    assert all(p.startswith("layer3.") for p in g["stage3"].params)
    assert g["classifier"].params == ["fc.weight", "fc.bias"]
    assert g["stage4"].out_shape == (2048, 7, 7)
    assert g.top(2) == ["stage4", "classifier"]


def test_cifar_resnet_stages_by_name_at_full_resolution():
    # layer1 keeps 32x32 like the stem: the stage name, not the resolution, splits them
    g = layer_groups(_meta("resnet20"))
    assert list(g) == ["stem", "stage1", "stage2", "stage3", "classifier"]
    assert g["stage1"].modules == ["layer1"]


def test_vgg16_head_is_fc6_fc7_and_classifier_fc8():
    g = layer_groups(_meta("vgg16"))
    assert g["head"].params == ["classifier.0.weight", "classifier.0.bias",
                                "classifier.3.weight", "classifier.3.bias"]
    assert g["classifier"].params == ["classifier.6.weight", "classifier.6.bias"]
    assert g.backbone() == ["stem", "stage1", "stage2", "stage3", "stage4"]
    assert g["stem"].out_shape == (64, 224, 224)
    assert g["stage4"].out_shape[1:] == (14, 14)


def test_densenet_and_googlenet_heads():
    d = layer_groups(_meta("densenet121"))
    assert "features.norm5.weight" in d["stage4"].params
    assert d["classifier"].params == ["classifier.weight", "classifier.bias"]
    g = layer_groups(_meta("googlenet"))
    # reset_classifier replaces the main and both auxiliary output layers
    assert set(g["classifier"].params) == {"fc.weight", "fc.bias", "aux1.fc2.weight",
                                           "aux1.fc2.bias", "aux2.fc2.weight", "aux2.fc2.bias"}
    assert all(p.startswith(("aux1.", "aux2.")) for p in g["head"].params)


def test_groups_follow_a_replaced_classifier():
    model = _meta("resnet18")
    model.reset_classifier(7)
    g = layer_groups(model)
    assert g["classifier"].params == ["fc.weight", "fc.bias"]


def test_a_model_without_the_protocol_is_a_config_error():
    with pytest.raises(ConfigError, match="forward_features"):
        layer_groups(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2)))


def test_group_of_and_top_bounds():
    g = layer_groups(_meta("resnet18"))
    assert g.group_of("layer2.0.conv1.weight") == "stage2"
    assert g.top(0) == []
    assert g.top(99) == list(g)
    with pytest.raises(ConfigError):
        g.top(-1)
