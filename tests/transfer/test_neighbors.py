import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError, DataError
from cnnlab.transfer.neighbors import (
    MIN_TILE, find_neighbors, nearest, neighbor_grid, to_uint8_hwc,
)


def test_nearest_is_exact_on_a_small_example():
    train = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.1]])
    idx, d = nearest(train, np.array([[2.0, 0.0]]), k=2, metric="euclidean")
    assert idx.tolist() == [[0, 2]] and np.allclose(d, [[1.0, np.hypot(1.0, 0.1)]])
    idx, d = nearest(train, np.array([[2.0, 0.0], [0.0, 5.0]]), k=1, metric="cosine")
    assert idx.tolist() == [[0], [1]] and np.allclose(d, 0.0)


def test_nearest_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="metric"):
        nearest(np.zeros((2, 3)), np.zeros((1, 3)), metric="manhattan")
    with pytest.raises(ConfigError, match="k must be"):
        nearest(np.zeros((2, 3)), np.zeros((1, 3)), k=3)
    with pytest.raises(DataError):
        nearest(np.zeros((2, 3)), np.zeros((1, 4)))


def test_a_training_image_is_its_own_nearest_neighbour():
    torch.manual_seed(0)
    model = cnnlab.create_model("lenet5")
    x = torch.rand(6, 1, 32, 32).numpy()
    res = find_neighbors(model, x, np.arange(6) % 2, ["a", "b"], x[[4]], k=2, layer="fc7")
    first = res[0]["neighbors"][0]
    assert first["index"] == 4 and first["class"] == "a" and first["distance"] < 1e-6


def test_grid_size_and_query_frame():
    q = np.zeros((1, 16, 16), np.float32)
    n = [np.ones((1, 16, 16), np.float32)] * 3
    img = neighbor_grid([(q, n, ["x 0.1"] * 3), (q, n[:2], ["y 0.2"] * 2)], ["q1", "q2"])
    assert img.width > 4 * MIN_TILE and img.height > 2 * MIN_TILE
    px = np.asarray(img)
    assert (px[3, 10] == [0, 0, 255]).all()          # the blue frame around the first query
    assert to_uint8_hwc(np.ones((3, 4, 4))).shape == (4, 4, 3)
    with pytest.raises(DataError):
        neighbor_grid([])
