"""Heat-map overlays, tile grids and PNG writing."""

import numpy as np
import pytest
from PIL import Image

from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.visualize import overlay, save_panels, save_png, tile_grid
from cnnlab.visualize.overlay import as_uint8, colorize, resize_map


def test_overlay_blends_image_and_colours():
    img = np.full((8, 8, 3), 200, np.uint8)
    heat = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)   # resized to 8 x 8
    out = overlay(img, heat, alpha=0.5)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(overlay(img, heat, alpha=0.0), img)
    full = overlay(img, heat, alpha=1.0)
    np.testing.assert_array_equal(full, colorize(resize_map(heat, (8, 8))))
    assert not np.array_equal(full[0, 0], full[-1, -1])   # cold and hot ends differ
    grey = overlay(np.zeros((8, 8), np.uint8), np.zeros((8, 8)), alpha=0.5)
    assert grey.shape == (8, 8, 3)
    with pytest.raises(ConfigError):
        overlay(img, heat, alpha=2)
    with pytest.raises(ConfigError, match="colormap"):
        colorize(heat, "nope")


def test_tile_grid_layout_and_padding():
    tiles = np.stack([np.full((2, 3), i / 4, np.float32) for i in range(5)])
    grid = tile_grid(tiles, pad=1, pad_value=1.0)     # ceil(sqrt 5) = 3 columns, 2 rows
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2, 1)
    assert grid[0, 0, 0] == 0 and grid[0, 4, 0] == 0.25          # tiles 0 and 1, first row
    assert grid[3, 0, 0] == 0.75 and grid[3, 4, 0] == 1.0        # tiles 3 and 4, second row
    assert grid[2, 0, 0] == 1.0                       # the padding row
    assert tile_grid(tiles, ncols=5, pad=0).shape == (2, 15, 1)
    with pytest.raises(InputShapeError):
        tile_grid(np.zeros((0, 2, 2)))


def test_pngs_round_trip(tmp_path):
    img = (np.random.default_rng(0).random((4, 5, 3)) * 255).astype(np.uint8)
    path = save_png(tmp_path / "sub" / "a.png", img, scale=3)
    back = np.asarray(Image.open(path))
    assert back.shape == (12, 15, 3)
    np.testing.assert_array_equal(back[::3, ::3], img)
    np.testing.assert_array_equal(as_uint8(np.ones((2, 2))), np.full((2, 2, 3), 255, np.uint8))
    p = save_panels(tmp_path / "p.png", [img, np.random.rand(4, 5).astype(np.float32)],
                    ["image", "map"], suptitle="t")
    assert Image.open(p).size[0] > Image.open(p).size[1]   # two panels side by side
