import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.reference import gradcheck
from cnnlab.reference import layers as L

TOL = 1e-10        # agreement with torch float64 autograd
GRAD_TOL = 1e-7    # finite-difference relative error


def rng(seed=0):
    return np.random.default_rng(seed)


def torch_run(fn, arrays, dout):
    """Output and input gradients of a torch function, in float64."""
    ts = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [None if t is None else t.grad.numpy() for t in ts]


def close(a, b, tol=TOL):
    np.testing.assert_allclose(a, b, rtol=0, atol=tol * max(1.0, np.abs(b).max()))


def distinct(shape, seed=0):
    # Values at least 1e-3 apart, so no max-pool tie or kink lies within the gradcheck step.
    n = int(np.prod(shape))
    return (rng(seed).permutation(n).reshape(shape) - n // 2) * 1e-3 + 5e-4   # never 0


# ------------------------------------------------------------------------------------- conv2d

CONV_CASES = [
    # x shape, w shape, stride, padding, dilation, groups, bias
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 0, 1, 1, True),
    ((2, 3, 8, 7), (4, 3, 3, 3), 2, 1, 1, 1, True),
    ((1, 2, 9, 8), (3, 2, 3, 2), (2, 1), (1, 2), (2, 1), 1, False),
    ((2, 4, 7, 7), (6, 2, 3, 3), 1, 1, 2, 2, True),
    ((2, 4, 6, 6), (8, 1, 3, 3), 2, 1, 1, 4, True),   # depthwise, channel multiplier 2
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups, bias", CONV_CASES)
def test_conv2d_matches_torch_and_finite_differences(xs, ws, stride, padding, dilation, groups, bias):
    r = rng(1)
    x, w = r.normal(size=xs), r.normal(size=ws)
    b = r.normal(size=ws[0]) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out, cache = L.conv2d_forward(x, w, b, **kw)
    dout = r.normal(size=out.shape)
    dx, dw, db = L.conv2d_backward(dout, cache)

    t_out, (t_dx, t_dw, t_db) = torch_run(lambda x, w, b: F.conv2d(x, w, b, **kw), [x, w, b], dout)
    close(out, t_out)
    close(dx, t_dx)
    close(dw, t_dw)
    if bias:
        close(db, t_db)
    else:
        assert db is None

    assert gradcheck(lambda x_: L.conv2d_forward(x_, w, b, **kw)[0], x, dx, dout) < GRAD_TOL
    assert gradcheck(lambda w_: L.conv2d_forward(x, w_, b, **kw)[0], w, dw, dout) < GRAD_TOL
    if bias:
        assert gradcheck(lambda b_: L.conv2d_forward(x, w, b_, **kw)[0], b, db, dout) < GRAD_TOL


def test_im2col_and_col2im_are_adjoint():
    # <im2col(x), c> == <x, col2im(c)> for every x and c: col2im is exactly im2col's transpose,
    # which is what the backward pass of a convolution needs.
    r = rng(2)
    x = r.normal(size=(2, 4, 7, 6))
    args = dict(kernel_size=3, stride=2, padding=1, dilation=(1, 2), groups=2)
    cols = L.im2col(x, **args)
    c = r.normal(size=cols.shape)
    assert cols.shape == (2, 2 * 3 * 3, 2 * 4 * 2)    # (G, C/G*KH*KW, N*OH*OW)
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * L.col2im(c, x.shape, **args)), rtol=1e-12)


def test_im2col_column_is_the_receptive_field():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float64).reshape(2, 1, 4, 4)
    cols = L.im2col(x, 2, stride=2)                    # (1, 4, 2*2*2)
    # Column 7 is image 1, output pixel (1, 1): the bottom-right 2x2 block of image 1.
    np.testing.assert_array_equal(cols[0, :, 7], x[1, 0, 2:, 2:].ravel())


def test_conv2d_bad_inputs_raise_clear_errors():
    x, w = np.zeros((1, 3, 8, 8)), np.zeros((4, 2, 3, 3))
    with pytest.raises(InputShapeError, match="input channels"):
        L.conv2d_forward(x, w)                          # weight wants 2 channels
    with pytest.raises(ConfigError, match="groups"):
        L.conv2d_forward(x, np.zeros((4, 1, 3, 3)), groups=2)
    with pytest.raises(InputShapeError, match="smaller than the window"):
        L.conv2d_forward(np.zeros((1, 2, 2, 2)), w)
    with pytest.raises(InputShapeError, match="4-d"):
        L.conv2d_forward(np.zeros((3, 8, 8)), np.zeros((4, 3, 3, 3)))


# ------------------------------------------------------------------------------------ pooling

POOL_CASES = [
    # kernel, stride, padding, dilation
    (2, None, 0, 1),
    (3, 2, 1, 1),
    (3, 1, 0, 2),
    ((2, 3), (1, 2), (1, 0), 1),
]


@pytest.mark.parametrize("k, s, p, d", POOL_CASES)
def test_maxpool_matches_torch_and_finite_differences(k, s, p, d):
    x = distinct((2, 3, 7, 8))
    out, cache = L.maxpool2d_forward(x, k, s, p, d)
    dout = rng(3).normal(size=out.shape)
    dx = L.maxpool2d_backward(dout, cache)
    t_out, (t_dx,) = torch_run(lambda x: F.max_pool2d(x, k, s, p, d), [x], dout)
    close(out, t_out)
    close(dx, t_dx)
    assert gradcheck(lambda x_: L.maxpool2d_forward(x_, k, s, p, d)[0], x, dx, dout) < GRAD_TOL


@pytest.mark.parametrize("k, s, p, include",
                         [(2, None, 0, True), (3, 2, 1, True), (3, 2, 1, False), ((3, 2), 1, (1, 0), False)])
def test_avgpool_matches_torch_and_finite_differences(k, s, p, include):
    r = rng(4)
    x = r.normal(size=(2, 3, 7, 6))
    out, cache = L.avgpool2d_forward(x, k, s, p, count_include_pad=include)
    dout = r.normal(size=out.shape)
    dx = L.avgpool2d_backward(dout, cache)
    t_out, (t_dx,) = torch_run(lambda x: F.avg_pool2d(x, k, s, p, count_include_pad=include), [x], dout)
    close(out, t_out)
    close(dx, t_dx)
    assert gradcheck(lambda x_: L.avgpool2d_forward(x_, k, s, p, count_include_pad=include)[0], x, dx, dout) < GRAD_TOL


def test_pool_padding_larger_than_half_the_kernel_is_refused():
    with pytest.raises(ConfigError, match="half the kernel"):
        L.maxpool2d_forward(np.zeros((1, 1, 6, 6)), 2, padding=2)


def test_maxpool_routes_gradient_to_the_maximum_only():
    x = np.array([[[[1.0, 5.0], [2.0, 3.0]]]])
    out, cache = L.maxpool2d_forward(x, 2)
    assert out.item() == 5.0
    np.testing.assert_array_equal(L.maxpool2d_backward(np.ones((1, 1, 1, 1)), cache), [[[[0, 1], [0, 0]]]])


def test_maxpool_ties_go_to_the_first_maximum_as_in_torch():
    # All-zero windows are common after a ReLU; torch sends the gradient to the first zero.
    x = np.array([[[[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]]]])
    out, cache = L.maxpool2d_forward(x, 2)
    dout = np.array([[[[2.0, 3.0]]]])
    _, (t_dx,) = torch_run(lambda x: F.max_pool2d(x, 2), [x], dout)
    np.testing.assert_array_equal(L.maxpool2d_backward(dout, cache), t_dx)
    np.testing.assert_array_equal(t_dx, [[[[2, 0, 3, 0], [0, 0, 0, 0]]]])


# -------------------------------------------------------------------------------- activations

ACTIVATIONS = [
    (L.relu_forward, L.relu_backward, F.relu),
    (L.sigmoid_forward, L.sigmoid_backward, torch.sigmoid),
    (L.tanh_forward, L.tanh_backward, torch.tanh),
]


@pytest.mark.parametrize("fwd, bwd, ref", ACTIVATIONS, ids=["relu", "sigmoid", "tanh"])
def test_activation_matches_torch_and_finite_differences(fwd, bwd, ref):
    x = distinct((3, 4, 5)) * 5                          # |x| >= 2.5e-3: no value at the ReLU kink
    x[0, 0, :2] = [40.0, -40.0]                          # saturated ends must not overflow or NaN
    out, cache = fwd(x)
    dout = rng(5).normal(size=x.shape)
    dx = bwd(dout, cache)
    t_out, (t_dx,) = torch_run(ref, [x], dout)
    close(out, t_out)
    close(dx, t_dx)
    assert np.isfinite(out).all()
    assert gradcheck(lambda x_: fwd(x_)[0], x, dx, dout) < GRAD_TOL


def test_sigmoid_is_stable_for_large_inputs():
    with np.errstate(over="raise"):
        out, _ = L.sigmoid_forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


# ------------------------------------------------------------------------------------- linear


def test_linear_matches_torch_and_finite_differences():
    r = rng(6)
    x, w, b = r.normal(size=(4, 7)), r.normal(size=(5, 7)), r.normal(size=5)
    out, cache = L.linear_forward(x, w, b)
    dout = r.normal(size=out.shape)
    dx, dw, db = L.linear_backward(dout, cache)
    t_out, (t_dx, t_dw, t_db) = torch_run(F.linear, [x, w, b], dout)
    for a, t in [(out, t_out), (dx, t_dx), (dw, t_dw), (db, t_db)]:
        close(a, t)
    assert gradcheck(lambda x_: L.linear_forward(x_, w, b)[0], x, dx, dout) < GRAD_TOL
    assert gradcheck(lambda w_: L.linear_forward(x, w_, b)[0], w, dw, dout) < GRAD_TOL
    assert gradcheck(lambda b_: L.linear_forward(x, w, b_)[0], b, db, dout) < GRAD_TOL


def test_linear_wrong_width_says_what_it_expected():
    with pytest.raises(InputShapeError, match="expects 7 input features; got 6"):
        L.linear_forward(np.zeros((2, 6)), np.zeros((3, 7)))


# --------------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_matches_torch_and_finite_differences(shape, training):
    r = rng(7)
    c = shape[1]
    x = r.normal(loc=2.0, scale=3.0, size=shape)
    gamma, beta = r.normal(size=c), r.normal(size=c)
    rm, rv = r.normal(size=c), r.uniform(0.5, 2.0, size=c)
    ours_rm, ours_rv = rm.copy(), rv.copy()
    out, cache = L.batchnorm_forward(x, gamma, beta, ours_rm, ours_rv, training=training, momentum=0.2)
    dout = r.normal(size=shape)
    dx, dgamma, dbeta = L.batchnorm_backward(dout, cache)

    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    t_out, (t_dx, t_dg, t_db) = torch_run(
        lambda x, g, b: F.batch_norm(x, t_rm, t_rv, g, b, training=training, momentum=0.2), [x, gamma, beta], dout
    )
    pairs = [(out, t_out), (dx, t_dx), (dgamma, t_dg), (dbeta, t_db),
             (ours_rm, t_rm.numpy()), (ours_rv, t_rv.numpy())]      # running stats updated alike
    for a, t in pairs:
        close(a, t)
    if training:                                       # the running averages moved towards the batch
        assert not np.allclose(ours_rm, rm)

    def f(x_=x, g_=gamma, b_=beta):
        return L.batchnorm_forward(x_, g_, b_, rm.copy(), rv.copy(), training=training)[0]

    assert gradcheck(lambda x_: f(x_=x_), x, dx, dout) < GRAD_TOL
    assert gradcheck(lambda g_: f(g_=g_), gamma, dgamma, dout) < GRAD_TOL
    assert gradcheck(lambda b_: f(b_=b_), beta, dbeta, dout) < GRAD_TOL


def test_batchnorm_training_output_is_normalised_per_channel():
    x = rng(8).normal(loc=5.0, scale=4.0, size=(16, 3, 4, 4))
    out, _ = L.batchnorm_forward(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), eps=0.0)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1.0, rtol=1e-12)


def test_batchnorm_needs_more_than_one_value_per_channel_in_training():
    with pytest.raises(InputShapeError, match="more than one value"):
        L.batchnorm_forward(np.zeros((1, 3)), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))


# ------------------------------------------------------------------------------------ dropout


def test_inverted_dropout_matches_torch_on_torch_mask():
    x = rng(9).uniform(0.5, 1.5, size=(4, 50))         # no zeros, so torch's mask is out != 0
    dout = rng(10).normal(size=x.shape)
    torch.manual_seed(0)
    t_out, (t_dx,) = torch_run(lambda x: F.dropout(x, p=0.3, training=True), [x], dout)
    mask = t_out != 0
    out, cache = L.dropout_forward(x, p=0.3, mask=mask)
    close(out, t_out)
    close(L.dropout_backward(dout, cache), t_dx)
    dx = L.dropout_backward(dout, cache)
    assert gradcheck(lambda x_: L.dropout_forward(x_, p=0.3, mask=mask)[0], x, dx, dout) < GRAD_TOL
    np.testing.assert_array_equal(L.dropout_forward(x, p=0.3, training=False)[0], x)


@pytest.mark.parametrize("scaling", ["inverted", "test"])
def test_dropout_test_output_is_the_expected_training_output(scaling):
    # Exact expectation: enumerate every keep/drop mask of a 4-unit layer with its probability.
    p, x = 0.3, np.array([1.0, -2.0, 0.5, 3.0])
    expected = np.zeros_like(x)
    for bits in itertools.product([False, True], repeat=x.size):
        mask = np.array(bits)
        prob = np.prod(np.where(mask, 1 - p, p))
        expected += prob * L.dropout_forward(x, p, training=True, mask=mask, scaling=scaling)[0]
    test_out = L.dropout_forward(x, p, training=False, scaling=scaling)[0]
    np.testing.assert_allclose(expected, test_out, rtol=1e-12)
    # And the random draw keeps each unit with probability 1 - p (a loose Monte Carlo check).
    draws = L.dropout_forward(np.ones(200_000), p, rng=rng(11), scaling=scaling)[0]
    assert abs(draws.mean() - L.dropout_forward(np.ones(1), p, training=False, scaling=scaling)[0][0]) < 0.01


def test_dropout_variants_differ_only_in_where_they_scale():
    x, mask = np.array([1.0, 2.0, 3.0]), np.array([True, False, True])
    inverted = L.dropout_forward(x, 0.5, mask=mask)[0]
    vanilla = L.dropout_forward(x, 0.5, mask=mask, scaling="test")[0]
    np.testing.assert_array_equal(inverted, [2.0, 0.0, 6.0])
    np.testing.assert_array_equal(vanilla, [1.0, 0.0, 3.0])
    np.testing.assert_array_equal(L.dropout_forward(x, 0.5, training=False, scaling="test")[0], [0.5, 1.0, 1.5])


def test_dropout_rejects_p_of_one():
    with pytest.raises(ConfigError, match="drop probability"):
        L.dropout_forward(np.ones(3), p=1.0)


# ---------------------------------------------------------------------------------------- LRN


@pytest.mark.parametrize("size, alpha, beta, k", [(5, 1e-4, 0.75, 2.0), (4, 0.3, 0.6, 1.0), (3, 1.5, 0.75, 0.5)])
def test_lrn_matches_torch_and_finite_differences(size, alpha, beta, k):
    r = rng(12)
    x = r.normal(size=(2, 7, 3, 3))
    out, cache = L.lrn_forward(x, size, alpha, beta, k)
    dout = r.normal(size=x.shape)
    dx = L.lrn_backward(dout, cache)
    t_out, (t_dx,) = torch_run(lambda x: F.local_response_norm(x, size, alpha, beta, k), [x], dout)
    close(out, t_out)
    close(dx, t_dx)
    assert gradcheck(lambda x_: L.lrn_forward(x_, size, alpha, beta, k)[0], x, dx, dout) < GRAD_TOL


def test_lrn_paper_constants_by_hand():
    # Krizhevsky et al. (2012): b = a / (k + alpha * sum a^2)^beta, alpha not divided by n.
    x = np.zeros((1, 5, 1, 1))
    x[0, :, 0, 0] = [1.0, 2.0, 3.0, 4.0, 5.0]
    out, _ = L.lrn_forward(x, size=5, alpha=5 * 1e-4, beta=0.75, k=2.0)
    # Channel 2 sees all five channels: sum of squares 55.
    np.testing.assert_allclose(out[0, 2, 0, 0], 3.0 / (2.0 + 1e-4 * 55.0) ** 0.75, rtol=1e-14)
