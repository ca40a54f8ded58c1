"""Linear image filtering: correlation and convolution with a choice of border, on NumPy or torch.

The course keeps two formulas apart (CS131 lecture "Filters"; Szeliski, *Computer Vision*, 2010,
section 3.2). With kernel offsets (k, l) measured from the kernel centre:

* correlation  ``h[m, n] = sum_{k,l} g[k, l] f[m + k, n + l]``
* convolution  ``g(x, y) = sum_{u,v} k(u, v) f(x - u, y - v)``

so convolution is correlation with the kernel flipped in both axes. CNN "convolution" layers
(``torch.nn.functional.conv2d``) compute the first.

Kernel centre: index ``K // 2`` along an axis of length K, as ``scipy.ndimage`` places it (also
for even K, where the window covers offsets ``-K//2 .. K//2 - 1`` for correlation). Convolution
flips the kernel and its centre with it, which is what ``scipy.ndimage.convolve`` does.
"""

from __future__ import annotations

import numpy as np

from cnnlab.classic.kernels import Kernel, as_kernel, factorize, get_kernel
from cnnlab.errors import ConfigError, InputShapeError

MODES = ("correlate", "convolve")

# Our border name -> the scipy.ndimage ``mode`` that extends the image the same way.
#   zero       0 0 | a b c d | 0 0        scipy 'constant' (cval=0); also torch conv2d padding
#   reflect    b a | a b c d | d c        scipy 'reflect' (half-sample symmetric; OpenCV
#                                          BORDER_REFLECT, MATLAB 'symmetric', numpy 'symmetric')
#   mirror     c b | a b c d | c b        scipy 'mirror' (whole-sample; OpenCV BORDER_REFLECT_101,
#                                          numpy and torch 'reflect')
#   replicate  a a | a b c d | d d        scipy 'nearest' (OpenCV BORDER_REPLICATE)
#   wrap       c d | a b c d | a b        scipy 'wrap' (periodic, as the DFT assumes)
BORDERS = {
    "zero": "constant",
    "reflect": "reflect",
    "mirror": "mirror",
    "replicate": "nearest",
    "wrap": "wrap",
}
METHODS = ("auto", "direct", "separable", "fft")

# Above this many non-zero taps a non-separable NumPy kernel goes through the FFT: one rfft2
# pair costs about as much as a few dozen shifted multiply-adds on a megapixel image.
_FFT_MIN_TAPS = 64
# A box factor longer than this uses a running sum (cumsum: constant cost per pixel) instead of
# one in-cache add per tap; below it the adds are faster (benchmarks/filter_bench.py).
_RUNNING_SUM_MIN = 16
# Strip size for the NumPy passes: well inside a 1 MiB L2 cache with the scratch arrays.
_STRIP_BYTES = 256 * 1024


def border_index(n: int, before: int, after: int, border: str) -> np.ndarray:
    """Source index for each position of an axis of length n padded by (before, after)."""
    i = np.arange(-before, n + after)
    if border == "replicate":
        return np.clip(i, 0, n - 1)
    if border == "wrap":
        return np.mod(i, n)
    if border == "reflect":                     # period 2n: the edge pixel is repeated
        m = np.mod(i, 2 * n)
        return np.where(m < n, m, 2 * n - 1 - m)
    if border == "mirror":                      # period 2n - 2: the edge pixel is the axis
        if n == 1:
            return np.zeros_like(i)
        m = np.mod(i, 2 * n - 2)
        return np.where(m < n, m, 2 * n - 2 - m)
    raise ConfigError(f"no index rule for border {border!r}")  # "zero" pads with np.pad


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _check_args(mode: str, border: str, method: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}; got {mode!r}")
    if border not in BORDERS:
        raise ConfigError(
            f"border must be one of {tuple(BORDERS)}; got {border!r}. "
            "'reflect' is scipy's 'reflect', 'mirror' is scipy's 'mirror'."
        )
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}; got {method!r}")


def _check_ndim(ndim: int) -> None:
    if ndim < 2 or ndim > 4:
        raise InputShapeError(
            f"filter2d takes (H, W), (H, W, C)/(C, H, W) or (N, ...) images; got {ndim} dims"
        )


def filter2d(image, kernel, mode: str = "correlate", border: str = "zero", *,
             channels_last: bool | None = None, method: str = "auto"):
    """Correlate or convolve an image with a 2-D kernel; output has the input's size (Szeliski 3.2).

    image
        NumPy array or torch tensor. Layout rule: NumPy follows the image convention, (H, W),
        (H, W, C) and (N, H, W, C); torch follows PyTorch's, (H, W), (C, H, W) and (N, C, H, W).
        ``channels_last=True/False`` overrides the rule. Each channel is filtered on its own.
        Returns the same type (and torch device); integer inputs come back as float64 (NumPy) or
        float32 (torch), floating inputs keep their dtype.
    kernel
        A :class:`~cnnlab.classic.kernels.Kernel`, a kernel name (``"sobel-x"``) or a 2-D array.
        Centred at index ``K // 2`` per axis, like scipy.ndimage (even sizes included).
    mode
        ``"correlate"``: h[m,n] = sum g[k,l] f[m+k, n+l]. ``"convolve"``: the kernel flipped.
    border
        How pixels outside the image are made up: ``"zero"`` (scipy ``'constant'`` with 0),
        ``"reflect"`` (scipy ``'reflect'``: d c b a | a b c d, edge pixel repeated),
        ``"mirror"`` (scipy ``'mirror'``: d c b | a b c d, edge pixel not repeated),
        ``"replicate"`` (scipy ``'nearest'``) or ``"wrap"`` (scipy ``'wrap'``).
    method
        ``"auto"`` picks two 1-D passes for separable kernels (Kernel factors, or a rank-1
        array), the FFT for large kernels and shifted multiply-adds otherwise. CPU tensors
        without autograd take the NumPy route; CUDA tensors and tensors that require grad go
        through ``torch.nn.functional.conv2d`` (differentiable). ``"direct"``, ``"separable"``
        and ``"fft"`` force one (conv2d stands in for the FFT on that route).
    """
    _check_args(mode, border, method)
    k = as_kernel(kernel)
    if k.factors is None and method in ("auto", "separable"):
        factors = factorize(k.weights)
        if factors is not None:
            k = Kernel(k.weights, factors, k.name)
    if method == "separable" and k.factors is None:
        raise ConfigError(f"kernel {k.name!r} of shape {k.shape} is not separable (rank > 1); "
                          "use method='direct' or 'fft'")
    if mode == "convolve":
        k = k.flipped()
    # Correlating with a flipped kernel keeps the *original* centre under the pixel: the
    # flipped centre sits at K - 1 - K//2, which differs from K//2 for even K.
    kh, kw = k.shape
    centre = (kh // 2, kw // 2) if mode == "correlate" else (kh - 1 - kh // 2, kw - 1 - kw // 2)
    if _is_torch(image):
        last = False if channels_last is None else channels_last
        import torch

        if image.device.type == "cpu" and not (image.requires_grad and torch.is_grad_enabled()):
            # On the CPU, conv2d with one input channel is several times slower than the
            # NumPy passes below (benchmarks/filter_bench.py); autograd and GPUs use conv2d.
            x = image.detach()
            dtype = x.dtype if torch.is_floating_point(x) else torch.float32
            arr = x.to(torch.float64 if dtype == torch.float64 else torch.float32).numpy()
            out = _filter_numpy(arr, k, centre, border, method, last)
            return torch.from_numpy(np.ascontiguousarray(out)).to(dtype)
        return _filter_torch(image, k, centre, border, method, last)
    last = True if channels_last is None else channels_last
    return _filter_numpy(np.asarray(image), k, centre, border, method, last)


# ---------------------------------------------------------------------------------- NumPy ----

def _pad_numpy(x: np.ndarray, pads, border: str) -> np.ndarray:
    """Extend the last two axes of x by ``pads`` ((before, after) per axis) following ``border``."""
    if border == "zero":
        return np.pad(x, [(0, 0)] * (x.ndim - 2) + list(pads))
    for a, (before, after) in zip((-2, -1), pads):
        if before or after:
            x = np.take(x, border_index(x.shape[a], before, after, border), axis=a)
    return x


def _correlate_1d_valid(xp: np.ndarray, w: np.ndarray, axis: int, n: int) -> np.ndarray:
    """Valid 1-D correlation of a 2-D slab along ``axis`` (0 or 1); n outputs along it."""
    win = (lambda j, m: xp[j:j + m]) if axis == 0 else (lambda j, m: xp[:, j:j + m])
    if len(w) > _RUNNING_SUM_MIN and np.all(w == w[0]):
        # Box factor: a running sum costs the same for every width (cumsum, then differences).
        acc = np.cumsum(xp, axis=axis, dtype=np.float64)
        if axis == 0:
            out = acc[len(w) - 1:len(w) - 1 + n].copy()
            out[1:] -= acc[:n - 1]
        else:
            out = acc[:, len(w) - 1:len(w) - 1 + n].copy()
            out[:, 1:] -= acc[:, :n - 1]
        out *= w[0]
        return out.astype(xp.dtype, copy=False)
    if len(w) > 1 and np.all(w == w[0]) and w[0] != 0:
        # Equal taps (box, Prewitt's smoothing): add the windows, scale once.
        out = win(0, n).copy()
        for j in range(1, len(w)):
            out += win(j, n)
        if w[0] != 1:
            out *= xp.dtype.type(w[0])
        return out
    return _shifted_sum(enumerate(w), lambda j: win(j, n), xp.dtype, 0)


def _shifted_sum(taps, window, dtype, first) -> np.ndarray:
    """sum_j w_j * window(j), skipping zero taps and multiplies by +-1, with one scratch array;
    ``first`` is any valid key of ``window``, for the shape of an all-zero result."""
    out = tmp = None
    for j, wj in taps:
        if wj == 0:
            continue
        src = window(j)
        if out is None:
            out = src * dtype.type(wj)
            tmp = np.empty_like(out)
        elif wj == 1:
            out += src
        elif wj == -1:
            out -= src
        else:
            np.multiply(src, dtype.type(wj), out=tmp)
            out += tmp
    return np.zeros_like(window(first)) if out is None else out


def _filter_numpy(x: np.ndarray, k: Kernel, centre, border, method, channels_last) -> np.ndarray:
    if x.size == 0:
        raise InputShapeError(f"filter2d got an empty image of shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    elif x.dtype == np.float16:
        x = x.astype(np.float32)
    ndim = x.ndim
    _check_ndim(ndim)
    if channels_last and ndim >= 3:
        x = np.moveaxis(x, -1, -3)                              # (..., C, H, W)
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    x3 = x.reshape(-1, h, w)                                    # (B, H, W)
    kh, kw = k.shape
    pads = ((centre[0], kh - 1 - centre[0]), (centre[1], kw - 1 - centre[1]))
    xp = _pad_numpy(x3, pads, border)                           # (B, H+kh-1, W+kw-1)
    taps = int(np.count_nonzero(k.weights))
    separable = method == "separable" or (method == "auto" and k.factors is not None)
    if not separable and (method == "fft" or (method == "auto" and taps >= _FFT_MIN_TAPS)):
        out = _correlate_fft(xp, k.weights, (h, w))
    else:
        out = np.empty(x3.shape, dtype=x3.dtype)
        # Work in horizontal strips small enough that every pass over a strip stays in cache:
        # NumPy's one-operation-at-a-time passes are memory-bound on whole images.
        rows = max(1, _STRIP_BYTES // (xp.shape[-1] * xp.itemsize))
        weights = k.weights.astype(x3.dtype)
        for b in range(x3.shape[0]):
            for r0 in range(0, h, rows):
                n = min(rows, h - r0)
                slab = xp[b, r0:r0 + n + kh - 1]               # (n+kh-1, W+kw-1)
                if separable:
                    col, row = k.factors
                    res = _correlate_1d_valid(_correlate_1d_valid(slab, col, 0, n), row, 1, w)
                else:
                    res = _shifted_sum(np.ndenumerate(weights),
                                       lambda ij: slab[ij[0]:ij[0] + n, ij[1]:ij[1] + w],
                                       x3.dtype, (0, 0))
                out[b, r0:r0 + n] = res
    out = out.reshape(*lead, h, w)
    if channels_last and ndim >= 3:
        out = np.moveaxis(out, -3, -1)
    return out


def _correlate_fft(xp: np.ndarray, weights: np.ndarray, size) -> np.ndarray:
    """Valid correlation by the convolution theorem: circular convolution with the flipped kernel
    over the padded size never wraps for the outputs we keep (the last H x W)."""
    shape = xp.shape[-2:]
    spec = np.fft.rfft2(xp)
    kspec = np.fft.rfft2(weights[::-1, ::-1], s=shape)
    full = np.fft.irfft2(spec * kspec, s=shape)
    kh, kw = weights.shape
    return np.ascontiguousarray(full[:, kh - 1:kh - 1 + size[0], kw - 1:kw - 1 + size[1]],
                                dtype=xp.dtype)


# ---------------------------------------------------------------------------------- torch ----

def _filter_torch(x, k: Kernel, centre, border, method, channels_last):
    import torch
    import torch.nn.functional as F

    if x.numel() == 0:
        raise InputShapeError(f"filter2d got an empty tensor of shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        x = x.float()
    ndim = x.dim()
    _check_ndim(ndim)
    if channels_last and ndim >= 3:
        x = x.movedim(-1, -3)                                   # (..., C, H, W)
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    x4 = x.reshape(-1, 1, h, w)                                 # (N*C, 1, H, W)
    kh, kw = k.shape
    top, left = centre
    bottom, right = kh - 1 - top, kw - 1 - left
    if border == "zero":
        xp = F.pad(x4, (left, right, top, bottom))
    else:
        # Index gathering handles any pad width; F.pad's reflect/circular need pad < size.
        rows = torch.as_tensor(border_index(h, top, bottom, border), device=x.device)
        cols = torch.as_tensor(border_index(w, left, right, border), device=x.device)
        xp = x4.index_select(2, rows).index_select(3, cols)
    opts = dict(dtype=x.dtype, device=x.device)
    if method == "separable" or (method == "auto" and k.factors is not None):
        col, row = k.factors
        out = F.conv2d(xp, torch.as_tensor(col.copy(), **opts).view(1, 1, kh, 1))
        out = F.conv2d(out, torch.as_tensor(row.copy(), **opts).view(1, 1, 1, kw))
    else:  # "direct" and "fft" both use conv2d: it is the optimised path for tensors
        out = F.conv2d(xp, torch.as_tensor(k.weights.copy(), **opts).view(1, 1, kh, kw))
    out = out.reshape(*lead, h, w)
    if channels_last and ndim >= 3:
        out = out.movedim(-3, -1)
    return out


# ------------------------------------------------------------------------------ gradients ----

_OPERATORS = ("sobel", "prewitt", "scharr", "central")


def gradients(image, operator: str = "sobel", border: str = "reflect", **kw):
    """Image derivatives (gx, gy) along x (columns, rightwards) and y (rows, downwards).

    ``operator`` is ``"sobel"``, ``"prewitt"``, ``"scharr"`` or ``"central"`` ([-1, 0, 1], the
    difference HoG uses; Dalal & Triggs 2005). Unnormalised: Sobel answers 8 to a unit ramp.
    ``border`` defaults to ``"reflect"`` so the image frame does not read as an edge.
    """
    if operator not in _OPERATORS:
        raise ConfigError(f"operator must be one of {_OPERATORS}; got {operator!r}")
    if operator == "central":
        diff = np.array([-1.0, 0.0, 1.0])
        kx = Kernel(diff[None, :], (np.ones(1), diff), "central-x")
        ky = Kernel(diff[:, None], (diff, np.ones(1)), "central-y")
    else:
        kx, ky = get_kernel(f"{operator}-x"), get_kernel(f"{operator}-y")
    return (filter2d(image, kx, "correlate", border, **kw),
            filter2d(image, ky, "correlate", border, **kw))


def gradient_magnitude(image, operator: str = "sobel", border: str = "reflect", **kw):
    """Gradient magnitude sqrt(gx^2 + gy^2) (Sobel by default)."""
    gx, gy = gradients(image, operator, border, **kw)
    if _is_torch(gx):
        import torch

        return torch.hypot(gx, gy)
    return np.hypot(gx, gy)


def gradient_orientation(image, operator: str = "sobel", border: str = "reflect", **kw):
    """Gradient direction atan2(gy, gx) in radians, (-pi, pi]; y points down the rows, so
    positive angles turn clockwise on screen. 0 means intensity grows to the right."""
    gx, gy = gradients(image, operator, border, **kw)
    if _is_torch(gx):
        import torch

        return torch.atan2(gy, gx)
    return np.arctan2(gy, gx)
