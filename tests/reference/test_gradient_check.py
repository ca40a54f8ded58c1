import numpy as np
import pytest

from cnnlab.errors import InputShapeError
from cnnlab.reference import gradcheck, numerical_gradient, relative_error
from cnnlab.reference import layers as L


def test_numerical_gradient_of_a_known_function():
    x = np.array([[-1.5, 0.3], [2.0, 0.7]])
    dout = np.array([[1.0, -2.0], [0.5, 3.0]])
    num = numerical_gradient(lambda v: v**3, x, dout)
    np.testing.assert_allclose(num, 3 * x**2 * dout, rtol=1e-9)


def test_x_is_restored_after_the_check():
    x = np.random.default_rng(0).normal(size=(3, 3))
    before = x.copy()
    numerical_gradient(np.sin, x)
    np.testing.assert_array_equal(x, before)


def test_gradcheck_passes_a_correct_and_flags_a_wrong_gradient():
    x = np.random.default_rng(1).normal(size=(4, 3))
    assert gradcheck(np.tanh, x, 1 - np.tanh(x) ** 2) < 1e-9
    assert gradcheck(np.tanh, x, 1 - np.tanh(x)) > 1e-2


def test_gradcheck_catches_a_subtle_backward_bug():
    # Training-mode batch norm whose backward forgets that the batch mean and variance depend
    # on x (i.e. uses the eval-mode formula): the outputs look fine, the gradient is wrong.
    r = np.random.default_rng(2)
    x, g, b = r.normal(size=(5, 3)), np.ones(3), np.zeros(3)
    dout = r.normal(size=x.shape)

    def f(x_):
        return L.batchnorm_forward(x_, g, b, np.zeros(3), np.ones(3), training=True)[0]

    xhat, gamma, inv_std, _, axes, shape = L.batchnorm_forward(x, g, b, np.zeros(3), np.ones(3))[1]
    good = L.batchnorm_backward(dout, (xhat, gamma, inv_std, True, axes, shape))[0]
    bad = L.batchnorm_backward(dout, (xhat, gamma, inv_std, False, axes, shape))[0]
    assert gradcheck(f, x, good, dout) < 1e-7
    assert gradcheck(f, x, bad, dout) > 1e-3


def test_relative_error_is_scale_free_and_guards_zero():
    a = np.array([1.0, 2.0, 0.0])
    n = a + np.array([1e-6, 0.0, 1e-6])
    assert relative_error(a, n) == pytest.approx(relative_error(1e3 * a, 1e3 * n))
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    with pytest.raises(InputShapeError, match="shape"):
        relative_error(np.zeros(3), np.zeros(4))


def test_float32_input_is_refused():
    with pytest.raises(InputShapeError, match="float64"):
        numerical_gradient(np.sin, np.zeros(3, dtype=np.float32))
