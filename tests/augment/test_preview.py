"""Sampling images for a preview and tiling them."""

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.augment.preview import preview, sample_images, tile
from cnnlab.errors import DataError


@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(0)
    for cls, colour in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
        (tmp_path / cls).mkdir()
        for i in range(6):
            a = np.clip(rng.normal(colour, 10, size=(20 + i, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png")
    return tmp_path


def test_sample_from_a_folder_decodes_only_good_files(tree):
    x, y, classes = sample_images(tree, n=4, image_size=16, seed=1)
    assert classes == ["cat", "dog"] and x.shape == (4, 3, 16, 16) and x.dtype == torch.uint8
    red = x[:, 0].float().mean((1, 2)) > x[:, 2].float().mean((1, 2))
    assert torch.equal(red, y == 0)                          # labels follow the pictures
    x2, y2, _ = sample_images(tree, n=4, image_size=16, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_sample_digits_by_default():
    x, y, classes = sample_images(None, n=5, image_size=16)
    assert x.shape == (5, 1, 16, 16) and classes[0] == "0" and x.max() > 200


def test_no_decodable_image_is_a_data_error(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            (tmp_path / cls / f"{i}.png").write_bytes(b"junk")
    with pytest.raises(DataError):
        sample_images(tmp_path, n=2, image_size=8)


def test_tile_layout_and_zoom():
    imgs = np.zeros((5, 1, 8, 10), np.uint8)
    imgs[:, :, 0, 0] = 255
    grid = tile(imgs, min_cell=20, gap=2)                   # zoom 2 -> 16 x 20 cells, 3 columns
    assert grid.shape == (2 * 18 + 2, 3 * 22 + 2, 3)
    assert (grid[2:4, 2:4] == 255).all() and (grid[4, 4] == 0).all()


def test_preview_applies_the_chain_with_originals():
    x = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    out, grid = preview(x, torch.arange(3), "flip=1", originals=True)
    assert torch.equal(out, x.flip(-1))
    assert grid.shape[1] > grid.shape[0]                    # pairs side by side
