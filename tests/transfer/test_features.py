import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError, DataError
from cnnlab.transfer.features import extract_features, feature_set, resolve_layer, save_features


@pytest.fixture(scope="module")
def resnet20():
    torch.manual_seed(0)
    return cnnlab.create_model("resnet20", num_classes=10)


@pytest.mark.parametrize("layer, dim", [("pre_logits", 64), ("avgpool", 64), ("logits", 10),
                                        ("stem", 16), ("stage2", 32), ("layer3.0.conv1", 64)])
def test_resnet20_feature_shapes(resnet20, layer, dim):
    x = torch.rand(5, 3, 32, 32)
    f = extract_features(resnet20, x, layer, batch_size=2)
    assert f.shape == (5, dim) and f.dtype == np.float32


def test_pre_logits_match_the_model_and_training_mode_is_restored(resnet20):
    x = torch.rand(3, 3, 32, 32)
    resnet20.train()
    f = extract_features(resnet20, x, "pre_logits")
    assert resnet20.training
    resnet20.eval()
    with torch.no_grad():
        want = resnet20.forward_head(resnet20.forward_features(x), pre_logits=True)
        logits = resnet20(x)
    assert np.allclose(f, want.numpy(), atol=1e-5)
    assert np.allclose(extract_features(resnet20, x, "logits"), logits.numpy(), atol=1e-5)


@pytest.mark.parametrize("name, side, layer, dim", [
    ("lenet5", 32, "fc7", 84),               # LeNet-5's F6: the layer before the classifier
    ("lenet5", 32, "stem", 6),
    ("mobilenet_v2", 32, "pre_logits", 1280),
    ("squeezenet1_1", 64, "stage2", 256),
    ("densenet121", 32, "stage1", 256),
    ("googlenet", 64, "stage3", 832),
])
def test_feature_shapes_across_families(name, side, layer, dim):
    torch.manual_seed(0)
    model = cnnlab.create_model(name)
    x = torch.rand(2, model.in_chans, side, side)
    assert extract_features(model, x, layer).shape == (2, dim)


def test_pooling_options_and_flatten(resnet20):
    x = torch.rand(2, 3, 32, 32)
    assert extract_features(resnet20, x, "stage3", pool="flatten").shape == (2, 64 * 8 * 8)
    mx = extract_features(resnet20, x, "stage3", pool="max")
    avg = extract_features(resnet20, x, "stage3", pool="avg")
    assert (mx >= avg - 1e-6).all()
    with pytest.raises(ConfigError):
        extract_features(resnet20, x, "stage3", pool="median")


def test_standardisation_is_applied(resnet20):
    x = torch.rand(2, 3, 32, 32)
    a = extract_features(resnet20, x, "logits", mean=[0.5] * 3, std=[0.25] * 3)
    b = extract_features(resnet20, (x - 0.5) / 0.25, "logits")
    assert np.allclose(a, b, atol=1e-5)


def test_bad_layers_and_inputs(resnet20):
    with pytest.raises(ConfigError, match="pre_logits"):
        resolve_layer(resnet20, "fc7")          # ResNet has no fc6/fc7
    with pytest.raises(ConfigError, match="unknown layer"):
        resolve_layer(resnet20, "stage9")
    with pytest.raises(DataError):
        extract_features(resnet20, torch.rand(3, 32, 32), "stem")


def test_feature_set_on_digits_writes_a_baseline_file(tmp_path):
    from cnnlab.classic.baseline import load_feature_file

    torch.manual_seed(0)
    model = cnnlab.create_model("lenet5")
    arrays = feature_set(model, None, "fc7", limit=30)
    assert arrays["x_train"].shape == (30, 84) and arrays["x_test"].shape == (30, 84)
    assert list(arrays["classes"]) == [str(d) for d in range(10)]
    path = save_features(tmp_path / "feats", arrays, model="lenet5", layer="fc7")
    assert path.suffix == ".npz"
    x_tr, y_tr, x_te, y_te = load_feature_file(path)
    assert np.array_equal(x_tr, arrays["x_train"]) and np.array_equal(y_te, arrays["y_test"])
    with np.load(path) as z:
        assert str(z["layer"]) == "fc7"
