"""Per-layer summaries: toy nets with known answers, the CS231n VGG-16 table, published MACs and
receptive fields of the zoo."""

import csv
import io
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
from cnnlab.analyze import summary
from cnnlab.errors import ConfigError, InputShapeError


class Residual(nn.Module):
    """Two 3x3 convs (rf 5) beside a 1x1 shortcut (rf 1), added, then a head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.shortcut = nn.Conv2d(3, 8, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = self.conv2(self.relu(self.conv1(x))) + self.shortcut(x)
        y = self.relu(y)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


class Branches(nn.Module):
    """Inception-style: a 3x3 and a 5x5 branch concatenated, then a matmul in forward."""

    def __init__(self):
        super().__init__()
        self.b3 = nn.Conv2d(2, 4, 3, padding=1)
        self.b5 = nn.Conv2d(2, 4, 5, padding=2)
        self.proj = nn.Parameter(torch.randn(8, 6))

    def forward(self, x):
        y = torch.cat([self.b3(x), self.b5(x)], 1)              # (N, 8, H, W)
        return y.mean((2, 3)) @ self.proj                       # (N, 6)


def test_conv_macs_and_params_exact():
    s = summary(nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1)), (3, 20, 24))
    row = s.rows[0]
    assert row.output_shape == (1, 16, 10, 12)
    assert row.macs == 16 * 3 * 3 * 3 * 10 * 12 == s.macs
    assert row.params == 16 * 3 * 9 + 16 and row.bias_params == 16 and row.weights == 16 * 27
    assert row.activations == 16 * 10 * 12 and row.activation_bytes == 4 * 16 * 10 * 12


def test_stacked_convs_receptive_field():
    s = summary(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)), (1, 16, 16))
    assert [r.rf for r in s.rows] == [(3, 3), (5, 5)]
    s = summary(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3)), (1, 16, 16))
    assert [r.rf for r in s.rows] == [(3, 3), (7, 7)] and s.rows[-1].jump == (2, 2)


def test_residual_add_takes_the_max_and_gets_its_own_row():
    s = summary(Residual(), 12)
    add = s.row("add")
    assert add.kind == "op" and add.rf == (5, 5) and s.row("shortcut").rf == (1, 1)
    # global pool over the 12x12 grid at jump 1: 5 + 11 = 16, carried through flatten and fc
    assert s.row("fc").rf == (16, 16)
    assert s.feature_row.name == "relu#2" and s.feature_rf == (5, 5)


def test_inplace_relu_is_not_counted_twice():
    s = summary(Residual(), 12)
    relu = s.row("relu")
    assert relu.new_memory is False and s.row("conv1").new_memory is True
    assert s.activations == sum(r.activations for r in s.rows) - sum(
        r.activations for r in s.rows if not r.new_memory)
    assert s.row("flatten").new_memory is False          # a view


def test_cat_and_functional_matmul():
    s = summary(Branches(), (2, 6, 6))
    cat = s.row("cat")
    assert cat.rf == (5, 5) and cat.output_shape == (1, 8, 6, 6)
    mm = s.row("matmul")
    assert mm.macs == 8 * 6
    assert s.macs == 4 * 2 * 9 * 36 + 4 * 2 * 25 * 36 + 8 * 6
    assert mm.rf == (5 + 5, 5 + 5)                      # the mean covered the 6x6 grid
    # the container's own parameter is counted on the op row that uses it
    assert mm.params == 48 and s.params == 4 * 2 * 9 + 4 + 4 * 2 * 25 + 4 + 48
    assert s.unused_params == 0


def test_macs_inside_composite_modules_are_counted():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            t = x.flatten(2).transpose(1, 2)                # (N, L, E) tokens, L = H * W
            return self.attn(t, t, t, need_weights=False)[0]

    s = summary(Attention(), (8, 3, 4))
    n_tok, e = 12, 8
    expected = n_tok * 3 * e * e + 2 * n_tok * n_tok * e + n_tok * e * e   # in-proj, QK^T & AV, out
    row = s.row("attn.multi_head_attention_forward")    # MultiheadAttention is a container
    assert s.macs == expected and row.macs == expected
    assert row.params == 4 * (8 * 8 + 8)                   # in-proj (3 matrices) and out-proj
    assert row.rf == (3, 4)                                # attention mixes every position


def test_per_image_numbers_do_not_depend_on_batch():
    one, four = summary(Residual(), 12), summary(Residual(), 12, batch_size=4)
    assert four.input_shape == (4, 3, 12, 12)
    assert [r.macs for r in one.rows] == [r.macs for r in four.rows]
    assert one.activation_bytes == four.activation_bytes
    assert four.forward_backward_bytes > one.forward_backward_bytes


def test_meta_and_cpu_agree_and_model_is_untouched():
    model = Residual().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cpu, meta = summary(model, 12), summary(model, 12, device="meta")
    assert cpu.to_dict()["rows"] == meta.to_dict()["rows"]
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_dtype_sets_bytes_not_counts():
    f32, bf16 = summary(Residual(), 12), summary(Residual(), 12, dtype=torch.bfloat16)
    assert bf16.activation_bytes * 2 == f32.activation_bytes
    assert bf16.param_bytes * 2 == f32.param_bytes and bf16.macs == f32.macs
    assert next(Residual().parameters()).dtype == torch.float32


def test_frozen_and_shared_parameters():
    model = Residual()
    model.conv1.requires_grad_(False)
    shared = nn.Conv2d(3, 3, 3, padding=1)
    tied = nn.Sequential(shared, nn.ReLU(), shared)
    s = summary(model, 12)
    assert s.row("conv1").frozen_params == 8 * 27 + 8 and s.frozen_params == 8 * 27 + 8
    t = summary(tied, 8)
    assert t.params == 3 * 27 + 3
    assert [r.params for r in t.rows] == [3 * 27 + 3, 0, 0]    # second call of the same conv


def test_channels_inferred_from_first_conv():
    s = summary(nn.Sequential(nn.Conv2d(1, 4, 3)), 10)
    assert s.input_shape == (1, 1, 10, 10)
    assert summary(nn.Sequential(nn.Conv2d(1, 4, 3)), 10, in_chans=1).input_shape == (1, 1, 10, 10)


@pytest.mark.parametrize("bad", [0, (3, 4, 5, 6), "big", (-1, 5)])
def test_bad_input_size_raises_config_error(bad):
    with pytest.raises(ConfigError, match="input_size"):
        summary(nn.Conv2d(3, 3, 3), bad)


def test_too_small_input_names_the_layer():
    net = nn.Sequential(nn.Conv2d(3, 4, 5), nn.MaxPool2d(4), nn.Conv2d(4, 4, 3))
    with pytest.raises(InputShapeError, match=r"failed in 2 \(Conv2d\)"):
        summary(net, 8)


def test_json_and_csv_exports_match_the_rows():
    s = summary(Residual(), 12)
    d = json.loads(s.to_json())
    assert [r["name"] for r in d["rows"]] == [r.name for r in s.rows]
    assert d["totals"]["macs_per_image"] == sum(r["macs"] for r in d["rows"])
    assert d["totals"]["params"] == sum(r["params"] for r in d["rows"])
    assert d["input_shape"] == [1, 3, 12, 12]
    rows = list(csv.DictReader(io.StringIO(s.to_csv())))
    assert len(rows) == len(s.rows)
    assert rows[0]["output_shape"] == "1x8x12x12" and int(rows[0]["macs"]) == s.rows[0].macs
    assert rows[s.rows.index(s.row("add"))]["rf_h"] == "5"


def test_table_shows_rows_and_totals():
    text = summary(Residual(), 12).to_table()
    assert "conv1" in text and "add" in text and "Params:" in text and "MACs per image" in text
    assert "CS231n" in text and "Receptive field" in text


# --- the zoo ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg16():
    return summary("vgg16", 224, device="meta")


def test_vgg16_reproduces_the_cs231n_table(vgg16):
    """CS231n "VGGNet in detail": per-layer memory and weights, 138M parameters."""
    convs = [r for r in vgg16.rows if r.type == "Conv2d"]
    fcs = [r for r in vgg16.rows if r.type == "Linear"]
    assert convs[0].activations == 224 * 224 * 64                    # "3.2M"
    assert convs[0].weights == 3 * 3 * 3 * 64 == 1728 and convs[0].bias_params == 64
    assert fcs[0].weights == 7 * 7 * 512 * 4096 == 102_760_448
    assert vgg16.params == 138_357_544
    # The course's lines (input, 13 conv, 5 pool, 3 FC) add up to 15,237,608 values, 61 MB; its
    # "TOTAL memory: 24M * 4 bytes ~= 93MB" line does not follow from its own rows.
    assert vgg16.conv_pool_fc_activations == 15_237_608
    assert vgg16.conv_pool_fc_activation_bytes == 4 * 15_237_608
    # most memory in the early convs, most parameters in the first FC layer
    assert max(vgg16.rows, key=lambda r: r.activations).name == "features.0"
    assert max(vgg16.rows, key=lambda r: r.params).name == fcs[0].name


def test_vgg16_receptive_field(vgg16):
    """Araujo et al. 2019: 212 at pool5 (jump 32); conv5_3 before it sees 196."""
    assert vgg16.feature_row.name == "features.30"
    assert vgg16.feature_rf == (212, 212) and vgg16.feature_row.jump == (32, 32)
    assert vgg16.row("features.28").rf == (196, 196)


# Published MACs (torchvision's model metadata; AlexNet is torchvision's one-GPU variant).
PUBLISHED_GMACS = {
    "alexnet": (224, 0.71), "vgg16": (224, 15.47), "resnet18": (224, 1.81),
    "resnet50": (224, 4.09), "googlenet": (224, 1.50), "inception_v3": (299, 5.71),
    "densenet121": (224, 2.83),
}
# Araujo et al. 2019 list AlexNet 195, VGG-16 212 and Inception-v3 1311; ResNet-50 differs by
# layout (see receptive.py and the test below). The other three are not in their table: by hand,
# ResNet-18 = 11 + 4*8 + (8 + 3*16) + (16 + 3*32) + (32 + 3*64) = 435; GoogLeNet (torchvision's,
# 3x3 in the "5x5" branch) = 27 + 2*16 + 16 + 5*32 + 16 + 2*64 = 379; DenseNet-121 =
# 11 + 6*8 + 4 + 12*16 + 8 + 24*32 + 16 + 16*64 = 2071.
FEATURE_RF = {"alexnet": 195, "vgg16": 212, "resnet18": 435, "resnet50": 427, "googlenet": 379,
              "inception_v3": 1311, "densenet121": 2071}


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_zoo_macs_and_receptive_fields(name):
    size, gmacs = PUBLISHED_GMACS[name]
    s = summary(name, size, device="meta")
    assert s.macs / 1e9 == pytest.approx(gmacs, rel=0.02)
    assert s.feature_rf == (FEATURE_RF[name],) * 2 and s.feature_row.jump == (32, 32)


def _bottleneck_stack(layout: str) -> nn.Module:
    """ResNet-50's conv layout with one channel: the receptive field depends only on the layout.

    torchvision (v1.5): stride 2 on the 3x3 of the first unit of stages 2-4; paper: on the first
    unit's first 1x1; TF-slim resnet_v1: on the 3x3 of the *last* unit of stages 1-3.
    """

    class Unit(nn.Module):
        def __init__(self, stride, on_1x1=False):
            super().__init__()
            s1, s3 = (stride, 1) if on_1x1 else (1, stride)
            self.conv = nn.Sequential(nn.Conv2d(1, 1, 1, s1), nn.Conv2d(1, 1, 3, s3, 1),
                                      nn.Conv2d(1, 1, 1))
            self.short = nn.Conv2d(1, 1, 1, stride)

        def forward(self, x):
            return self.conv(x) + self.short(x)

    units = [nn.Conv2d(1, 1, 7, 2, 3), nn.MaxPool2d(3, 2, 1)]
    for stage, n in enumerate((3, 4, 6, 3)):
        for i in range(n):
            if layout == "slim":
                units.append(Unit(2 if i == n - 1 and stage < 3 else 1))
            else:
                units.append(Unit(2 if i == 0 and stage > 0 else 1, on_1x1=layout == "paper"))
    return nn.Sequential(*units)


@pytest.mark.parametrize("layout, rf", [("torchvision", 427), ("slim", 483), ("paper", 483)])
def test_resnet50_rf_depends_on_where_the_stride_sits(layout, rf):
    """Araujo et al. list 483 for TF-slim's resnet_v1_50; the zoo's (torchvision) layout gives 427."""
    s = summary(_bottleneck_stack(layout), (1, 224, 224), device="meta")
    assert s.feature_rf == (rf, rf) and s.feature_row.jump == (32, 32)


def test_cnnlab_summary_forwards_here():
    s = cnnlab.summary(nn.Sequential(nn.Conv2d(3, 2, 3)), 8)
    assert s.rows[0].macs == 2 * 3 * 9 * 36


def test_unused_aux_heads_are_reported():
    s = summary("googlenet", 224, device="meta")
    assert s.unused_params > 0
    assert s.params - s.unused_params == sum(r.params for r in s.rows)
