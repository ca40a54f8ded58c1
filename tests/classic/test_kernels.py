"""cnnlab.classic.kernels: the named kernels, their 1-D factors and name lookup."""

import math

import numpy as np
import pytest

from cnnlab.classic import kernels as K
from cnnlab.errors import ConfigError

SEPARABLE = ["box", "gaussian", "sobel-x", "sobel-y", "prewitt-x", "prewitt-y", "scharr-x",
             "scharr-y"]


@pytest.mark.parametrize("name", SEPARABLE)
def test_separable_kernels_are_the_outer_product_of_their_factors(name):
    k = K.get_kernel(name)
    assert k.separable
    col, row = k.factors
    np.testing.assert_allclose(np.outer(col, row), k.weights, atol=1e-15)


def test_derivative_kernels_match_the_textbook_matrices():
    np.testing.assert_array_equal(K.sobel_x().weights, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(K.sobel_y().weights, K.sobel_x().weights.T)
    np.testing.assert_array_equal(K.prewitt_x().weights, [[-1, 0, 1]] * 3)
    np.testing.assert_array_equal(K.scharr_x().weights, [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])
    np.testing.assert_array_equal(K.laplacian().weights, [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    assert not K.laplacian().separable


def test_sharpen_is_twice_the_impulse_minus_the_box():
    w = K.sharpen().weights
    assert w.sum() == pytest.approx(1.0)
    assert w[1, 1] == pytest.approx(2 - 1 / 9) and w[0, 0] == pytest.approx(-1 / 9)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.3])
def test_gaussian_size_sum_and_shape(sigma):
    k = K.gaussian(sigma)
    side = 2 * math.ceil(3 * sigma) + 1
    assert k.shape == (side, side)
    assert k.weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k.weights, k.weights[::-1, ::-1])     # symmetric
    # the sampled 1-D profile falls off as exp(-x^2 / 2 sigma^2)
    g = k.factors[0]
    c = side // 2
    assert g[c + 1] / g[c] == pytest.approx(math.exp(-1 / (2 * sigma**2)))


def test_box_any_size_including_even_and_rectangular():
    assert K.box(4).weights.sum() == pytest.approx(1.0) and K.box(4).shape == (4, 4)
    k = K.box((2, 5))
    assert k.shape == (2, 5) and np.allclose(k.weights, 0.1)
    with pytest.raises(ConfigError):
        K.box(0)


def test_flipped_reverses_weights_and_factors():
    k = K.sobel_x().flipped()
    np.testing.assert_array_equal(k.weights, K.sobel_x().weights[::-1, ::-1])
    np.testing.assert_array_equal(np.outer(*k.factors), k.weights)


def test_get_kernel_names_options_and_errors():
    assert K.get_kernel("mean", size=5).shape == (5, 5)
    assert K.get_kernel("gaussian", sigma=2).shape == (13, 13)
    assert K.get_kernel("SOBEL_X").name == "sobel-x"
    with pytest.raises(ConfigError, match="sobel-x"):
        K.get_kernel("sobelx")
    with pytest.raises(ConfigError):
        K.gaussian(0)


def test_factorize_finds_rank_one_and_rejects_rank_two():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=4), rng.normal(size=3)
    col, row = K.factorize(np.outer(a, b))
    np.testing.assert_allclose(np.outer(col, row), np.outer(a, b), atol=1e-12)
    assert K.factorize(K.laplacian().weights) is None
    assert K.factorize(np.ones((1, 4)))[1].shape == (4,)


def test_as_kernel_accepts_arrays_tensors_and_rejects_bad_shapes():
    import torch

    assert K.as_kernel(torch.ones(2, 2)).shape == (2, 2)
    assert K.as_kernel(np.eye(3)).name == "custom"
    with pytest.raises(ConfigError):
        K.as_kernel(np.ones(3))
