import re

import pytest
import torch
from safetensors.torch import save_file

import cnnlab
from cnnlab.errors import CheckpointMismatchError, ConfigError
from cnnlab.transfer.keymap import (
    TO_TIMM_VGG, KeyRule, detect_layout, load_mapped, model_shapes, parse_rules,
    remap_state_dict, resolve_rules,
)


def _meta_state(name, ref):
    """(cnnlab's shapes, torchvision's reference state dict as weightless meta tensors)."""
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    tv = {k: torch.empty(shape, device="meta") for k, shape, _ in ref[name]["state_dict"]}
    return model_shapes(model), tv


def _timm_vgg(state):
    """timm's VGG layout, written out by hand: ConvMlp pre_logits and head.fc."""
    out = {}
    for k, v in state.items():
        if k.startswith("classifier.0."):
            k = "pre_logits.fc1." + k.split(".")[-1]
            v = v.reshape(-1, 512, 7, 7) if v.ndim == 2 else v
        elif k.startswith("classifier.3."):
            k = "pre_logits.fc2." + k.split(".")[-1]
            v = v.reshape(-1, 4096, 1, 1) if v.ndim == 2 else v
        elif k.startswith("classifier.6."):
            k = "head.fc." + k.split(".")[-1]
        out[k] = v
    return out


def test_timm_resnet18_keys_are_torchvision_keys(torchvision_ref):
    shapes, state = _meta_state("resnet18", torchvision_ref)
    # timm's resnet18 names (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0/1, fc)
    timm_keys = ["conv1.weight", "bn1.running_var", "layer1.0.conv1.weight",
                 "layer2.0.downsample.0.weight", "layer2.0.downsample.1.bias", "fc.weight",
                 "fc.bias"]
    assert set(timm_keys) <= set(shapes)
    assert detect_layout(state) == "none"
    mapped = remap_state_dict(state, resolve_rules("timm-resnet", state), shapes)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == shapes


def test_timm_vgg16_maps_to_cnnlab_and_back(torchvision_ref):
    shapes, state = _meta_state("vgg16", torchvision_ref)
    timm = _timm_vgg(state)
    assert {"pre_logits.fc1.weight", "pre_logits.fc2.weight", "head.fc.weight"} <= set(timm)
    assert tuple(timm["pre_logits.fc1.weight"].shape) == (4096, 512, 7, 7)
    assert detect_layout(timm) == "timm-vgg"
    mapped = remap_state_dict(timm, resolve_rules("auto", timm), shapes)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == shapes
    # and back to timm's names: the round trip is the identity on names
    back = remap_state_dict(mapped, TO_TIMM_VGG,
                            {k: tuple(v.shape) for k, v in timm.items()})
    assert {k: tuple(v.shape) for k, v in back.items()} == \
        {k: tuple(v.shape) for k, v in timm.items()}


def test_conv_to_linear_reshape_keeps_the_computation():
    # a 7x7 conv on a 7x7 map equals the Linear layer on the flattened map, after the reshape
    torch.manual_seed(0)
    conv_w, bias = torch.randn(5, 3, 7, 7), torch.randn(5)
    mapped = remap_state_dict({"pre_logits.fc1.weight": conv_w, "pre_logits.fc1.bias": bias},
                              [KeyRule(r"^pre_logits\.fc1\.", "classifier.0.")],
                              {"classifier.0.weight": (5, 147), "classifier.0.bias": (5,)})
    x = torch.randn(2, 3, 7, 7)
    conv_out = torch.nn.functional.conv2d(x, conv_w, bias).flatten(1)
    lin_out = torch.nn.functional.linear(x.flatten(1), mapped["classifier.0.weight"],
                                         mapped["classifier.0.bias"])
    assert torch.allclose(conv_out, lin_out, atol=1e-5)


def test_legacy_densenet121_keys_are_renamed(torchvision_ref):
    shapes, state = _meta_state("densenet121", torchvision_ref)
    legacy = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
              for k, v in state.items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    assert detect_layout(legacy) == "torchvision-densenet-legacy"
    mapped = remap_state_dict(legacy, resolve_rules("timm-densenet", legacy), shapes)
    assert set(mapped) == set(shapes)
    # timm's own densenet121 names (features.*, classifier) need no rule
    assert "classifier.weight" in shapes and "features.norm5.weight" in shapes


def test_user_rules_parse_and_collisions_are_reported(tmp_path):
    rules = parse_rules(["^backbone\\.=>", "^head\\.=>fc."])
    out = remap_state_dict({"backbone.conv1.weight": torch.zeros(1), "head.bias": torch.zeros(1)},
                           rules)
    assert set(out) == {"conv1.weight", "fc.bias"}
    f = tmp_path / "rules.txt"
    f.write_text("# strip the wrapper\n^model\\.=>\n")
    assert parse_rules(str(f)) == [KeyRule("^model\\.", "")]
    for bad in ("no-arrow", "(=>x", "=>x"):
        with pytest.raises(ConfigError):
            parse_rules([bad])
    with pytest.raises(ConfigError, match="both"):
        remap_state_dict({"a.x": torch.zeros(1), "b.x": torch.zeros(1)},
                         parse_rules(["^[ab]\\.=>"]))
    with pytest.raises(ConfigError, match="auto"):
        resolve_rules("timm-foo", [])


def test_load_mapped_with_a_user_rule_then_a_mismatch(tmp_path):
    torch.manual_seed(0)
    src = cnnlab.create_model("resnet20")
    path = tmp_path / "wrapped.safetensors"
    save_file({f"backbone.{k}": v.contiguous() for k, v in src.state_dict().items()}, str(path))
    dst = cnnlab.create_model("resnet20")
    report = load_mapped(dst, path, rules=["^backbone\\.=>"])
    assert not report.missing and not report.unexpected
    assert torch.equal(dst.layer3[2].conv2.weight, src.layer3[2].conv2.weight)
    with pytest.raises(CheckpointMismatchError, match="missing"):
        load_mapped(cnnlab.create_model("resnet32"), path, rules=["^backbone\\.=>"])
