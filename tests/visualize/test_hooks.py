"""Layer lookup, ReLU rules, input preparation and loading models from checkpoints."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import cnnlab
from cnnlab.errors import ConfigError, InputShapeError, InvalidCheckpointError
from cnnlab.visualize.hooks import (capture, conv_layers, default_layer, find_layer, load_model,
                                    model_stats, prepare, relu_rule)


def test_layers_by_name():
    model = cnnlab.create_model("lenet5")
    assert conv_layers(model) == ["features.c1", "features.c3"]
    assert default_layer(model, "first") == "features.c1"
    assert default_layer(model) == "features.c3"
    assert find_layer(model, "features.s2") is model.features.s2
    with pytest.raises(ConfigError, match="close matches: features.c3"):
        find_layer(model, "features.c33")


def test_relu_rule_catches_inplace_modules_and_restores_flags():
    model = cnnlab.create_model("lenet5").eval()
    x = torch.randn(2, 1, 32, 32)
    with relu_rule(model, "vanilla"), capture(model, "features.c1") as store:
        model(x)
    # The captured conv output keeps its negative values: the in-place ReLU did not overwrite it.
    assert store["out"].min() < 0
    assert all(m.inplace for m in model.modules() if hasattr(m, "inplace"))
    with pytest.raises(ConfigError):
        with relu_rule(model, "leaky"):
            pass


def test_prepare_inputs(tmp_path):
    model = cnnlab.create_model("resnet18", num_classes=2)
    mean, std = model_stats(model, 3)
    img = np.zeros((20, 30, 3), np.uint8)
    x, shown = prepare(img, model, image_size=16)
    assert x.shape == (1, 3, 16, 16) and shown.shape == (16, 16, 3)
    torch.testing.assert_close(x[0, :, 0, 0], -torch.tensor(mean) / torch.tensor(std))
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(tmp_path / "g.png")
    x, shown = prepare(tmp_path / "g.png", model, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert x.shape == (1, 3, 10, 10) and torch.allclose(x, torch.ones_like(x))
    x, shown = prepare(torch.zeros(3, 8, 8), model)       # floats pass through untouched
    assert x.shape == (1, 3, 8, 8) and shown.dtype == np.uint8
    lenet = cnnlab.create_model("lenet5")
    x, _ = prepare(np.zeros((32, 32, 3), np.uint8), lenet)   # colour into a grey model
    assert x.shape == (1, 1, 32, 32)
    with pytest.raises(InputShapeError):
        prepare(np.zeros((8, 8), np.float64), model)


def test_load_model_from_run_directory(tmp_path):
    src = cnnlab.create_model("lenet5", num_classes=3)
    meta = {"model": "lenet5", "classes": ["a", "b", "c"], "in_chans": 1, "input_size": 32,
            "mean": [0.3], "std": [0.3]}
    run = tmp_path / "run"
    run.mkdir()
    save_file(src.state_dict(), run / "best.safetensors",
              metadata={"format": "pt", "cnnlab": json.dumps(meta)})
    model, got = load_model(weights=run)
    assert got["classes"] == ["a", "b", "c"] and model.num_classes == 3 and not model.training
    torch.testing.assert_close(model.features.c1.weight, src.features.c1.weight)
    with pytest.raises(ConfigError, match="--model"):
        load_model()
    with pytest.raises(InvalidCheckpointError, match="best.safetensors"):
        load_model("lenet5", weights=tmp_path)   # a folder, but no checkpoint in it
