"""cnnlab.classic.filters: filter2d against the course's worked example and scipy.ndimage."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.classic import kernels as K
from cnnlab.classic.filters import (
    BORDERS,
    filter2d,
    gradient_magnitude,
    gradient_orientation,
    gradients,
)
from cnnlab.errors import ConfigError, InputShapeError

# The box-filter example of S. Seitz's "Image filtering" slides, reused in Stanford CS131
# ("Filters") and CS231n-era vision courses: a 10x10 image of 0s with a block of 90s (rows 2-6,
# columns 3-7) holding one 0, and a stray 90 below it, averaged with the 3x3 1/9 kernel.
SEITZ_INPUT = np.array([
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 90, 90, 90, 90, 90, 0, 0],
    [0, 0, 0, 90, 90, 90, 90, 90, 0, 0],
    [0, 0, 0, 90, 90, 90, 90, 90, 0, 0],
    [0, 0, 0, 90, 0, 90, 90, 90, 0, 0],
    [0, 0, 0, 90, 90, 90, 90, 90, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 90, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
])
# The printed output: the 8x8 interior (the slides leave the border blank), rounded to integers.
SEITZ_OUTPUT = np.array([
    [0, 10, 20, 30, 30, 30, 20, 10],
    [0, 20, 40, 60, 60, 60, 40, 20],
    [0, 30, 60, 90, 90, 90, 60, 30],
    [0, 30, 50, 80, 80, 90, 60, 30],
    [0, 30, 50, 80, 80, 90, 60, 30],
    [0, 20, 30, 50, 50, 60, 40, 20],
    [10, 20, 30, 30, 30, 30, 20, 10],
    [10, 10, 10, 0, 0, 0, 0, 0],
])


@pytest.mark.parametrize("method", ["auto", "direct", "separable", "fft"])
def test_course_box_filter_example(method):
    out = filter2d(SEITZ_INPUT, K.box(3), method=method)
    np.testing.assert_array_equal(np.rint(out[1:-1, 1:-1]).astype(int), SEITZ_OUTPUT)
    t = filter2d(torch.tensor(SEITZ_INPUT), K.box(3))
    np.testing.assert_array_equal(torch.round(t[1:-1, 1:-1]).int().numpy(), SEITZ_OUTPUT)


def test_correlation_and_convolution_formulas_on_an_impulse():
    # Correlating an impulse paints the kernel rotated by 180 degrees; convolving paints it as is.
    f = np.zeros((5, 5))
    f[2, 2] = 1
    g = np.arange(1.0, 10.0).reshape(3, 3)
    np.testing.assert_array_equal(filter2d(f, g, "correlate")[1:4, 1:4], g[::-1, ::-1])
    np.testing.assert_array_equal(filter2d(f, g, "convolve")[1:4, 1:4], g)
    # h[m, n] = sum g[k, l] f[m + k, n + l] written out at one pixel of a random image
    x = np.random.default_rng(0).normal(size=(6, 7))
    m, n = 3, 4
    by_hand = sum(g[k + 1, l + 1] * x[m + k, n + l] for k in (-1, 0, 1) for l in (-1, 0, 1))
    assert filter2d(x, g)[m, n] == pytest.approx(by_hand)
    by_hand = sum(g[u + 1, v + 1] * x[m - u, n - v] for u in (-1, 0, 1) for v in (-1, 0, 1))
    assert filter2d(x, g, "convolve")[m, n] == pytest.approx(by_hand)


def test_even_kernel_centre_follows_scipy():
    f = np.arange(1.0, 6.0)[None, :]                     # [[1 2 3 4 5]]
    # correlate with [a, b]: the centre is index 1, so out[i] = a f[i-1] + b f[i]
    np.testing.assert_array_equal(filter2d(f, [[1.0, 0.0]]), [[0, 1, 2, 3, 4]])
    # convolve with [a, b]: out[i] = a f[i+1] + b f[i] (kernel and its centre flipped)
    np.testing.assert_array_equal(filter2d(f, [[1.0, 0.0]], "convolve"), [[2, 3, 4, 5, 0]])
    np.testing.assert_array_equal(filter2d(f, [[1.0, 0.0]], "convolve"),
                                  ndi.convolve(f, [[1.0, 0.0]], mode="constant"))


def test_reflect_is_scipy_reflect_not_mirror():
    f = np.array([[1.0, 2.0, 3.0, 4.0]])
    shift = [[0.0, 0.0, 1.0]]                            # out[i] = f[i + 1]
    # scipy 'reflect' repeats the edge pixel (d | d c b a); 'mirror' does not (d | c b a)
    assert filter2d(f, shift, border="reflect")[0, -1] == 4.0
    assert filter2d(f, shift, border="mirror")[0, -1] == 3.0
    assert filter2d(f, shift, border="replicate")[0, -1] == 4.0
    assert filter2d(f, shift, border="wrap")[0, -1] == 1.0
    assert filter2d(f, shift, border="zero")[0, -1] == 0.0


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 13), w=st.integers(1, 13), kh=st.integers(1, 9), kw=st.integers(1, 9),
       colour=st.booleans(), seed=st.integers(0, 2**16))
def test_agrees_with_scipy_for_every_border_and_mode(h, w, kh, kw, colour, seed):
    rng = np.random.default_rng(seed)
    img = rng.normal(size=(h, w, 3) if colour else (h, w))
    k = rng.normal(size=(kh, kw))
    for border, scipy_mode in BORDERS.items():
        for mode in ("correlate", "convolve"):
            ref_fn = getattr(ndi, mode)
            ref = (np.stack([ref_fn(img[..., c], k, mode=scipy_mode) for c in range(3)], -1)
                   if colour else ref_fn(img, k, mode=scipy_mode))
            for method in ("direct", "fft"):
                out = filter2d(img, k, mode, border, method=method)
                np.testing.assert_allclose(out, ref, atol=1e-6, err_msg=f"{border} {mode} {method}")


@pytest.mark.parametrize("kernel", [K.box(3), K.box(8), K.box((3, 7)), K.box((19, 2)),
                                    K.gaussian(1.5), K.gaussian(1.0, size=4), K.sobel_x(),
                                    K.scharr_y(), K.prewitt_x()], ids=lambda k: k.name)
@pytest.mark.parametrize("border", list(BORDERS))
def test_separable_path_agrees_with_scipy(kernel, border):
    rng = np.random.default_rng(1)
    img = rng.normal(size=(17, 12, 3))
    for mode in ("correlate", "convolve"):
        ref = np.stack([getattr(ndi, mode)(img[..., c], kernel.weights, mode=BORDERS[border])
                        for c in range(3)], -1)
        for method in ("separable", "direct"):
            np.testing.assert_allclose(filter2d(img, kernel, mode, border, method=method), ref,
                                       atol=1e-6)


def test_rank_one_arrays_take_the_separable_path_and_others_cannot():
    img = np.random.default_rng(2).normal(size=(9, 9))
    ones = np.ones((4, 4)) / 16
    np.testing.assert_allclose(filter2d(img, ones, method="separable"),
                               ndi.correlate(img, ones, mode="constant"), atol=1e-12)
    with pytest.raises(ConfigError, match="not separable"):
        filter2d(img, K.laplacian(), method="separable")


def test_dtypes_and_names():
    u8 = (np.arange(25).reshape(5, 5) * 10).astype(np.uint8)
    out = filter2d(u8, "sobel-x")
    assert out.dtype == np.float64 and out[2, 2] == 80      # no uint8 wrap-around
    f32 = u8.astype(np.float32)
    assert filter2d(f32, "box").dtype == np.float32
    assert not filter2d(f32, np.zeros((3, 2))).any()         # no taps at all: zeros


@pytest.mark.parametrize("shape,channels_last", [((5, 6), None), ((3, 5, 6), None),
                                                 ((2, 3, 5, 6), None), ((5, 6, 3), True)])
def test_torch_layouts_dtype_and_agreement(shape, channels_last):
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.normal(size=shape), dtype=torch.float32)
    out = filter2d(x, K.gaussian(0.8), border="reflect", channels_last=channels_last)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == x.shape
    planes = x.numpy().astype(np.float64)
    if channels_last:
        planes = np.moveaxis(planes, -1, 0)
    planes = planes.reshape(-1, *planes.shape[-2:])
    ref = np.stack([ndi.correlate(p, K.gaussian(0.8).weights, mode="reflect") for p in planes])
    got = out.numpy()
    if channels_last:
        got = np.moveaxis(got, -1, 0)
    np.testing.assert_allclose(got.reshape(ref.shape), ref, atol=1e-5)


def test_torch_autograd_path_matches_and_gradients_flow():
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.normal(size=(2, 7, 8)), requires_grad=True)
    for k in (K.sobel_y(), K.laplacian()):
        for border in BORDERS:
            out = filter2d(x, k, "convolve", border)                 # conv2d route
            ref = filter2d(x.detach().numpy(), k, "convolve", border, channels_last=False)
            np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-10)
    out = filter2d(x, K.box(3))
    out.sum().backward()
    # each interior pixel feeds 9 outputs with weight 1/9
    assert x.grad[0, 3, 3].item() == pytest.approx(1.0)
    assert filter2d(torch.arange(16).reshape(4, 4), "box").dtype == torch.float32


def test_numpy_channels_first_override():
    img = np.random.default_rng(5).normal(size=(3, 6, 7))
    out = filter2d(img, "box", channels_last=False)
    np.testing.assert_allclose(out[1], ndi.correlate(img[1], np.ones((3, 3)) / 9, mode="constant"))


def test_bad_arguments_raise_cnnlab_errors():
    img = np.zeros((4, 4))
    with pytest.raises(ConfigError, match="border"):
        filter2d(img, "box", border="symmetric")
    with pytest.raises(ConfigError, match="mode"):
        filter2d(img, "box", mode="conv")
    with pytest.raises(ConfigError, match="method"):
        filter2d(img, "box", method="winograd")
    with pytest.raises(InputShapeError):
        filter2d(np.zeros(5), "box")
    with pytest.raises(InputShapeError):
        filter2d(np.zeros((0, 3)), "box")


def test_gradients_of_a_ramp():
    y, x = np.mgrid[:8, :9].astype(float)
    ramp = 2 * x + 3 * y
    gx, gy = gradients(ramp, "sobel")
    # interior: Sobel weighs the central difference (2 pixels apart) by 1 + 2 + 1
    assert np.allclose(gx[1:-1, 1:-1], 2 * 2 * 4) and np.allclose(gy[1:-1, 1:-1], 3 * 2 * 4)
    gx, gy = gradients(ramp, "central")
    assert np.allclose(gx[:, 1:-1], 4) and np.allclose(gy[1:-1, :], 6)
    mag = gradient_magnitude(ramp, "prewitt")
    assert np.allclose(mag[1:-1, 1:-1], np.hypot(2 * 2 * 3, 3 * 2 * 3))
    ang = gradient_orientation(torch.tensor(ramp), "scharr")
    expected = torch.atan2(torch.tensor(3.0), torch.tensor(2.0)).double()
    assert torch.allclose(ang[1:-1, 1:-1], expected)
    with pytest.raises(ConfigError):
        gradients(ramp, "roberts")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_stay_on_the_device_and_agree():
    rng = np.random.default_rng(6)
    x = torch.tensor(rng.normal(size=(2, 3, 19, 23)), dtype=torch.float32)
    for k in (K.gaussian(1.2), K.laplacian(), K.box(4)):
        for border in BORDERS:
            out = filter2d(x.cuda(), k, "convolve", border)
            assert out.is_cuda and out.dtype == torch.float32
            ref = filter2d(x, k, "convolve", border)
            np.testing.assert_allclose(out.cpu().numpy(), ref.numpy(), atol=1e-5)
