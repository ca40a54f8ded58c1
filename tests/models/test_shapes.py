"""Tests for cnnlab.models.shapes: the input check every zoo model carries."""

import copy
import pickle

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import InputShapeError
from cnnlab.models import shapes
from cnnlab.models.shapes import InputLimits, attach_input_check, input_limits


def toy() -> nn.Sequential:
    # Two unpadded 3x3 convs, each followed by a 2x2 max-pool: the side goes
    # s -> s-2 -> (s-2)//2 -> (s-2)//2-2 -> ((s-2)//2-2)//2, so the smallest valid s is 10.
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5),
    )
    net.model_name = "toy"
    return attach_input_check(net)


def smallest_side_by_formula() -> int:
    def side(s):
        a = s - 2
        b = a // 2
        c = b - 2
        return min(a, b, c, c // 2)

    return next(s for s in range(1, 100) if side(s) >= 1)


def meta_model(name: str, **kw) -> nn.Module:
    if name not in cnnlab.list_models():
        pytest.skip(f"{name} is not in the zoo yet")
    with torch.device("meta"):  # structure only: the check needs no weights
        return cnnlab.create_model(name, **kw)


def test_valid_input_runs_and_limits_match_the_arithmetic():
    net = toy().eval()
    assert net(torch.randn(2, 3, 10, 10)).shape == (2, 5)
    assert input_limits(net) == InputLimits(in_chans=3, min_size=smallest_side_by_formula())


@pytest.mark.parametrize("side, layer", [(9, "5 (MaxPool2d)"), (5, "3 (Conv2d)")])
def test_too_small_input_names_the_layer_and_the_minimum(side, layer):
    net = toy().eval()
    with pytest.raises(InputShapeError) as exc:
        net(torch.randn(1, 3, side, side))
    msg = str(exc.value)
    assert f"toy needs at least 10x10 input; got {side}x{side}" in msg
    assert f"vanishes at {layer}" in msg
    assert "--image-size 10" in msg


def test_non_square_input_is_checked_per_side():
    net = toy().eval()
    assert net(torch.randn(1, 3, 10, 40)).shape == (1, 5)
    with pytest.raises(InputShapeError, match="got 40x9"):
        net(torch.randn(1, 3, 40, 9))


def test_fixed_size_classifier_gets_an_upper_limit_too():
    # A 3x3 conv then a Linear on the flattened 2x6x6 map: only 8x8 inputs fit.
    net = attach_input_check(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 3)))
    assert net(torch.randn(1, 1, 8, 8)).shape == (1, 3)
    assert input_limits(net) == InputLimits(in_chans=1, min_size=8, max_size=8)
    with pytest.raises(InputShapeError) as exc:
        net(torch.randn(1, 1, 16, 16))
    msg = str(exc.value)
    assert "takes exactly 8x8 input; got 16x16" in msg
    assert "no longer fits 2 (Linear)" in msg and "--image-size 8" in msg


def test_wrong_channel_count_suggests_in_chans():
    with pytest.raises(InputShapeError) as exc:
        toy()(torch.randn(1, 1, 16, 16))
    msg = str(exc.value)
    assert "expects 3 input channels" in msg and "got 1." in msg and "in_chans=1" in msg


def test_wrong_rank_suggests_a_batch_dimension():
    with pytest.raises(InputShapeError, match=r"4-D batch.*\(3, 16, 16\).*x\[None\]"):
        toy()(torch.randn(3, 16, 16))


def test_limits_are_computed_once_then_only_compared(monkeypatch):
    net = toy().eval()
    net(torch.randn(1, 3, 12, 12))

    def boom(*a, **k):
        raise AssertionError("probed again on the normal path")

    monkeypatch.setattr(shapes, "_compute_limits", boom)
    monkeypatch.setattr(shapes, "_Prober", boom)
    for _ in range(3):
        net(torch.randn(1, 3, 12, 12))


def test_probe_leaves_rng_and_user_hooks_alone():
    net = toy().train()
    seen = []
    net[3].register_forward_hook(lambda m, a, out: seen.append(out.device.type))
    state = torch.get_rng_state()
    input_limits(net)  # probes on meta, with Dropout in training mode
    assert torch.equal(state, torch.get_rng_state())
    assert seen == []
    net(torch.randn(1, 3, 12, 12))
    assert seen == ["cpu"]


def test_replaced_stem_is_picked_up():
    net = toy().eval()
    net(torch.randn(1, 3, 12, 12))
    net[0] = nn.Conv2d(1, 4, 3)  # e.g. a grayscale fine-tune after the first call
    assert net(torch.randn(1, 1, 12, 12)).shape == (1, 5)
    with pytest.raises(InputShapeError, match="expects 1 input channel "):
        net(torch.randn(1, 3, 12, 12))


def test_deepcopy_and_pickle_keep_the_check():
    net = toy().eval()
    net(torch.randn(1, 3, 12, 12))
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        x = torch.randn(1, 3, 12, 12)
        torch.testing.assert_close(clone(x), net(x))
        with pytest.raises(InputShapeError, match="at least 10x10"):
            clone(torch.randn(1, 3, 8, 8))


def test_attach_twice_registers_one_hook():
    net = toy()
    attach_input_check(net)
    assert list(net._forward_pre_hooks.values()).count(shapes.cnnlab_input_check) == 1


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_and_trace_still_work():
    net = toy().eval()
    x = torch.randn(1, 3, 16, 16)
    scripted = torch.jit.script(net)
    torch.testing.assert_close(scripted(x), net(x))
    traced = torch.jit.trace(toy().eval(), x)  # fresh model: the first call happens in the trace
    assert traced(torch.randn(2, 3, 20, 20)).shape == (2, 5)


def test_compile_and_export_still_work():
    net = toy().eval()
    x = torch.randn(2, 3, 16, 16)
    compiled = torch.compile(net, backend="eager")  # dynamo only: no C++ compiler in tests
    torch.testing.assert_close(compiled(x), net(x))
    # Inside a trace the check never probes; it uses the limits an eager call has worked out.
    with pytest.raises(InputShapeError, match="at least 10x10"):
        net(torch.randn(2, 3, 6, 6))
    with pytest.raises(InputShapeError, match="at least 10x10"):
        compiled(torch.randn(2, 3, 6, 6))
    exported = torch.export.export(net, (x,))
    torch.testing.assert_close(exported.module()(x), net(x))


# torchvision's published `min_size` per model (shared/fixtures), an independent answer.
@pytest.mark.parametrize("name", ["alexnet", "vgg11", "googlenet", "inception_v3",
                                  "squeezenet1_0", "squeezenet1_1", "resnet18", "densenet121"])
def test_zoo_minimum_sizes_match_torchvision(name, torchvision_ref):
    expected = next(iter(torchvision_ref[name]["torchvision_weights"].values()))["min_size"]
    limits = input_limits(meta_model(name).eval())
    assert [limits.min_size, limits.min_size] == expected
    assert limits.in_chans == 3 and limits.max_size is None


def test_vgg16_at_28_names_the_last_pool():
    net = meta_model("vgg16").eval()
    last_pool = [n for n, m in net.named_modules() if isinstance(m, nn.MaxPool2d)][-1]
    with pytest.raises(InputShapeError) as exc:
        net(torch.empty(1, 3, 28, 28, device="meta"))
    msg = str(exc.value)
    assert "vgg16 needs at least 32x32 input; got 28x28" in msg
    assert "such as lenet5" in msg
    # 28 -> 14 -> 7 -> 3 -> 1 -> 0: the fifth and last pool is where the map vanishes.
    assert f"vanishes at {last_pool} (MaxPool2d)" in msg


def test_input_hint_ends_size_errors_only():
    net = toy().eval()
    net.input_hint = "Pad the images as the paper does."
    with pytest.raises(InputShapeError) as exc:
        net(torch.randn(1, 3, 9, 9))
    msg = str(exc.value)
    assert msg.endswith(". Pad the images as the paper does.")
    assert "such as lenet5" not in msg  # the model's own hint replaces the generic suggestion
    with pytest.raises(InputShapeError) as exc:
        net(torch.randn(1, 1, 16, 16))
    assert "Pad the images" not in str(exc.value)  # a channel error has nothing to do with it


def test_a_hint_property_is_read_in_the_current_mode():
    class Net(nn.Sequential):
        @property
        def input_hint(self) -> str:
            return "train-only limit." if self.training else ""

    net = Net(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))  # 8x8 input only
    net.default_input_size = 8  # a size known to work, where the probe starts
    attach_input_check(net)
    with pytest.raises(InputShapeError, match=r"got 9x9.*train-only limit\.$"):
        net.train()(torch.randn(1, 3, 9, 9))
    with pytest.raises(InputShapeError) as exc:
        net.eval()(torch.randn(1, 3, 9, 9))
    assert "train-only" not in str(exc.value)


def test_lenet5_rejects_28x28_and_wrong_channels():
    net = meta_model("lenet5").eval()
    limits = input_limits(net)
    # LeNet-5's C5/F6 take a fixed 5x5 map: only 32x32 (the paper's padded MNIST) fits.
    assert (limits.in_chans, limits.min_size) == (1, 32)
    with pytest.raises(InputShapeError) as exc:
        net(torch.empty(1, 1, 28, 28, device="meta"))
    msg = str(exc.value)
    assert "got 28x28" in msg and "--image-size 32" in msg and "such as lenet5" not in msg
    assert "pads MNIST's 28x28 digits by 2 pixels" in msg  # LeNet5.input_hint
    with pytest.raises(InputShapeError, match="in_chans=3"):
        net(torch.empty(1, 3, 32, 32, device="meta"))


def test_resnet18_takes_32x32():
    if "resnet18" not in cnnlab.list_models():
        pytest.skip("resnet18 is not in the zoo yet")
    net = cnnlab.create_model("resnet18", num_classes=10).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_probes_are_invisible_to_dispatch_modes_around_the_first_call():
    # The check's meta-device probes must not be counted as the model's own work (a MAC counter
    # around a fresh model's first forward saw 3x the MACs before the probes were hidden).
    from cnnlab.analyze.macs import MacCounter

    net = toy().eval()
    counts = []
    for _ in range(2):                       # the first call probes, the second does not
        total = []
        with torch.no_grad(), MacCounter(total.append):
            net(torch.randn(1, 3, 16, 16))
        counts.append(sum(total))
    assert counts[0] == counts[1] > 0
