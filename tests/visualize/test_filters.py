"""First-layer filter tiles (Krizhevsky et al. 2012, Fig. 3) and feature maps."""

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.visualize import feature_maps, filter_tiles, tile_grid


def test_resnet18_first_layer_grid():
    model = cnnlab.create_model("resnet18", num_classes=3)
    tiles = filter_tiles(model)                       # conv1: 64 filters, 7x7, RGB
    assert tiles.shape == (64, 7, 7, 3)
    assert tiles.min() == 0 and tiles.max() == pytest.approx(1)
    grid = tile_grid(tiles, pad=1)
    assert grid.shape == (8 * 7 + 7, 8 * 7 + 7, 3)   # 8 x 8 tiles, 7 one-pixel gaps
    # One shared scale: tile order and relative strength are the weights'.
    w = model.conv1.weight.detach().permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(tiles, (w - w.min()) / (w.max() - w.min()), atol=1e-6)


def test_grey_and_deeper_layers():
    model = cnnlab.create_model("lenet5")
    assert filter_tiles(model).shape == (6, 5, 5, 1)
    assert filter_tiles(model, "features.c3").shape == (96, 5, 5, 1)   # 16 filters x 6 inputs
    assert filter_tiles(model, "features.c3", max_tiles=10).shape == (10, 5, 5, 1)
    with pytest.raises(ConfigError, match="kernel"):
        filter_tiles(model, "features.s2")


def test_feature_maps_shape_and_range():
    model = cnnlab.create_model("lenet5")
    img = (np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8)
    maps = feature_maps(model, img)                   # features.c1: (6, 28, 28)
    assert maps.shape == (6, 28, 28) and maps.min() == 0 and maps.max() == pytest.approx(1)
    maps = feature_maps(model, torch.zeros(1, 32, 32), "features.s4")
    assert maps.shape == (16, 5, 5)
