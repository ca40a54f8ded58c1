"""cnnlab.models.fuse: folded BatchNorm computes what the plain eval model does, on a copy."""

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.models.fuse import (InferenceModel, fold_batchnorm, inference_precision,
                                prepare_for_inference)
from toys import randomise_batchnorm

# One model per family that has BatchNorm, at a small input it accepts, and how many of its
# BatchNorms stay unfolded (DenseNet: every pre-activation BN; only the stem's follows a conv).
FAMILIES = {
    "resnet18": (32, 0), "resnext50_32x4d": (32, 0), "seresnet50": (32, 0),
    "resnet20": (16, 0), "plain20": (16, 0), "vgg11_bn": (32, 0), "mobilenet_v2": (32, 0),
    "googlenet": (32, 0), "inception_v3": (75, 0), "densenet121": (32, "all but 1"),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # 2 shared cores: contending intra-op threads make each small op wait milliseconds
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _bns(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def _check_same(plain: nn.Module, fast: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        ref, out = plain.eval()(x), fast(x)
    # relative to the logits' scale: random BN statistics grow activations with depth
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


@pytest.mark.parametrize("name", FAMILIES)
def test_folding_matches_plain_eval_for_every_family(name):
    torch.manual_seed(0)
    size, left = FAMILIES[name]
    model = randomise_batchnorm(cnnlab.create_model(name, num_classes=5))
    # the whole fast path (folded, channels_last, inference mode; fp32: this CPU is AVX2)
    fast = prepare_for_inference(model, "cpu", precision="32")
    assert _bns(fast.model) == (_bns(model) - 1 if left == "all but 1" else left)
    _check_same(model, fast, torch.randn(2, 3, size, size))


def test_the_original_model_is_untouched_and_train_mode_is_copied():
    model = randomise_batchnorm(cnnlab.create_model("resnet20", num_classes=3)).train()
    keys = list(model.state_dict())
    params = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    fast = prepare_for_inference(model)
    assert model.training and not folded.training and not fast.model.training
    assert list(model.state_dict()) == keys           # checkpoints still load into it
    assert all(torch.equal(v, params[k]) for k, v in model.state_dict().items())
    assert _bns(model) == 19 and _bns(folded) == 0
    assert not any(p.requires_grad for p in fast.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_bn_without_affine_conv_with_bias_and_conv_without_bias():
    class Block(nn.Module):            # the zoo's named pairs, outside any Sequential
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=True)
            self.bn1 = nn.BatchNorm2d(4, affine=False)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False, groups=2)
            self.bn2 = nn.BatchNorm2d(4, eps=1e-3)

        def forward(self, x):
            return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))

    model = nn.Sequential(Block(), nn.Conv2d(4, 6, 1, bias=False),
                          nn.BatchNorm2d(6, affine=False), nn.ReLU(),
                          nn.Conv2d(6, 6, 3, stride=2, padding=1, padding_mode="reflect"),
                          nn.BatchNorm2d(6))
    randomise_batchnorm(model, seed=1)
    folded = fold_batchnorm(model)
    assert _bns(folded) == 0
    assert folded[0].conv2.bias is not None and folded[4].padding_mode == "reflect"
    _check_same(model, folded, torch.randn(3, 3, 9, 9))


def test_bn_that_cannot_fold_is_left_alone():
    class PreAct(nn.Module):           # bn1 reads the input, not conv1's output: no conv/bn pair
        def __init__(self):
            super().__init__()
            self.norm1 = nn.BatchNorm2d(3)
            self.conv1 = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return self.conv1(self.norm1(x))

    class Reordered(nn.Sequential):    # a Sequential whose forward is not Sequential's
        def forward(self, x):
            return self[0](self[1](x))

    batch_stats = nn.BatchNorm2d(3, track_running_stats=False)
    model = nn.Sequential(PreAct(), nn.Conv2d(3, 3, 1), batch_stats,
                          Reordered(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)),
                          nn.Conv2d(3, 4, 1), nn.BatchNorm2d(3))   # 4 channels vs BN of 3
    randomise_batchnorm(model)
    folded = fold_batchnorm(model)
    assert [type(m).__name__ for m in folded.modules() if isinstance(m, nn.BatchNorm2d)] == \
        ["BatchNorm2d"] * 4
    head = model[:4]
    _check_same(head, fold_batchnorm(head), torch.randn(2, 3, 5, 5))


def test_prepare_for_inference_on_cpu():
    model = cnnlab.create_model("resnet20", num_classes=4).eval()
    fast = prepare_for_inference(model)
    assert isinstance(fast, InferenceModel)
    assert fast.device == torch.device("cpu") and fast.channels_last
    assert fast.precision == inference_precision("auto", torch.device("cpu"))
    assert fast.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    out = fast(torch.randn(2, 3, 16, 16))
    assert out.dtype == torch.float32 and out.shape == (2, 4)
    assert not prepare_for_inference(model, channels_last=False).channels_last
    # forced bf16 runs (emulated on AVX2) and still returns fp32 logits close to fp32's
    bf16 = prepare_for_inference(model, precision="bf16")
    out16 = bf16(torch.randn(2, 3, 16, 16))
    assert bf16.precision == "bf16" and out16.dtype == torch.float32
    with pytest.raises(ConfigError, match="precision must be one of"):
        prepare_for_inference(model, precision="fp8")
    if not torch.cuda.is_available():
        assert prepare_for_inference(model, "auto").device.type == "cpu"
        with pytest.raises(ConfigError, match="no CUDA device"):
            prepare_for_inference(model, "cuda")


def test_auto_precision_is_bf16_only_where_native(monkeypatch):
    import cnnlab.train.loop as loop

    cpu = torch.device("cpu")
    monkeypatch.setattr(loop, "bf16_supported", lambda device: False)
    assert inference_precision("auto", cpu) == "32"
    monkeypatch.setattr(loop, "bf16_supported", lambda device: True)
    assert inference_precision("auto", cpu) == "bf16"
    assert inference_precision("32", cpu) == "32"


def test_auto_precision_on_this_avx2_cpu_is_not_bf16():
    cap = torch.backends.cpu.get_cpu_capability()
    if "AVX512" in cap:
        pytest.skip(f"this CPU has {cap}; bf16 may be native")
    assert inference_precision("auto", torch.device("cpu")) == "32"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_prepare_for_inference_on_cuda():
    model = randomise_batchnorm(cnnlab.create_model("resnet18", num_classes=5)).eval()
    x = torch.randn(4, 3, 64, 64)
    fast = prepare_for_inference(model, "cuda")
    assert fast.device.type == "cuda" and fast.precision in ("bf16", "16")
    assert next(model.parameters()).device.type == "cpu"      # the original stays put
    with torch.no_grad():
        ref = model(x)
    out = fast(x).cpu()            # a CPU input is moved to the model's device
    assert out.dtype == torch.float32
    # bf16/fp16 autocast: same ranking, logits within a few percent of their scale
    assert torch.allclose(out, ref, atol=0.05 * ref.abs().max().item())
    fp32 = prepare_for_inference(model, "cuda", precision="32")
    assert torch.allclose(fp32(x).cpu(), ref, rtol=1e-3, atol=1e-3 * ref.abs().max().item())
