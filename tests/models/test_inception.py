import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.models import inception
from cnnlab.models.shapes import input_limits

# name in the fixture -> (builder, kwargs)
VARIANTS = {
    "googlenet": (inception.googlenet, {}),
    "googlenet_no_aux": (inception.googlenet, {"aux_logits": False}),
    "inception_v3": (inception.inception_v3, {}),
    "inception_v3_no_aux": (inception.inception_v3, {"aux_logits": False}),
}


# Published counts (torchvision's model cards): googlenet's card counts it without aux heads.
PUBLISHED_PARAMS = {"googlenet_no_aux": 6_624_904, "inception_v3": 27_161_264}


@pytest.fixture(autouse=True)
def _one_thread():
    # The CI box has 2 cores shared by many processes; two intra-op threads contending there made
    # the first forward pass ~100x slower than one thread does.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _layout(model):
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
            for k, v in model.state_dict().items()]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_state_dict_matches_torchvision(name, torchvision_ref):
    builder, kwargs = VARIANTS[name]
    model = builder(**kwargs)
    ref = torchvision_ref[name]
    got = _layout(model)
    assert [e[0] for e in got] == [e[0] for e in ref["state_dict"]]  # keys and order
    assert got == ref["state_dict"]                                 # shapes and dtypes
    assert len(got) == ref["num_state_dict_entries"]
    assert sum(p.numel() for p in model.parameters()) == ref["params"]
    assert sum(b.numel() for b in model.buffers()) == ref["buffer_numel"]
    if name in PUBLISHED_PARAMS:
        assert ref["params"] == PUBLISHED_PARAMS[name]


def test_registry_metadata():
    assert cnnlab.model_info("inception_v3").input_size == 299
    assert cnnlab.model_info("googlenet").input_size == 224
    assert "Szegedy" in cnnlab.model_info("googlenet").paper


@pytest.fixture(scope="module")
def small_googlenet():
    torch.manual_seed(0)
    return inception.googlenet(num_classes=7)


def test_googlenet_eval_returns_logits_only(small_googlenet):
    model = small_googlenet.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 7)


def test_googlenet_train_returns_named_tuple_and_gradients_flow(small_googlenet):
    model = small_googlenet.train()
    model.zero_grad(set_to_none=True)
    out = model(torch.randn(2, 3, 64, 64))
    assert type(out).__name__ == "GoogLeNetOutputs"
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert all(t.shape == (2, 7) for t in out)
    # Three distinct classifiers: the outputs are not copies of one another.
    assert not torch.allclose(out.logits, out.aux_logits1)
    assert not torch.allclose(out.aux_logits1, out.aux_logits2)
    target = torch.tensor([1, 4])
    ce = torch.nn.functional.cross_entropy
    # Szegedy et al. 2015: auxiliary losses are added with weight 0.3.
    loss = ce(out.logits, target) + 0.3 * (ce(out.aux_logits1, target) + ce(out.aux_logits2, target))
    loss.backward()
    for name in ("conv1.conv.weight", "inception3a.branch3.1.conv.weight", "aux1.fc2.weight",
                 "aux2.conv.conv.weight", "fc.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_googlenet_no_aux_train_returns_tensor():
    model = inception.googlenet(num_classes=3, aux_logits=False).train()
    out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3)


def test_googlenet_aux_and_no_aux_agree_in_eval():
    torch.manual_seed(0)
    full = inception.googlenet(num_classes=5).eval()
    bare = inception.googlenet(num_classes=5, aux_logits=False).eval()
    trunk = {k: v for k, v in full.state_dict().items() if not k.startswith(("aux1.", "aux2."))}
    bare.load_state_dict(trunk, strict=True)  # the no-aux keys are exactly the rest
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(full(x), bare(x))


def test_googlenet_features_and_head_compose(small_googlenet):
    model = small_googlenet.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 1024, 2, 2)  # stride 32
        torch.testing.assert_close(model.forward_head(feats), model(x))
        assert model.forward_head(feats, pre_logits=True).shape == (2, 1024)


def test_googlenet_reset_classifier_resets_aux_heads():
    model = inception.googlenet(num_classes=10)
    model.reset_classifier(4)
    assert model.num_classes == 4
    assert model.fc.out_features == 4
    assert model.aux1.fc2.out_features == 4 and model.aux2.fc2.out_features == 4
    out = model.train()(torch.randn(2, 3, 32, 32))
    assert [tuple(t.shape) for t in out] == [(2, 4)] * 3
    model.reset_classifier(0)  # features only
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 1024)
    model.double().reset_classifier(2)  # the new heads follow the model's dtype (and device)
    assert {model.fc.weight.dtype, model.aux1.fc2.weight.dtype} == {torch.float64}
    with pytest.raises(ConfigError):
        model.reset_classifier(-1)


def test_googlenet_transform_input_renormalises_imagenet_input():
    torch.manual_seed(0)
    plain = inception.googlenet(num_classes=3, aux_logits=False).eval()
    tf = inception.googlenet(num_classes=3, aux_logits=False, transform_input=True).eval()
    tf.load_state_dict(plain.state_dict())
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pixels = torch.rand(2, 3, 40, 40)            # an image in [0, 1]
    x = (pixels - mean) / std                    # ImageNet-normalised, as the data pipeline gives
    with torch.no_grad():
        expected = plain((pixels - 0.5) / 0.5)   # what Google's weights were trained on
        torch.testing.assert_close(tf(x), expected, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(plain(x), expected)


def test_transform_input_needs_rgb():
    with pytest.raises(ConfigError, match="in_chans=1"):
        inception.googlenet(in_chans=1, transform_input=True)


def test_in_chans_and_min_size_through_create_model():
    model = cnnlab.create_model("googlenet", num_classes=2, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 15, 15)).shape == (1, 2)  # torchvision's stated minimum
        with pytest.raises(InputShapeError, match="15x15"):
            model(torch.randn(1, 1, 14, 14))


@pytest.fixture(scope="module")
def small_v3():
    torch.manual_seed(0)
    return inception.inception_v3(num_classes=6)


def test_inception_v3_eval_at_minimum_size(small_v3):
    model = small_v3.eval()
    x = torch.randn(1, 3, 75, 75)
    with torch.no_grad():
        out = model(x)
        feats = model.forward_features(x)
        assert out.shape == (1, 6)
        assert feats.shape == (1, 2048, 1, 1)
        torch.testing.assert_close(model.forward_head(feats), out)
        assert model.forward_head(feats, pre_logits=True).shape == (1, 2048)


def test_inception_v3_train_returns_named_tuple(small_v3):
    # The AuxLogits head needs the 17x17 Mixed_6e grid, which only 299x299 input gives.
    model = small_v3.train()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 299, 299))
    assert type(out).__name__ == "InceptionOutputs"
    assert out._fields == ("logits", "aux_logits")
    assert out.logits.shape == (2, 6) and out.aux_logits.shape == (2, 6)
    assert not torch.allclose(out.logits, out.aux_logits)


def test_inception_v3_train_mode_needs_299_and_says_why():
    with torch.device("meta"):  # structure only: the input check needs no weights
        model = cnnlab.create_model("inception_v3", num_classes=6)
        no_aux = cnnlab.create_model("inception_v3", num_classes=6, aux_logits=False)
    # 299 -> ... -> the 17x17 Mixed_6e grid, the smallest the aux head's 5x5/3 pool and 5x5
    # conv take; eval mode skips the aux head and goes down to torchvision's 75.
    assert input_limits(model.train()).min_size == 299
    assert input_limits(model.eval()).min_size == 75
    assert input_limits(no_aux.train()).min_size == 75
    with pytest.raises(InputShapeError) as exc:
        model.train()(torch.empty(2, 3, 75, 75, device="meta"))
    msg = str(exc.value)
    assert "needs at least 299x299 input; got 75x75" in msg and "AuxLogits" in msg
    assert msg.endswith("call .eval() or build with aux_logits=False to go down to 75x75.")
    assert model.eval().input_hint == ""  # the hint is about train mode only


def test_inception_v3_no_aux_trains_at_75_with_gradients():
    model = inception.inception_v3(num_classes=3, aux_logits=False).train()
    out = model(torch.randn(2, 3, 75, 75))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3)
    out.sum().backward()
    assert model.Conv2d_1a_3x3.conv.weight.grad.abs().sum() > 0


def test_inception_v3_reset_classifier_resets_aux_head():
    model = inception.inception_v3(num_classes=6)
    model.reset_classifier(9)
    assert model.num_classes == 9
    assert model.fc.out_features == 9 and model.AuxLogits.fc.out_features == 9
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 75, 75)).shape == (1, 9)
        # The aux head alone, on the Mixed_6e map a 299x299 input produces.
        assert model.AuxLogits.eval()(torch.randn(2, 768, 17, 17)).shape == (2, 9)
    model.double().reset_classifier(2)
    assert {model.fc.weight.dtype, model.AuxLogits.fc.weight.dtype} == {torch.float64}
