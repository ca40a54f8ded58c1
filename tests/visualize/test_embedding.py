"""t-SNE of penultimate features (van der Maaten & Hinton 2008) and nearest neighbours."""

import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_score

import cnnlab
from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.visualize import (nearest_neighbours, penultimate_features, save_neighbour_grid,
                              save_tsne, tsne)


def _clusters(n=25, dim=64, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (k, dim))
    labels = np.repeat(np.arange(k), n)
    return centres[labels] + rng.normal(0, 1, (n * k, dim)), labels


def test_separated_classes_stay_separate(tmp_path):
    feats, labels = _clusters()
    points = tsne(feats, perplexity=10)
    assert points.shape == (75, 2) and np.isfinite(points).all()
    assert silhouette_score(points, labels) > 0.6
    nn = nearest_neighbours(points, np.arange(75), k=3)
    assert (labels[nn] == labels[:, None]).all()       # every 2-D neighbour shares the class
    path = save_tsne(tmp_path / "t.png", points, labels, ["a", "b", "c"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_small_sets_and_bad_input():
    feats, _ = _clusters(n=3, dim=4)
    assert tsne(feats, perplexity=30).shape == (9, 2)   # perplexity lowered to N - 1
    with pytest.raises(InputShapeError):
        tsne(np.zeros((2, 4)))
    with pytest.raises(ConfigError):
        tsne(feats, perplexity=0)


def test_nearest_neighbours_known_answer():
    f = np.array([[0.0], [1.0], [3.0], [10.0]])
    np.testing.assert_array_equal(nearest_neighbours(f, [0, 3], k=2), [[1, 2], [2, 1]])
    with pytest.raises(ConfigError):
        nearest_neighbours(f, [0], k=4)


def test_penultimate_features_are_pre_logits():
    model = cnnlab.create_model("lenet5").eval()
    x = torch.randn(5, 1, 32, 32)
    feats = penultimate_features(model, x, batch_size=2)
    assert feats.shape == (5, 84)
    with torch.no_grad():
        logits = model.classifier.output(torch.from_numpy(feats))
        torch.testing.assert_close(logits, model(x))


def test_neighbour_grid_rows(tmp_path):
    from PIL import Image

    images = np.stack([np.full((4, 4), i / 9, np.float32) for i in range(10)])
    nbrs = nearest_neighbours(images.reshape(10, -1), [0, 9], k=3)
    np.testing.assert_array_equal(nbrs, [[1, 2, 3], [8, 7, 6]])
    path = save_neighbour_grid(tmp_path / "nn.png", images, [0, 9], nbrs, scale=1)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (2 * 4 + 1, 5 * 4 + 4, 3)       # 2 rows of query, gap, 3 neighbours
    assert grid[5, 0, 0] == 255 and grid[5, 10, 0] == round(8 / 9 * 255)   # query 9, then 8
    with pytest.raises(ConfigError):
        save_neighbour_grid(tmp_path / "x.png", images, [0], nbrs)
