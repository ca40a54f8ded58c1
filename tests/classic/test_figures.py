"""cnnlab.classic.figures: display mapping and the all-kernels gallery."""

import numpy as np
from PIL import Image

from cnnlab.classic.figures import GALLERY, gallery, is_response, save_gallery, to_display
from cnnlab.classic.kernels import get_kernel


def test_responses_and_images_are_shown_differently():
    assert is_response(get_kernel("sobel-x")) and is_response(get_kernel("laplacian"))
    assert not is_response(get_kernel("gaussian")) and not is_response(get_kernel("sharpen"))
    out = np.array([[-50.0, 0.0, 20.0]])
    np.testing.assert_array_equal(to_display(out, True), [[255, 0, 102]])
    np.testing.assert_array_equal(to_display(np.array([[-5.0, 300.0, 7.4]]), False), [[0, 255, 7]])
    assert to_display(np.zeros((2, 2)), True).max() == 0


def test_gallery_panels_and_figure(tmp_path):
    img = np.zeros((24, 24))
    img[:, 12:] = 200.0
    panels = gallery(img, border="replicate")
    assert list(panels) == list(GALLERY)
    assert all(p.dtype == np.uint8 and p.shape == img.shape for p in panels.values())
    # vertical edge: sobel-x lights the edge columns, sobel-y sees nothing
    assert panels["sobel-x"][:, 11:13].min() == 255 and panels["sobel-y"].max() == 0
    path = tmp_path / "gallery.png"
    names = save_gallery(img, path, sigma=2.0)
    assert names[0] == "input" and len(names) == len(GALLERY) + 1
    with Image.open(path) as im:
        assert im.size[0] > 300 and im.size[1] > 300
