"""cnnlab.classic.gist: the Gabor bank checked in space, and GIST's selectivity and invariances."""

import numpy as np
import pytest
import scipy.ndimage as ndi

from cnnlab.classic import gist as G
from cnnlab.errors import InputShapeError


def _stripes(size, frequency, angle):
    y, x = np.mgrid[:size, :size].astype(float)
    return np.cos(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)))


def test_course_layout_is_512_numbers_per_grey_image():
    img = np.random.default_rng(0).random((32, 40))
    assert G.gist(img).shape == (512,)
    assert G.gist(np.stack([img] * 3)).shape == (3 * 512,)
    batch = np.random.default_rng(1).random((5, 1, 24, 24))
    out = G.gist(batch, batch_size=2)                     # batching must not change anything
    assert out.shape == (5, 512)
    np.testing.assert_allclose(out[3], G.gist(batch[3, 0]), atol=1e-12)


def test_one_filter_one_cell_matches_direct_spatial_convolution():
    """Independent check of the frequency-domain path: the filter's impulse response, convolved
    in space by scipy (periodic border, as the DFT assumes), on the same reflected image."""
    rng = np.random.default_rng(2)
    img = rng.random((24, 20))
    scale, orient, cell = 1, 3, (2, 1)
    ours = G.gist(img).reshape(4, 8, 4, 4)[scale, orient][cell]

    x = (img - img.mean()) / img.std()
    ph, pw = 24 // 4, 20 // 4
    xp = np.pad(x, ((ph, ph), (pw, pw)), mode="symmetric")
    transfer = G.gabor_transfer(xp.shape, G.scale_frequencies()[scale],
                                G.orientation_angles()[orient])
    kernel = np.fft.fftshift(np.fft.ifft2(transfer))     # impulse response, centre at N // 2
    resp = (ndi.convolve(xp, kernel.real, mode="wrap")
            + 1j * ndi.convolve(xp, kernel.imag, mode="wrap"))
    energy = np.abs(resp)[ph:ph + 24, pw:pw + 20]
    rows, cols = slice(12, 18), slice(5, 10)              # grid cell (2, 1) of a 4x4 grid
    assert ours == pytest.approx(energy[rows, cols].mean(), rel=1e-9)


@pytest.mark.parametrize("scale", [0, 1])
def test_transfer_function_is_a_gabor_in_space(scale):
    # The closed-form spatial Gabor (complex sinusoid x Gaussian envelope) is the inverse DFT of
    # the frequency-domain bump, up to aliasing at the finest scale.
    f, theta = G.scale_frequencies()[scale], G.orientation_angles()[5]
    from_dft = np.fft.fftshift(np.fft.ifft2(G.gabor_transfer((64, 64), f, theta)))
    closed = G.gabor_kernel(f, theta, 64)
    assert np.abs(from_dft - closed).max() < 1e-3 * np.abs(closed).max()


def test_stripes_excite_their_own_orientation_and_scale():
    bank = G.orientation_angles()
    for k in (0, 2, 4, 6):                                # 0: vertical stripes, 4: horizontal
        for scale, f in enumerate(G.scale_frequencies()[:3]):
            energy = G.gist(_stripes(64, f, bank[k])).reshape(4, 8, 16).mean(-1)
            assert np.unravel_index(energy.argmax(), energy.shape) == (scale, k)


def test_vertical_stripes_prefer_orientation_zero_everywhere_in_the_grid():
    d = G.gist(_stripes(48, 0.125, 0.0)).reshape(4, 8, 4, 4)[1]
    assert np.all(d.argmax(axis=0) == 0)


def test_invariant_to_brightness_and_contrast():
    img = np.random.default_rng(3).random((32, 32))
    np.testing.assert_allclose(G.gist(3.0 * img + 7.0), G.gist(img), atol=1e-10)
    assert not np.allclose(G.gist(3.0 * img + 7.0, prefilter=False), G.gist(img, prefilter=False))


def test_errors():
    with pytest.raises(InputShapeError):
        G.gist(np.zeros((3, 3)))
    with pytest.raises(InputShapeError):
        G.gist(np.zeros(10))
    with pytest.raises(InputShapeError):
        G.gabor_responses(np.zeros((2, 8, 8)))


def test_gabor_responses_shape_and_grid_means():
    img = np.random.default_rng(4).random((16, 16))
    resp = G.gabor_responses(img)
    assert resp.shape == (32, 16, 16) and np.all(resp >= 0)
    np.testing.assert_allclose(G.grid_means(resp, 4).ravel(), G.gist(img), atol=1e-12)
