"""Gradient checking: compare an analytic gradient with centred finite differences (CS231n, "Gradient checks").

The check is on the scalar L = sum(f(x) * dout), so ``dout`` plays the upstream gradient a
backward pass receives, and the analytic answer is what ``*_backward(dout, cache)`` returns for x.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import InputShapeError


def numerical_gradient(f, x: np.ndarray, dout=None, h: float = 1e-6) -> np.ndarray:
    """Centred differences (L(x + h e_i) - L(x - h e_i)) / 2h of L = sum(f(x) * dout), one coordinate at a time.

    ``x`` is nudged in place and restored, so ``f`` must read it afresh on every call (a closure
    over x works). The centred form's error is O(h^2), against O(h) for the one-sided one.
    """
    if x.dtype != np.float64:
        raise InputShapeError(f"gradient checks need float64 inputs (float32 rounding swamps h); got {x.dtype}. "
                              "Use x.astype(np.float64).")
    dout = 1.0 if dout is None else dout
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)     # views: writes reach x and grad
    if not np.shares_memory(flat, x):
        raise InputShapeError("numerical_gradient needs a contiguous x it can nudge in place; "
                              "pass np.ascontiguousarray(x).")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = np.sum(f(x) * dout)
        flat[i] = old - h
        minus = np.sum(f(x) * dout)
        flat[i] = old
        gflat[i] = (plus - minus) / (2.0 * h)
    return grad


def relative_error(analytic, numeric, eps: float = 1e-12) -> float:
    """max|a - n| / max(max(|a| + |n|), eps): the worst error, relative to the gradient's scale.

    Dividing the largest absolute error by the largest magnitude (not element by element, as the
    course's max(|a|, |n|) does) keeps entries that are near zero, such as the non-maxima of a
    max-pool, from blowing the ratio up; ``eps`` guards the all-zero gradient.
    """
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise InputShapeError(f"analytic gradient has shape {a.shape}, numerical {n.shape}; they must match.")
    return float(np.max(np.abs(a - n), initial=0.0) / max(np.max(np.abs(a) + np.abs(n), initial=0.0), eps))


def gradcheck(f, x: np.ndarray, analytic, dout=None, h: float = 1e-6, eps: float = 1e-12) -> float:
    """Relative error between ``analytic`` and the centred-difference gradient of sum(f(x) * dout) w.r.t. x.

    In float64 a correct backward pass typically gives 1e-10 or less; 1e-7 or more means a bug
    (or a kink, such as ReLU at 0, within h of an input).
    """
    return relative_error(analytic, numerical_gradient(f, x, dout, h), eps)
