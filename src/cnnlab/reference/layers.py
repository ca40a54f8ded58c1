"""NumPy reference layers: each is a ``*_forward(x, ...) -> (out, cache)`` and ``*_backward(dout, cache)`` pair.

Plain float64 NumPy, written to be read next to the course notes (CS231n, "Convolutional Neural
Networks for Visual Recognition") and to check the fast torch path against. Backward functions
return ``dx`` alone for layers without parameters, and ``(dx, dw, db)`` (or ``(dx, dgamma,
dbeta)``) for layers with them. Shapes and argument names follow ``torch.nn.functional``, so
``conv2d_forward(x, w, b, stride=2, padding=1)`` computes what ``F.conv2d`` does.

Convolution is "convolutional layers as matrix multiplication" (im2col): every receptive field
becomes a column of one big matrix, and the layer is one matrix product with the filter bank.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.errors import ConfigError, InputShapeError


def _pair(v, name: str) -> tuple[int, int]:
    pair = (v, v) if np.isscalar(v) else tuple(v)
    if len(pair) != 2 or not all(float(p).is_integer() for p in pair):
        raise ConfigError(f"{name} must be an int or a pair of ints; got {v!r}.")
    return int(pair[0]), int(pair[1])


def _check_rank(x: np.ndarray, rank: int, layer: str, layout: str) -> None:
    if x.ndim != rank:
        raise InputShapeError(
            f"{layer} expects a {rank}-d array {layout}; got shape {tuple(x.shape)}. "
            "Add a batch axis with x[None] for a single example."
        )


def _output_size(size: int, k: int, stride: int, pad: int, dil: int, layer: str) -> int:
    # The standard formula (CS231n notes, "Conv layer"): (W - F_eff + 2P) / S + 1, rounded down.
    span = dil * (k - 1) + 1
    out = (size + 2 * pad - span) // stride + 1
    if out < 1:
        raise InputShapeError(
            f"{layer}: input side {size} (+2x{pad} padding) is smaller than the window "
            f"({span} pixels with dilation); the output would be empty. Use a larger input, "
            "more padding or a smaller kernel."
        )
    return out


def windows(x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1, pad_value=0.0):
    """Every receptive field of ``x`` as a view: (N, C, H, W) -> (N, C, OH, OW, KH, KW).

    The padded input is copied once; the windows themselves are a strided view of it, so no Python
    loop runs over pixels. Dilation keeps every ``dilation``-th tap of a wider window.
    """
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
    (ph, pw), (dh, dw) = _pair(padding, "padding"), _pair(dilation, "dilation")
    _check_rank(x, 4, "windows", "(N, C, H, W)")
    _output_size(x.shape[2], kh, sh, ph, dh, "windows")
    _output_size(x.shape[3], kw, sw, pw, dw, "windows")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = sliding_window_view(xp, span, axis=(2, 3))    # (N, C, Hp-span+1, Wp-span+1, spanH, spanW)
    return view[:, :, ::sh, ::sw, ::dh, ::dw]             # (N, C, OH, OW, KH, KW)


def _scatter_windows(dwin: np.ndarray, x_shape, stride, padding, dilation) -> np.ndarray:
    """Adjoint of :func:`windows`: add each window's gradient back onto the pixels it read.

    The loop runs over the KH*KW kernel taps (e.g. 25), each a strided slice add over all
    windows at once; overlapping windows (stride < kernel) accumulate, as the chain rule needs.
    """
    n, c, h, w = x_shape
    _, _, oh, ow, kh, kw = dwin.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                j * dw: j * dw + sw * (ow - 1) + 1: sw] += dwin[:, :, :, :, i, j]
    return dxp[:, :, ph: ph + h, pw: pw + w]


# ---------------------------------------------------------------------------------------------
# Convolution (im2col)


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Receptive fields as columns: (N, C, H, W) -> (G, C/G*KH*KW, N*OH*OW) (CS231n, "im2col").

    Column ``n*OH*OW + oh*OW + ow`` of group ``g`` holds the (C/G, KH, KW) patch that output pixel
    (oh, ow) of image n sees, flattened in the same order as a filter ``w[o].ravel()``.
    """
    win = windows(x, kernel_size, stride, padding, dilation)      # (N, C, OH, OW, KH, KW)
    n, c, oh, ow, kh, kw = win.shape
    win = win.reshape(n, groups, c // groups, oh, ow, kh, kw)
    return win.transpose(1, 2, 5, 6, 0, 3, 4).reshape(groups, c // groups * kh * kw, n * oh * ow)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum column gradients back into an (N, C, H, W) image gradient."""
    n, c, h, w = x_shape
    (kh, kw), stride = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
    padding, dilation = _pair(padding, "padding"), _pair(dilation, "dilation")
    oh = _output_size(h, kh, stride[0], padding[0], dilation[0], "col2im")
    ow = _output_size(w, kw, stride[1], padding[1], dilation[1], "col2im")
    dwin = cols.reshape(groups, c // groups, kh, kw, n, oh, ow)
    dwin = dwin.transpose(4, 0, 1, 5, 6, 2, 3).reshape(n, c, oh, ow, kh, kw)
    return _scatter_windows(dwin, x_shape, stride, padding, dilation)


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d convolution as one matrix product per group, like ``F.conv2d`` (LeCun et al. 1998; CS231n).

    x: (N, C, H, W); w: (O, C/groups, KH, KW); b: (O,) or None. Returns out (N, O, OH, OW).
    """
    _check_rank(x, 4, "conv2d", "(N, C, H, W)")
    _check_rank(w, 4, "conv2d weight", "(out_channels, in_channels/groups, KH, KW)")
    o, cg, kh, kw = w.shape
    if groups < 1 or x.shape[1] % groups or o % groups:
        raise ConfigError(
            f"conv2d groups={groups} must divide both the input channels ({x.shape[1]}) and the "
            f"output channels ({o}); try groups=1."
        )
    if cg * groups != x.shape[1]:
        raise InputShapeError(
            f"conv2d weight expects {cg * groups} input channels ({cg} per group x {groups} groups); "
            f"got x with {x.shape[1]}. Check in_chans or the previous layer's width."
        )
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    n = x.shape[0]
    oh = _output_size(x.shape[2], kh, stride[0], padding[0], dilation[0], "conv2d")
    ow = _output_size(x.shape[3], kw, stride[1], padding[1], dilation[1], "conv2d")
    cols = im2col(x, (kh, kw), stride, padding, dilation, groups)  # (G, Cg*KH*KW, N*OH*OW)
    wmat = w.reshape(groups, o // groups, cg * kh * kw)             # (G, O/G, Cg*KH*KW)
    out = wmat @ cols                                               # (G, O/G, N*OH*OW)
    out = out.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)           # (N, O, OH, OW)
    if b is not None:
        out = out + b[None, :, None, None]
    cache = (x.shape, w, b is not None, cols, stride, padding, dilation, groups)
    return np.ascontiguousarray(out), cache


def conv2d_backward(dout, cache, input_grad: bool = True):
    """Gradients of :func:`conv2d_forward`: ``(dx, dw, db)``; db is None when there was no bias.

    ``input_grad=False`` skips dx (returns None), e.g. for a network's first layer, whose input
    is the data: col2im is about half the cost of the backward pass there.
    """
    x_shape, w, has_bias, cols, stride, padding, dilation, groups = cache
    o, cg, kh, kw = w.shape
    dmat = dout.transpose(1, 0, 2, 3).reshape(groups, o // groups, -1)  # (G, O/G, N*OH*OW)
    dw = (dmat @ cols.transpose(0, 2, 1)).reshape(w.shape)             # sum over every position
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    if not input_grad:
        return None, dw, db
    dcols = w.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1) @ dmat
    dx = col2im(dcols, x_shape, (kh, kw), stride, padding, dilation, groups)
    return dx, dw, db


# ---------------------------------------------------------------------------------------------
# Pooling


def _pool_args(x, kernel_size, stride, padding, dilation, layer):
    _check_rank(x, 4, layer, "(N, C, H, W)")
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None else _pair(stride, "stride")   # torch: stride defaults to the kernel
    p, d = _pair(padding, "padding"), _pair(dilation, "dilation")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        # Same rule as torch: with more padding a window could hold padding only.
        raise ConfigError(f"{layer} padding {p} must be at most half the kernel {k}; "
                          "use a larger kernel or less padding.")
    for i in (0, 1):
        _output_size(x.shape[2 + i], k[i], s[i], p[i], d[i], layer)
    return k, s, p, d


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1):
    """Max-pooling like ``F.max_pool2d``: the largest value in each window (CS231n, "Pooling layer")."""
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, dilation, "max_pool2d")
    win = windows(x, k, s, p, d, pad_value=-np.inf)        # (N, C, OH, OW, KH, KW); padding never wins
    # Scan the KH*KW taps (a loop over the window, not over pixels), remembering which tap won;
    # a strict ">" keeps the first maximum on ties, as torch does.
    out = win[..., 0, 0].copy()                            # (N, C, OH, OW)
    arg = np.zeros(out.shape, dtype=np.intp)
    for t in range(1, k[0] * k[1]):
        tap = win[..., t // k[1], t % k[1]]
        better = tap > out
        np.copyto(out, tap, where=better)
        arg[better] = t
    return out, (x.shape, arg, k, s, p, d)


def maxpool2d_backward(dout, cache):
    """Gradient of :func:`maxpool2d_forward`: each window routes its gradient to its maximum."""
    x_shape, arg, k, s, p, d = cache
    onehot = arg[..., None] == np.arange(k[0] * k[1])     # (N, C, OH, OW, KH*KW)
    dwin = (onehot * dout[..., None]).reshape(*dout.shape, *k)
    return _scatter_windows(dwin, x_shape, s, p, d)


def avgpool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Average-pooling like ``F.avg_pool2d`` (``count_include_pad`` as there: divide by the full window)."""
    k, s, p, d = _pool_args(x, kernel_size, stride, padding, 1, "avg_pool2d")
    out = windows(x, k, s, p).sum(axis=(-2, -1))
    if count_include_pad:
        divisor = np.full(out.shape[2:], float(k[0] * k[1]))
    else:
        inside = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
        divisor = windows(inside, k, s, p).sum(axis=(-2, -1))[0, 0]   # real pixels per window
    return out / divisor, (x.shape, divisor, k, s, p)


def avgpool2d_backward(dout, cache):
    """Gradient of :func:`avgpool2d_forward`: each window shares its gradient equally among its pixels."""
    x_shape, divisor, k, s, p = cache
    dwin = np.broadcast_to((dout / divisor)[..., None, None], dout.shape + k)
    return _scatter_windows(dwin, x_shape, s, p, (1, 1))


# ---------------------------------------------------------------------------------------------
# Activations


def relu_forward(x):
    """Rectified linear unit max(0, x) (Nair & Hinton 2010; Krizhevsky et al. 2012)."""
    return np.maximum(x, 0.0), x


def relu_backward(dout, cache):
    """Gradient of ReLU: passes where the input was positive (0 at exactly 0, as torch)."""
    return dout * (cache > 0)


def sigmoid_forward(x):
    """Logistic sigmoid 1 / (1 + exp(-x)), computed without overflow for large |x|."""
    e = np.exp(-np.abs(x))                                # in (0, 1]: never overflows
    out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return out, out


def sigmoid_backward(dout, cache):
    """Gradient of the sigmoid: s * (1 - s), from the saved output."""
    return dout * cache * (1.0 - cache)


def tanh_forward(x):
    """Hyperbolic tangent."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """Gradient of tanh: 1 - tanh(x)^2, from the saved output."""
    return dout * (1.0 - cache**2)


# ---------------------------------------------------------------------------------------------
# Linear (affine)


def linear_forward(x, w, b=None):
    """Affine layer x @ w.T + b like ``F.linear``; w is (out_features, in_features) as in torch."""
    _check_rank(x, 2, "linear", "(N, in_features); flatten conv features with x.reshape(len(x), -1)")
    if x.shape[1] != w.shape[1]:
        raise InputShapeError(
            f"linear expects {w.shape[1]} input features; got {x.shape[1]}. Check the flattened "
            "size of the previous layer."
        )
    out = x @ w.T
    if b is not None:
        out = out + b
    return out, (x, w, b is not None)


def linear_backward(dout, cache):
    """Gradients of :func:`linear_forward`: ``(dx, dw, db)``."""
    x, w, has_bias = cache
    return dout @ w, dout.T @ x, (dout.sum(axis=0) if has_bias else None)


# ---------------------------------------------------------------------------------------------
# Batch normalisation (Ioffe & Szegedy 2015)


def _bn_axes(x):
    if x.ndim < 2:
        raise InputShapeError(f"batch_norm expects (N, C) or (N, C, ...); got shape {tuple(x.shape)}.")
    return (0,) + tuple(range(2, x.ndim))                 # every axis but the channel axis


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """Batch normalisation like ``F.batch_norm`` (Ioffe & Szegedy 2015), per channel (axis 1).

    In training it normalises with the batch statistics and updates ``running_mean`` and
    ``running_var`` **in place** with torch's convention: running = (1 - momentum) * running +
    momentum * batch, using the unbiased batch variance (the paper's Algorithm 2). In eval it
    normalises with the running statistics.
    """
    axes = _bn_axes(x)
    shape = [1] * x.ndim
    shape[1] = x.shape[1]
    if training:
        m = x.size // x.shape[1]                           # values per channel
        if m < 2:
            raise InputShapeError(
                f"batch_norm in training needs more than one value per channel; got shape "
                f"{tuple(x.shape)}. Use a batch of at least 2 or training=False."
            )
        mean, var = x.mean(axis=axes), x.var(axis=axes)   # biased variance normalises (paper, Alg. 1)
        running_mean *= 1.0 - momentum
        running_mean += momentum * mean
        running_var *= 1.0 - momentum
        running_var += momentum * var * m / (m - 1)
    else:
        mean, var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    out = gamma.reshape(shape) * xhat + beta.reshape(shape)
    return out, (xhat, gamma, inv_std, training, axes, shape)


def batchnorm_backward(dout, cache):
    """Gradients of :func:`batchnorm_forward`: ``(dx, dgamma, dbeta)``.

    In training the batch mean and variance depend on x, which adds the two correction terms
    (the simplified form of the paper's chain rule, Ioffe & Szegedy 2015, Sec. 3).
    """
    xhat, gamma, inv_std, training, axes, shape = cache
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    dxhat = dout * gamma.reshape(shape)
    if not training:
        return dxhat * inv_std.reshape(shape), dgamma, dbeta
    m = dout.size // dout.shape[1]
    dx = (inv_std.reshape(shape) / m) * (
        m * dxhat - dxhat.sum(axis=axes).reshape(shape) - xhat * (dxhat * xhat).sum(axis=axes).reshape(shape)
    )
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------------------------
# Dropout (Srivastava et al. 2014)


def dropout_forward(x, p=0.5, training=True, rng=None, mask=None, scaling="inverted"):
    """Dropout with drop probability ``p`` (torch's convention; the course's ``p`` keeps units).

    ``scaling="inverted"`` (what ``F.dropout`` does and what the course recommends): divide the
    kept units by 1 - p in training, do nothing at test time. ``scaling="test"`` (the course's
    first, "vanilla" version and the paper's): keep units unscaled in training and multiply by
    1 - p at test time. Both make the test output equal the expected training output. ``mask``
    (bool, True = keep) overrides the random draw, e.g. to replay torch's mask.
    """
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"dropout p is the drop probability and must be in [0, 1); got {p}.")
    if scaling not in ("inverted", "test"):
        raise ConfigError(f"dropout scaling must be 'inverted' or 'test'; got {scaling!r}.")
    keep = 1.0 - p
    if not training:
        scale = 1.0 if scaling == "inverted" else keep
        return x * scale, (None, scale)
    if mask is None:
        rng = np.random.default_rng() if rng is None else rng
        mask = rng.random(x.shape) < keep
    scaled = mask / keep if scaling == "inverted" else mask.astype(x.dtype)
    return x * scaled, (scaled, 1.0)


def dropout_backward(dout, cache):
    """Gradient of :func:`dropout_forward`: the same mask and scale as the forward pass."""
    scaled, scale = cache
    return dout * scale if scaled is None else dout * scaled


# ---------------------------------------------------------------------------------------------
# Local response normalisation (Krizhevsky et al. 2012, Sec. 3.3)


def _channel_window_sum(a, before: int, after: int):
    # s[:, c] = sum of a[:, c - before .. c + after], zeros beyond the edges; loops over the
    # window (e.g. 5 taps), not over pixels.
    c = a.shape[1]
    pad = [(0, 0)] * a.ndim
    pad[1] = (before, after)
    ap = np.pad(a, pad)
    return sum(ap[:, i: i + c] for i in range(before + after + 1))


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalisation across channels, exactly as ``torch.nn.LocalResponseNorm``.

    b_c = a_c / (k + alpha/size * sum_{c' = c-size//2}^{c+(size-1)//2} a_{c'}^2) ** beta.
    Krizhevsky et al. (2012) use k=2, n=5, alpha=1e-4, beta=0.75 with alpha *not* divided by
    n; torch divides, so the paper's layer is ``lrn_forward(x, 5, alpha=5e-4, beta=0.75, k=2)``.
    """
    if x.ndim < 3:
        raise InputShapeError(f"local_response_norm expects (N, C, ...) with spatial axes; got shape {tuple(x.shape)}.")
    if size < 1:
        raise ConfigError(f"local_response_norm size must be >= 1; got {size}.")
    denom = k + (alpha / size) * _channel_window_sum(x * x, size // 2, (size - 1) // 2)
    out = x * denom**-beta
    return out, (x, denom, size, alpha, beta)


def lrn_backward(dout, cache):
    """Gradient of :func:`lrn_forward`.

    d b_c / d a_j = [c == j] S_c^-beta - 2 alpha beta / size * a_c a_j S_c^(-beta-1) for every c
    whose window holds j; summing over those c is a channel window sum with the window flipped.
    """
    x, denom, size, alpha, beta = cache
    g = dout * x * denom ** (-beta - 1.0)
    back = _channel_window_sum(g, (size - 1) // 2, size // 2)   # the transposed window
    return dout * denom**-beta - (2.0 * alpha * beta / size) * x * back
