"""cnnlab.classic.hog: our NumPy HoG against skimage.feature.hog, plus properties of the paper."""

import numpy as np
import pytest
from skimage.feature import hog as sk_hog

from cnnlab.classic.hog import cell_histograms, hog, hog_image
from cnnlab.errors import ConfigError, InputShapeError

# (image shape, orientations, pixels_per_cell, cells_per_block, block_norm, transform_sqrt)
SETTINGS = [
    ((64, 64), 9, (8, 8), (2, 2), "L2-Hys", False),        # Dalal & Triggs
    ((50, 37), 9, (8, 8), (3, 3), "L2-Hys", True),         # skimage's default blocks, ragged size
    ((33, 41), 8, (5, 7), (2, 3), "L1", False),
    ((40, 40), 12, (4, 4), (1, 1), "L1-sqrt", False),
    ((29, 61), 6, (7, 3), (3, 2), "L2", True),
    ((48, 48, 3), 9, (8, 8), (2, 2), "L2-Hys", False),     # colour: strongest channel per pixel
    ((35, 52, 3), 7, (6, 5), (2, 2), "L2", True),
    ((24, 24, 4), 9, (4, 6), (3, 2), "L1", False),
]


@pytest.mark.parametrize("shape,n,ppc,cpb,norm,sqrt", SETTINGS)
def test_matches_skimage(shape, n, ppc, cpb, norm, sqrt):
    rng = np.random.default_rng(sum(shape))
    img = rng.random(shape)
    img[: shape[0] // 2] = np.round(img[: shape[0] // 2] * 4) / 4   # exact angles (0, 45, 90...)
    ca = -1 if len(shape) == 3 else None
    ours = hog(img, n, ppc, cpb, norm, transform_sqrt=sqrt, channel_axis=ca)
    ref = sk_hog(img, n, ppc, cpb, norm, transform_sqrt=sqrt, channel_axis=ca)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    blocks = hog(img, n, ppc, cpb, norm, transform_sqrt=sqrt, channel_axis=ca,
                 feature_vector=False)
    np.testing.assert_allclose(blocks, sk_hog(img, n, ppc, cpb, norm, transform_sqrt=sqrt,
                                              channel_axis=ca, feature_vector=False), atol=1e-6)


def test_matches_skimage_on_uint8_and_channels_first():
    rng = np.random.default_rng(7)
    u8 = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    np.testing.assert_allclose(hog(u8, channel_axis=-1),
                               sk_hog(u8, cells_per_block=(2, 2), channel_axis=-1), atol=1e-6)
    chw = rng.random((3, 32, 32))
    np.testing.assert_allclose(hog(chw, channel_axis=0),
                               sk_hog(chw, cells_per_block=(2, 2), channel_axis=0), atol=1e-6)


def test_pedestrian_window_has_3780_dims():
    # Dalal & Triggs 2005: 64x128 window, 8x8 cells, 2x2-cell blocks at stride 8, 9 bins
    # -> 7 x 15 blocks x 36 = 3780 numbers.
    assert hog(np.random.default_rng(0).random((128, 64))).shape == (3780,)


def test_votes_go_to_the_gradient_orientation_bin():
    ramp = np.tile(np.arange(16.0), (16, 1))             # brighter to the right: angle 0
    hist = cell_histograms(ramp, 9, (8, 8))
    assert hist.shape == (2, 2, 9)
    # 6 of 8 columns of each interior cell see the gradient (2 per pixel); borders are zero
    assert np.all(hist[..., 1:] == 0) and np.all(hist[..., 0] > 0)
    assert hist[0, 0, 0] == pytest.approx(2 * 8 * 7 / 64)
    assert cell_histograms(ramp.T, 9, (8, 8))[..., 4].min() > 0   # 90 degrees: bin 80-100


def test_l2hys_clips_at_0_2_and_has_unit_norm():
    img = np.random.default_rng(1).random((32, 32))
    blocks = hog(img, feature_vector=False)
    norms = np.sqrt((blocks**2).sum(axis=(-3, -2, -1)))
    np.testing.assert_allclose(norms, 1.0, atol=1e-6)
    # after renormalising, a clipped entry may grow a little above 0.2 but never to 1
    assert blocks.max() < 0.5


def test_hog_image_draws_edges_perpendicular_to_the_gradient():
    img = np.zeros((16, 16))
    img[:, 8:] = 1.0                                     # vertical edge: horizontal gradient
    for picture, along, across in ((img, 0, 1), (img.T, 1, 0)):
        hist = cell_histograms(picture, 9, (16, 16))
        pic = hog_image(hist, (16, 16))
        assert pic.shape == (16, 16)
        lit = np.argwhere(pic > 0.5 * pic.max())
        # a line through the centre along the edge, tilted by the bin's half-width (10 degrees)
        assert np.abs(lit[:, across] - 8).max() <= 1
        assert lit[:, along].max() - lit[:, along].min() >= 10


def test_errors():
    with pytest.raises(InputShapeError, match="at least 16x16"):
        hog(np.zeros((12, 40)))
    with pytest.raises(InputShapeError):
        hog(np.zeros((32, 32, 3)))                       # colour without channel_axis
    with pytest.raises(ConfigError):
        hog(np.zeros((32, 32)), block_norm="L3")
    with pytest.raises(ConfigError):
        hog(np.zeros((32, 32)), pixels_per_cell=(0, 8))
